"""Reliability / Backup Strategy: automated backups enabled and kept long enough."""

from readiness.probes.aws import _backup_plans, _own_instances, _table_arns
from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    probe,
    verdict,
)

SECTION = "Reliability"

SNAPSHOT_ENGINES = {"redis", "valkey"}  # memcached has no backups


@probe(
    key="backup.strategy",
    section=SECTION,
    item="Backup Strategy",
    title=(
        "Backup plans run on a schedule; RDS keeps automated backups long enough; DynamoDB has "
        "point-in-time recovery; ElastiCache Redis/Valkey keeps snapshots"
    ),
    actions=(
        "backup:ListBackupPlans",
        "backup:GetBackupPlan",
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "dynamodb:ListTables",
        "dynamodb:DescribeContinuousBackups",
        "sts:GetCallerIdentity",
        "elasticache:DescribeReplicationGroups",
        "elasticache:DescribeCacheClusters",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.CRITICAL,
    remediation=(
        "AWS Backup: give every plan a rule with a schedule (`ScheduleExpression`, e.g. "
        "cron(0 5 * * ? *)). RDS/Aurora: set the backup retention period to at least the "
        "required days (`aws rds modify-db-instance --backup-retention-period 7`, CloudFormation "
        "`BackupRetentionPeriod`). DynamoDB: enable point-in-time recovery (`aws dynamodb "
        "update-continuous-backups --point-in-time-recovery-specification "
        "PointInTimeRecoveryEnabled=true`). ElastiCache Redis/Valkey: set "
        "`SnapshotRetentionLimit` above 0 for automatic daily snapshots."
    ),
)
def strategy(context: ProbeContext) -> ProbeResult:
    days = context.settings.backup_retention_days
    findings = []
    plans = 0
    for arn, plan in _backup_plans(context):
        plans += 1
        schedules = [
            r["ScheduleExpression"] for r in plan.get("Rules", []) if r.get("ScheduleExpression")
        ]
        findings.append(
            Finding(
                arn,
                Status.PASS if schedules else Status.FAIL,
                f"backup plan {plan.get('BackupPlanName')}: scheduled {', '.join(schedules)}"
                if schedules
                else f"backup plan {plan.get('BackupPlanName')}: no rule has a schedule",
            )
        )

    def retention(arn: str, kind: str, period: int) -> Finding:
        if period >= days:
            return Finding(arn, Status.PASS, f"{kind}: automated backups kept {period} days")
        why = "automated backups disabled" if period == 0 else f"backups kept {period} days"
        return Finding(arn, Status.FAIL, f"{kind}: {why} (< {days})")

    instances = 0
    for db in _own_instances(context):
        if db.get("ReadReplicaSourceDBInstanceIdentifier"):
            continue  # a read replica is restored from its source's backups
        instances += 1
        findings.append(
            retention(db["DBInstanceArn"], "RDS instance", db.get("BackupRetentionPeriod", 0))
        )
    clusters = list(context.paginate("rds", "describe_db_clusters", "DBClusters"))
    for cluster in clusters:
        findings.append(
            retention(
                cluster["DBClusterArn"], "RDS cluster", cluster.get("BackupRetentionPeriod", 0)
            )
        )
    dynamodb = context.client("dynamodb")
    tables = 0
    for name, arn in _table_arns(context):
        tables += 1
        description = dynamodb.describe_continuous_backups(TableName=name)
        pitr = description["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
        enabled = pitr.get("PointInTimeRecoveryStatus") == "ENABLED"
        findings.append(
            Finding(
                arn,
                Status.PASS if enabled else Status.FAIL,
                "DynamoDB table: point-in-time recovery enabled"
                if enabled
                else "DynamoDB table: point-in-time recovery disabled",
            )
        )
    caches = 0
    replication_groups = context.paginate(
        "elasticache", "describe_replication_groups", "ReplicationGroups"
    )
    standalone_clusters = (
        c
        for c in context.paginate("elasticache", "describe_cache_clusters", "CacheClusters")
        if not c.get("ReplicationGroupId")
    )
    for kind, cache, arn in [
        *(
            ("replication group", g, g.get("ARN") or g["ReplicationGroupId"])
            for g in replication_groups
        ),
        *(("cluster", c, c.get("ARN") or c["CacheClusterId"]) for c in standalone_clusters),
    ]:
        if cache.get("Engine", "redis") not in SNAPSHOT_ENGINES:
            continue
        caches += 1
        limit = cache.get("SnapshotRetentionLimit", 0)
        findings.append(
            Finding(
                arn,
                Status.PASS if limit > 0 else Status.FAIL,
                f"ElastiCache {kind}: snapshots kept {limit} days"
                if limit > 0
                else f"ElastiCache {kind}: automatic snapshots off (SnapshotRetentionLimit 0)",
            )
        )
    return verdict(
        findings,
        passed="All {total} backup plans, databases, tables and caches have automated backups",
        failed="{failed} of {total} backup plans, databases, tables or caches lack backups",
        empty=(
            f"No backup plans, RDS databases, DynamoDB tables or Redis/Valkey caches in "
            f"{context.region}"
        ),
        facts={
            "backup_plans": plans,
            "rds_instances": instances,
            "rds_clusters": len(clusters),
            "dynamodb_tables": tables,
            "elasticache_redis": caches,
            "backup_retention_days": days,
        },
    )
