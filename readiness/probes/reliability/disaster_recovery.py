"""Reliability / Disaster Recovery: a usable copy of the critical data in another region."""

from collections.abc import Iterator

from botocore.exceptions import ClientError

from readiness.probes.aws import _backup_plans, _own_instances, _table_arns
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

DR_TAG_VALUES = {"true", "yes", "critical"}

# A DynamoDB replica still being built or cut off from its KMS key is no DR copy yet.
USABLE_REPLICA_STATES = {"ACTIVE", "UPDATING"}


def _region_of(arn: str) -> str:
    return arn.split(":")[3] if arn.count(":") >= 5 else ""


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
