"""Reliability: automated backups and a cross-region disaster-recovery copy."""

from collections.abc import Iterator

from botocore.exceptions import ClientError

from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    bucket_regions,
    probe,
    verdict,
)

SECTION = "Reliability"
SNAPSHOT_ENGINES = {"redis", "valkey"}  # memcached has no backups
DR_TAG_VALUES = {"true", "yes", "critical"}
# A DynamoDB replica still being built or cut off from its KMS key is no DR copy yet.
USABLE_REPLICA_STATES = {"ACTIVE", "UPDATING"}


def _backup_plans(context: ProbeContext) -> Iterator[tuple[str, dict]]:
    """(plan ARN, plan) for every backup plan of the region; the listing has no rules."""
    backup = context.client("backup")
    for summary in context.paginate("backup", "list_backup_plans", "BackupPlansList"):
        plan = backup.get_backup_plan(BackupPlanId=summary["BackupPlanId"])["BackupPlan"]
        yield summary["BackupPlanArn"], plan


def _region_of(arn: str) -> str:
    return arn.split(":")[3] if arn.count(":") >= 5 else ""


def _table_arns(context: ProbeContext) -> Iterator[tuple[str, str]]:
    """(name, ARN) of every DynamoDB table; ListTables gives names only."""
    partition = context.session.get_partition_for_region(context.region)
    account = None
    for name in context.paginate("dynamodb", "list_tables", "TableNames"):
        account = account or context.account_id()
        yield name, f"arn:{partition}:dynamodb:{context.region}:{account}:table/{name}"


def _own_instances(context: ProbeContext) -> list[dict]:
    # Cluster members (Aurora, DocumentDB, Neptune) take backups and replicas at cluster level.
    return [
        db
        for db in context.paginate("rds", "describe_db_instances", "DBInstances")
        if not db.get("DBClusterIdentifier")
    ]


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


def _tagged_for_dr(tags: list[dict], key: str) -> bool:
    return any(
        t.get("Key", "").lower() == key.lower()
        and str(t.get("Value", "")).strip().lower() in DR_TAG_VALUES
        for t in tags
    )


def _rds_dr_findings(context: ProbeContext, key: str) -> Iterator[Finding]:
    for db in _own_instances(context):
        if not _tagged_for_dr(db.get("TagList", []), key):
            continue
        source = db.get("ReadReplicaSourceDBInstanceIdentifier") or ""
        if source and _region_of(source) in ("", context.region):
            continue  # a same-region replica (which may inherit the tag) is its source's copy
        if source:
            yield Finding(
                db["DBInstanceArn"], Status.PASS, f"is the cross-region replica of {source}"
            )
            continue
        remote = [
            r
            for r in db.get("ReadReplicaDBInstanceIdentifiers", [])
            if _region_of(r) not in ("", context.region)
        ]
        yield Finding(
            db["DBInstanceArn"],
            Status.PASS if remote else Status.FAIL,
            f"RDS instance replicated to {', '.join(remote)}"
            if remote
            else "RDS instance tagged for DR has no read replica in another region",
        )
    rds = context.client("rds")
    for cluster in context.paginate("rds", "describe_db_clusters", "DBClusters"):
        if not _tagged_for_dr(cluster.get("TagList", []), key):
            continue
        remote = [
            r
            for r in cluster.get("ReadReplicaIdentifiers", [])
            if _region_of(r) not in ("", context.region)
        ]
        if cluster.get("GlobalClusterIdentifier"):
            # An identifier on AWS, an ARN from moto: the call takes the identifier.
            global_id = cluster["GlobalClusterIdentifier"].rsplit(":", 1)[-1]
            for global_cluster in rds.describe_global_clusters(GlobalClusterIdentifier=global_id)[
                "GlobalClusters"
            ]:
                remote += [
                    m["DBClusterArn"]
                    for m in global_cluster.get("GlobalClusterMembers", [])
                    if _region_of(m["DBClusterArn"]) != context.region
                ]
        yield Finding(
            cluster["DBClusterArn"],
            Status.PASS if remote else Status.FAIL,
            f"RDS cluster replicated to {', '.join(sorted(set(remote)))}"
            if remote
            else "RDS cluster tagged for DR has no replica or global member in another region",
        )


def _dynamodb_dr_findings(context: ProbeContext, key: str) -> Iterator[Finding]:
    dynamodb = context.client("dynamodb")
    for name, arn in _table_arns(context):
        tags = list(context.paginate("dynamodb", "list_tags_of_resource", "Tags", ResourceArn=arn))
        if not _tagged_for_dr(tags, key):
            continue
        replicas = dynamodb.describe_table(TableName=name)["Table"].get("Replicas", [])
        remote = sorted(
            r["RegionName"]
            for r in replicas
            if r.get("RegionName") != context.region
            and r.get("ReplicaStatus", "ACTIVE") in USABLE_REPLICA_STATES
        )
        yield Finding(
            arn,
            Status.PASS if remote else Status.FAIL,
            f"DynamoDB global table with replicas in {', '.join(remote)}"
            if remote
            else "DynamoDB table tagged for DR has no active replica in another region",
        )


