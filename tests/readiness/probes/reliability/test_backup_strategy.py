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
    ],
)
def test_failed_calls_become_error_results(
    aws, make_context, key, service, operation, code, expected
):
    assert_failed_call_is_an_error(make_context(), key, service, operation, code, expected)
