import datetime
import json

from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry
from tests.conftest import REGION


def run(key, context):
    return execute(registry()[key], context).result


def by_id(result):
    return {f.resource: f for f in result.findings}


# --- Data Residency ----------------------------------------------------------------------


def test_residency_not_applicable_without_approved_regions(aws, make_context):
    assert run("compliance.data_residency", make_context()).status == Status.NOT_APPLICABLE


def test_residency_warns_without_an_scp_when_everything_is_inside(aws, make_context):
    aws.client("s3").create_bucket(Bucket="home")
    aws.client("ec2").run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    result = run("compliance.data_residency", make_context(approved_regions=(REGION,)))
    assert result.status == Status.WARN, result
    assert "Organizations is not in use" in result.findings[0].reason


def test_residency_fails_for_stores_in_other_regions(aws, make_context):
    aws.client("s3", region_name="ap-south-1").create_bucket(
        Bucket="far-away", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"}
    )
    instance = aws.client("ec2", region_name="sa-east-1").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    aws.client("dynamodb", region_name="eu-central-1").create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    result = run("compliance.data_residency", make_context(approved_regions=(REGION,)))
    assert result.status == Status.FAIL
    found = by_id(result)
    assert found["s3:far-away"].reason.startswith("bucket in ap-south-1")
    assert found[instance].reason == "instance in sa-east-1"
    assert found["dynamodb:orders"].reason == "table in eu-central-1"
    assert result.summary.startswith("3 data store(s) outside the approved regions")


def test_residency_passes_with_an_scp_denying_other_regions(aws, make_context):
    organizations = aws.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    organizations.create_policy(
        Name="regions",
        Description="stay home",
        Type="SERVICE_CONTROL_POLICY",
        Content=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "NotAction": ["iam:*", "sts:*"],
                        "Resource": "*",
                        "Condition": {"StringNotEquals": {"aws:RequestedRegion": [REGION]}},
                    }
                ],
            }
        ),
    )
    result = run("compliance.data_residency", make_context(approved_regions=(REGION,)))
    assert result.status == Status.PASS, result
    assert result.findings[0].resource == "scp:regions"


# --- Audit Logging -----------------------------------------------------------------------


def _recorder(aws, all_supported=True, start=True, channel=True):
    config = aws.client("config")
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": "arn:aws:iam::123456789012:role/config",
            "recordingGroup": {"allSupported": all_supported, "includeGlobalResourceTypes": True}
            if all_supported
            else {"allSupported": False, "resourceTypes": ["AWS::S3::Bucket"]},
        }
    )
    if channel:
        aws.client("s3").create_bucket(Bucket="config-logs")
        config.put_delivery_channel(
            DeliveryChannel={"name": "default", "s3BucketName": "config-logs"}
        )
    if start and channel:
        config.start_configuration_recorder(ConfigurationRecorderName="default")


def test_config_recorder_passes_when_recording_everything(aws, make_context):
    assert run("compliance.config_recorder", make_context()).status == Status.FAIL
    _recorder(aws)
    result = run("compliance.config_recorder", make_context())
    assert result.status == Status.PASS, result
    assert "delivers to config-logs" in result.findings[0].reason


def test_config_recorder_fails_partial_or_stopped(aws, make_context):
    _recorder(aws, all_supported=False, start=False)
    result = run("compliance.config_recorder", make_context())
    assert result.status == Status.FAIL
    assert result.findings[0].reason == "records only selected resource types; stopped"


def _trail(aws, bucket, *, object_lock=False):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=object_lock)
    aws.client("cloudtrail").create_trail(Name=f"{bucket}-trail", S3BucketName=bucket)
    return s3


def test_trail_bucket_logging(aws, make_context):
    assert run("compliance.trail_bucket_logging", make_context()).status == Status.NOT_APPLICABLE
    s3 = _trail(aws, "trail-logged")
    _trail(aws, "trail-silent")
    s3.create_bucket(Bucket="access-logs", ACL="log-delivery-write")
    s3.put_bucket_logging(
        Bucket="trail-logged",
        BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": "access-logs", "TargetPrefix": "t/"}
        },
    )
    result = run("compliance.trail_bucket_logging", make_context())
    found = by_id(result)
    assert result.status == Status.FAIL
    assert found["trail-logged"].reason == "access logs to access-logs"
    assert found["trail-silent"].reason == "no server access logging"


# --- Access Control ----------------------------------------------------------------------


def test_root_keys(aws, make_context):
    assert run("compliance.root_keys", make_context()).status == Status.PASS
    context = make_context()
    with Stubber(context.client("iam")) as stubber:
        stubber.add_response("get_account_summary", {"SummaryMap": {"AccountAccessKeysPresent": 1}})
        assert run("compliance.root_keys", context).status == Status.FAIL


def test_password_policy_length(aws, make_context):
    result = run("compliance.password_policy", make_context())
    assert result.status == Status.FAIL and "No password policy" in result.summary
    aws.client("iam").update_account_password_policy(MinimumPasswordLength=12)
    assert run("compliance.password_policy", make_context()).status == Status.FAIL
    assert (
        run("compliance.password_policy", make_context(password_min_length=12)).status
        == Status.PASS
    )
    aws.client("iam").update_account_password_policy(MinimumPasswordLength=16)
    assert run("compliance.password_policy", make_context()).status == Status.PASS


