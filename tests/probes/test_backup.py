import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry

REGION = "us-east-1"
DR_REGION = "eu-west-1"
ACCOUNT = "123456789012"
PASSWORD = "a-long-password-1"
DR_TAG = [{"Key": "DR", "Value": "true"}]


def run(key, context):
    return execute(registry()[key], context).result


def failing(result):
    return {f.resource for f in result.findings if f.status == Status.FAIL}


def rds_instance(aws, name, region=REGION, **extra):
    aws.client("rds", region_name=region).create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
        AllocatedStorage=20,
        **extra,
    )
    return f"arn:aws:rds:{region}:{ACCOUNT}:db:{name}"


def table(aws, name, **extra):
    aws.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def backup_plan(aws, name, **rule):
    return aws.client("backup").create_backup_plan(
        BackupPlan={
            "BackupPlanName": name,
            "Rules": [{"RuleName": "daily", "TargetBackupVaultName": "main", **rule}],
        }
    )["BackupPlanArn"]


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


# Backup Strategy


def test_backup_strategy_passes_with_scheduled_plans_and_retention(aws, make_context):
    plan = backup_plan(aws, "daily", ScheduleExpression="cron(0 5 * * ? *)")
    orders = rds_instance(aws, "orders", BackupRetentionPeriod=7)
    aws.client("rds").create_db_cluster(
        DBClusterIdentifier="ledger",
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
        BackupRetentionPeriod=14,
    )
    table_arn = table(aws, "events")
    aws.client("dynamodb").update_continuous_backups(
        TableName="events", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    aws.client("elasticache").create_replication_group(
        ReplicationGroupId="sessions",
        ReplicationGroupDescription="sessions",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        NumCacheClusters=1,
        SnapshotRetentionLimit=3,
    )
    aws.client("elasticache").create_cache_cluster(
        CacheClusterId="memo", Engine="memcached", CacheNodeType="cache.t3.micro", NumCacheNodes=1
    )
    result = run("backup.strategy", make_context())
    assert result.status == Status.PASS, result
    assert {plan, orders, table_arn} <= {f.resource for f in result.findings}
    assert result.facts["elasticache_redis"] == 1  # memcached has no backups to judge
    assert len(result.findings) == 5


def test_backup_strategy_fails_short_retention_and_missing_pitr_and_snapshots(aws, make_context):
    orders = rds_instance(aws, "orders", BackupRetentionPeriod=3)
    rds_instance(aws, "scratch", BackupRetentionPeriod=0)
    events = table(aws, "events")
    aws.client("elasticache").create_cache_cluster(
        CacheClusterId="cache", Engine="redis", CacheNodeType="cache.t3.micro", NumCacheNodes=1
    )
    result = run("backup.strategy", make_context())
    assert result.status == Status.FAIL
    reasons = {f.resource: f.reason for f in result.findings if f.status == Status.FAIL}
    assert reasons[orders] == "RDS instance: backups kept 3 days (< 7)"
    assert "automated backups disabled" in reasons[orders.replace("orders", "scratch")]
    assert "point-in-time recovery disabled" in reasons[events]
    assert any(r.endswith("cache") and "SnapshotRetentionLimit 0" in v for r, v in reasons.items())


def test_backup_strategy_fails_plans_without_a_scheduled_rule(aws, make_context):
    context = make_context()
    client = context.client("backup")
    arn = f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-plan:manual"
    # moto stores AWS's default schedule on a rule created without one: stub a plan without.
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_backup_plans",
            {"BackupPlansList": [{"BackupPlanArn": arn, "BackupPlanId": "manual"}]},
        )
        stubber.add_response(
            "get_backup_plan",
            {
                "BackupPlan": {
                    "BackupPlanName": "manual",
                    "Rules": [{"RuleName": "adhoc", "TargetBackupVaultName": "main"}],
                }
            },
            {"BackupPlanId": "manual"},
        )
        result = run("backup.strategy", context)
    assert result.status == Status.FAIL
    assert failing(result) == {arn}
    assert result.findings[0].reason == "backup plan manual: no rule has a schedule"


def test_backup_strategy_uses_the_retention_setting(aws, make_context):
    orders = rds_instance(aws, "orders", BackupRetentionPeriod=7)
    result = run("backup.strategy", make_context(backup_retention_days=30))
    assert result.status == Status.FAIL
    assert failing(result) == {orders}
    assert result.facts["backup_retention_days"] == 30


def test_backup_strategy_not_applicable_without_resources(aws, make_context):
    assert run("backup.strategy", make_context()).status == Status.NOT_APPLICABLE


# Disaster Recovery


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
            "backup.strategy",
            "backup",
            "list_backup_plans",
            "AccessDeniedException",
            "Access denied: the probe needs backup:ListBackupPlans",
        ),
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
    context = make_context()
    client = context.client(service)
    with Stubber(client) as stubber:
        stubber.add_client_error(operation, service_error_code=code, http_status_code=500)
        result = run(key, context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(expected), result.summary