def _s3_dr_findings(context: ProbeContext, key: str) -> Iterator[Finding]:
    s3 = context.client("s3")
    partition = context.session.get_partition_for_region(context.region)
    region_of_bucket = bucket_regions(context)
    for name, region in region_of_bucket.items():
        if region != context.region:
            continue
        try:
            tags = s3.get_bucket_tagging(Bucket=name)["TagSet"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchTagSet":
                raise
            continue
        if not _tagged_for_dr(tags, key):
            continue
        try:
            rules = s3.get_bucket_replication(Bucket=name)["ReplicationConfiguration"]["Rules"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ReplicationConfigurationNotFoundError":
                raise
            rules = []
        destinations = {
            r["Destination"]["Bucket"].split(":::")[-1]
            for r in rules
            if r.get("Status") == "Enabled" and "Destination" in r
        }
        remote = sorted(d for d in destinations if region_of_bucket.get(d, region) != region)
        unknown = sorted(d for d in destinations if d not in region_of_bucket)
        arn = f"arn:{partition}:s3:::{name}"
        if remote:
            copies = ", ".join(f"{d} ({region_of_bucket[d]})" for d in remote)
            yield Finding(arn, Status.PASS, f"S3 bucket replicated to {copies}")
        elif unknown:
            yield Finding(
                arn,
                Status.WARN,
                f"S3 bucket replicates to {', '.join(unknown)} in another account; its region "
                "cannot be confirmed",
            )
        else:
            yield Finding(
                arn,
                Status.FAIL,
                "S3 bucket tagged for DR has no enabled replication to another region",
            )


@probe(
    key="backup.disaster_recovery",
    section=SECTION,
    item="Disaster Recovery",
    title=(
        "Backups are copied to another region, and every resource tagged for DR has a "
        "cross-region replica"
    ),
    actions=(
        "backup:ListBackupPlans",
        "backup:GetBackupPlan",
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "rds:DescribeGlobalClusters",
        "dynamodb:ListTables",
        "dynamodb:ListTagsOfResource",
        "dynamodb:DescribeTable",
        "sts:GetCallerIdentity",
        "s3:ListAllMyBuckets",
        "s3:GetBucketLocation",
        "s3:GetBucketTagging",
        "s3:GetReplicationConfiguration",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Add a copy action to another region in the AWS Backup plan rules (`CopyActions` with a "
        "`DestinationBackupVaultArn` in the DR region). Tag the resources the DR plan covers "
        "(tag key from settings, value true/yes/critical) and give each a replica in the DR "
        "region: RDS `aws rds create-db-instance-read-replica` in the DR region or an Aurora "
        "global database, DynamoDB global table replicas (`aws dynamodb update-table "
        "--replica-updates`), S3 replication rules to a bucket in the DR region."
    ),
)
def disaster_recovery(context: ProbeContext) -> ProbeResult:
    key = context.settings.dr_tag_key
    findings = []
    plans = 0
    for arn, plan in _backup_plans(context):
        plans += 1
        remote = sorted(
            {
                _region_of(copy["DestinationBackupVaultArn"])
                for rule in plan.get("Rules", [])
                for copy in rule.get("CopyActions", [])
                if _region_of(copy.get("DestinationBackupVaultArn", "")) not in ("", context.region)
            }
        )
        if remote:
            findings.append(
                Finding(
                    arn,
                    Status.PASS,
                    f"backup plan {plan.get('BackupPlanName')} copies to {', '.join(remote)}",
                )
            )
    copying_plans = len(findings)
    findings += _rds_dr_findings(context, key)
    findings += _dynamodb_dr_findings(context, key)
    findings += _s3_dr_findings(context, key)
    facts = {
        "backup_plans": plans,
        "plans_copying_cross_region": copying_plans,
        "dr_tagged_resources": len(findings) - copying_plans,
        "dr_tag": f"{key}={'|'.join(sorted(DR_TAG_VALUES))}",
    }
    if not findings:
        return ProbeResult(
            Status.FAIL,
            f"No DR copy found in {context.region}: no resource tagged {key}=true|yes|critical "
            "and no backup plan copying to another region",
            facts=facts,
        )
    return verdict(
        findings,
        passed="{total} DR copies in place (cross-region backup copies and tagged replicas)",
        failed="{failed} of {total} resources tagged for DR have no cross-region replica",
        warned="{warned} of {total} resources tagged for DR replicate to an unverifiable region",
        empty="",
        facts=facts,
    )