def test_access_key_age(aws, make_context):
    assert run("compliance.access_key_age", make_context()).status == Status.NOT_APPLICABLE
    aws.client("iam").create_user(UserName="ci")
    aws.client("iam").create_access_key(UserName="ci")
    assert run("compliance.access_key_age", make_context()).status == Status.PASS
    # moto cannot backdate a key: the listing of an old one is stubbed.
    context = make_context()
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=200)
    with Stubber(context.client("iam")) as stubber:
        stubber.add_response(
            "list_users",
            {
                "Users": [
                    {
                        "UserName": "ci",
                        "UserId": "AIDAEXAMPLE000000001",
                        "Arn": "arn:aws:iam::123456789012:user/ci",
                        "Path": "/",
                        "CreateDate": old,
                    }
                ]
            },
        )
        stubber.add_response(
            "list_access_keys",
            {
                "AccessKeyMetadata": [
                    {
                        "UserName": "ci",
                        "AccessKeyId": "AKIAOLD0000000000001",
                        "Status": "Active",
                        "CreateDate": old,
                    },
                    {
                        "UserName": "ci",
                        "AccessKeyId": "AKIAOFF0000000000002",
                        "Status": "Inactive",
                        "CreateDate": old,
                    },
                ]
            },
        )
        result = run("compliance.access_key_age", context)
    assert result.status == Status.FAIL
    assert (
        result.findings == (result.findings[0],)
        and "200 days old (limit 90)" in result.findings[0].reason
    )


def test_user_policies(aws, make_context):
    iam = aws.client("iam")
    iam.create_user(UserName="grouped")
    iam.create_user(UserName="direct")
    iam.put_user_policy(
        UserName="direct",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    result = run("compliance.user_policies", make_context())
    found = by_id(result)
    assert result.status == Status.FAIL
    assert found["direct"].reason == "policies on the user: all (inline)"
    assert found["grouped"].status == Status.PASS


# --- Retention ---------------------------------------------------------------------------


def test_log_retention(aws, make_context):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/forever")
    logs.create_log_group(logGroupName="/short")
    logs.put_retention_policy(logGroupName="/short", retentionInDays=30)
    logs.create_log_group(logGroupName="/kept")
    logs.put_retention_policy(logGroupName="/kept", retentionInDays=400)
    result = run("compliance.log_retention", make_context())
    found = by_id(result)
    assert found["/forever"].reason == "no retention set: never expires"
    assert found["/short"].status == Status.FAIL and found["/kept"].status == Status.PASS
    lenient = run("compliance.log_retention", make_context(log_retention_min_days=30))
    assert by_id(lenient)["/short"].status == Status.PASS


def test_backup_lifecycle(aws, make_context):
    assert run("compliance.backup_lifecycle", make_context()).status == Status.NOT_APPLICABLE
    backup = aws.client("backup")
    backup.create_backup_plan(
        BackupPlan={
            "BackupPlanName": "daily",
            "Rules": [
                {
                    "RuleName": "expiring",
                    "TargetBackupVaultName": "Default",
                    "ScheduleExpression": "cron(0 5 * * ? *)",
                    "Lifecycle": {"DeleteAfterDays": 35},
                },
                {
                    "RuleName": "forever",
                    "TargetBackupVaultName": "Default",
                    "ScheduleExpression": "cron(0 6 * * ? *)",
                },
            ],
        }
    )
    result = run("compliance.backup_lifecycle", make_context())
    found = by_id(result)
    assert found["daily/expiring"].status == Status.PASS
    assert found["daily/forever"].reason == "recovery points are kept forever"


def test_trail_bucket_retention(aws, make_context):
    s3 = _trail(aws, "trail-locked", object_lock=True)
    s3.put_bucket_lifecycle_configuration(
        Bucket="trail-locked",
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": 2555},
                }
            ]
        },
    )
    _trail(aws, "trail-plain")
    result = run("compliance.trail_bucket_retention", make_context())
    found = by_id(result)
    assert found["trail-locked"].status == Status.PASS, found["trail-locked"]
    assert found["trail-plain"].reason == "Object Lock off; no lifecycle rule"


# --- Privacy -----------------------------------------------------------------------------


def test_account_public_access_block(aws, make_context):
    result = run("compliance.s3_account_public_access", make_context())
    assert result.status == Status.FAIL, result
    control = aws.client("s3control")
    control.meta.events.register(
        "before-send.s3-control",
        lambda request, **_: setattr(request, "url", request.url.replace("123456789012.", "")),
    )
    control.put_public_access_block(
        AccountId="123456789012",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": False,
        },
    )
    partial = run("compliance.s3_account_public_access", make_context())
    assert partial.status == Status.FAIL and "RestrictPublicBuckets off" in partial.summary
    control.put_public_access_block(
        AccountId="123456789012",
        PublicAccessBlockConfiguration={
            name: True
            for name in (
                "BlockPublicAcls",
                "IgnorePublicAcls",
                "BlockPublicPolicy",
                "RestrictPublicBuckets",
            )
        },
    )
    assert run("compliance.s3_account_public_access", make_context()).status == Status.PASS


def test_macie(aws, make_context):
    assert run("compliance.macie", make_context()).status == Status.PASS  # moto starts enabled
    context = make_context()
    with Stubber(context.client("macie2")) as stubber:
        stubber.add_client_error(
            "get_macie_session", "AccessDeniedException", "Macie is not enabled.", 403
        )
        assert run("compliance.macie", context).summary == "Macie is not enabled in this region"
    with Stubber(context.client("macie2")) as stubber:
        stubber.add_response("get_macie_session", {"status": "PAUSED"})
        assert run("compliance.macie", context).status == Status.FAIL
