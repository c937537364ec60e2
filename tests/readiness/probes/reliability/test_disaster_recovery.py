import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.reliability.helpers import (
    ACCOUNT,
    PASSWORD,
    REGION,
    assert_failed_call_is_an_error,
    backup_plan,
    failing,
    rds_instance,
    run,
    table,
)

DR_REGION = "eu-west-1"

DR_TAG = [{"Key": "DR", "Value": "true"}]


def bucket(aws, name, region=REGION, tags=None):
    s3 = aws.client("s3", region_name=region)
    location = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3.create_bucket(Bucket=name, **({"CreateBucketConfiguration": location} if location else {}))
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
    return f"arn:aws:s3:::{name}"


def replicate(aws, source, destination):
    aws.client("s3").put_bucket_replication(
        Bucket=source,
        ReplicationConfiguration={
            "Role": f"arn:aws:iam::{ACCOUNT}:role/replication",
            "Rules": [
                {
                    "ID": "all",
                    "Status": "Enabled",
                    "Priority": 1,
                    "Filter": {},
                    "DeleteMarkerReplication": {"Status": "Disabled"},
                    "Destination": {"Bucket": f"arn:aws:s3:::{destination}"},
                }
            ],
        },
    )


def test_disaster_recovery_passes_with_cross_region_copies_and_replicas(aws, make_context):
    plan = backup_plan(
        aws,
        "daily",
        ScheduleExpression="cron(0 5 * * ? *)",
        CopyActions=[
            {"DestinationBackupVaultArn": f"arn:aws:backup:{DR_REGION}:{ACCOUNT}:backup-vault:dr"}
        ],
    )
    orders = rds_instance(aws, "orders", Tags=DR_TAG)
    aws.client("rds", region_name=DR_REGION).create_db_instance_read_replica(
        DBInstanceIdentifier="orders-dr", SourceDBInstanceIdentifier=orders
    )
    assets = bucket(aws, "assets", tags=[{"Key": "dr", "Value": "Critical"}])
    bucket(aws, "assets-dr", region=DR_REGION)
    replicate(aws, "assets", "assets-dr")
    bucket(aws, "logs")  # untagged: not in the DR scope
    result = run("backup.disaster_recovery", make_context())
    assert result.status == Status.PASS, result
    assert {f.resource for f in result.findings} == {plan, orders, assets}
    assert result.facts["dr_tagged_resources"] == 2
    reasons = {f.resource: f.reason for f in result.findings}
    assert reasons[assets] == f"S3 bucket replicated to assets-dr ({DR_REGION})"


def test_disaster_recovery_fails_tagged_resources_without_remote_replica(aws, make_context):
    backup_plan(
        aws,
        "local",
        ScheduleExpression="cron(0 5 * * ? *)",
        CopyActions=[
            {"DestinationBackupVaultArn": f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:b"}
        ],
    )
    orders = rds_instance(aws, "orders", Tags=DR_TAG)
    aws.client("rds").create_db_instance_read_replica(  # same region: no DR
        DBInstanceIdentifier="orders-reader", SourceDBInstanceIdentifier="orders"
    )
    events = table(aws, "events", Tags=[{"Key": "DR", "Value": "yes"}])
    assets = bucket(aws, "assets", tags=DR_TAG)
    bucket(aws, "assets-copy", tags=[{"Key": "team", "Value": "web"}])
    replicate(aws, "assets", "assets-copy")  # same region: no DR
    result = run("backup.disaster_recovery", make_context())
    assert result.status == Status.FAIL
    assert failing(result) == {orders, events, assets}
    assert result.facts["plans_copying_cross_region"] == 0


def test_disaster_recovery_warns_when_the_replica_bucket_is_in_another_account(aws, make_context):
    assets = bucket(aws, "assets", tags=DR_TAG)
    replicate(aws, "assets", "partner-owned-copy")
    result = run("backup.disaster_recovery", make_context())
    assert result.status == Status.WARN, result
    assert result.findings[0].resource == assets
    assert "cannot be confirmed" in result.findings[0].reason


def test_disaster_recovery_passes_aurora_global_databases(aws, make_context):
    ledger = aws.client("rds").create_db_cluster(
        DBClusterIdentifier="ledger",
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
        Tags=DR_TAG,
    )["DBCluster"]["DBClusterArn"]
    aws.client("rds").create_global_cluster(
        GlobalClusterIdentifier="ledger-global", SourceDBClusterIdentifier=ledger
    )
    aws.client("rds", region_name=DR_REGION).create_db_cluster(
        DBClusterIdentifier="ledger-dr",
        Engine="aurora-postgresql",
        GlobalClusterIdentifier="ledger-global",
    )
    result = run("backup.disaster_recovery", make_context())
    assert result.status == Status.PASS, result
    assert result.findings[0].resource == ledger
    assert f"{DR_REGION}:{ACCOUNT}:cluster:ledger-dr" in result.findings[0].reason


def test_disaster_recovery_passes_dynamodb_global_tables(aws, make_context):
    context = make_context()
    client = context.client("dynamodb")
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/events"
    # moto has no global table replicas in describe_table: answer DynamoDB as AWS would.
    with Stubber(client) as stubber:
        stubber.add_response("list_tables", {"TableNames": ["events"]})
        stubber.add_response("list_tags_of_resource", {"Tags": DR_TAG}, {"ResourceArn": arn})
        stubber.add_response(
            "describe_table",
            {
                "Table": {
                    "TableName": "events",
                    "TableArn": arn,
                    "Replicas": [
                        {"RegionName": DR_REGION, "ReplicaStatus": "ACTIVE"},
                        {"RegionName": "ap-south-1", "ReplicaStatus": "CREATING"},
                    ],
                }
            },
            {"TableName": "events"},
        )
        result = run("backup.disaster_recovery", context)
    assert result.status == Status.PASS, result
    assert result.findings[0].reason == f"DynamoDB global table with replicas in {DR_REGION}"


def test_disaster_recovery_uses_the_tag_key_setting(aws, make_context):
    orders = rds_instance(aws, "orders", Tags=[{"Key": "disaster-recovery", "Value": "yes"}])
    rds_instance(aws, "reports", Tags=DR_TAG)
    result = run("backup.disaster_recovery", make_context(dr_tag_key="disaster-recovery"))
    assert result.status == Status.FAIL
    assert failing(result) == {orders}


def test_disaster_recovery_fails_when_nothing_is_covered(aws, make_context):
    rds_instance(aws, "orders")
    result = run("backup.disaster_recovery", make_context())
    assert result.status == Status.FAIL
    assert result.summary.startswith("No DR copy found in us-east-1")
    assert not result.findings


# Errors


@pytest.mark.parametrize(
    ("key", "service", "operation", "code", "expected"),
    [
        (
            "backup.disaster_recovery",
            "s3",
            "list_buckets",
            "500",
            "s3:ListAllMyBuckets answered HTTP 500 with no error code",
        ),
    ],
)
def test_failed_calls_become_error_results(
    aws, make_context, key, service, operation, code, expected
):
    assert_failed_call_is_an_error(make_context(), key, service, operation, code, expected)
