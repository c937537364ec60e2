"""Compliance / Retention Policies: logs, backups and the audit trail are kept as long as the
regulations require, and no longer by accident."""

from __future__ import annotations

from botocore.exceptions import ClientError

from readiness.probes.aws import _code, _per_bucket
from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    action_names,
    probe,
    verdict,
)

SECTION = "Compliance"


action_names(
    {
        ("s3", "GetObjectLockConfiguration"): "s3:GetBucketObjectLockConfiguration",
    }
)


@probe(
    key="compliance.log_retention",
    section=SECTION,
    item="Retention Policies",
    title="Log groups keep logs for a set time at or above the minimum",
    actions=("logs:DescribeLogGroups",),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Set a retention on every log group (CloudWatch > Log groups > Actions > Edit "
        "retention, or `aws logs put-retention-policy --log-group-name NAME "
        "--retention-in-days 365`): unset means logs never expire, which no retention rule "
        "allows."
    ),
)
def log_retention(context: ProbeContext) -> ProbeResult:
    """Retention unset (never expires) or under `log_retention_min_days` fails."""
    minimum = context.settings.log_retention_min_days
    findings = []
    for group in context.paginate("logs", "describe_log_groups", "logGroups"):
        days = group.get("retentionInDays")
        if days is None:
            findings.append(
                Finding(group["logGroupName"], Status.FAIL, "no retention set: never expires")
            )
        elif days < minimum:
            findings.append(
                Finding(
                    group["logGroupName"],
                    Status.FAIL,
                    f"{days} days, under the {minimum}-day minimum",
                )
            )
        else:
            findings.append(Finding(group["logGroupName"], Status.PASS, f"kept {days} days"))
    return verdict(
        findings,
        passed="{total} log groups keep logs for " + f"{minimum} days or more and then expire",
        failed="{failed} of {total} log groups have no retention or a short one",
        empty="No log groups in this region",
        facts={"min_days": minimum},
    )


@probe(
    key="compliance.backup_lifecycle",
    section=SECTION,
    item="Retention Policies",
    title="Backup rules delete recovery points after a set time",
    actions=("backup:ListBackupPlans", "backup:GetBackupPlan"),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Give each backup rule a lifecycle (AWS Backup > Backup plans > rule > Retention "
        "period, i.e. Lifecycle.DeleteAfterDays) matching the retention the regulation asks "
        "for: kept forever is as non-compliant as deleted too early."
    ),
)
def backup_lifecycle(context: ProbeContext) -> ProbeResult:
    """Every rule of every plan has Lifecycle.DeleteAfterDays."""
    backup = context.client("backup")
    findings = []
    for summary in context.paginate("backup", "list_backup_plans", "BackupPlansList"):
        plan = backup.get_backup_plan(BackupPlanId=summary["BackupPlanId"])["BackupPlan"]
        for rule in plan.get("Rules", []):
            days = (rule.get("Lifecycle") or {}).get("DeleteAfterDays")
            findings.append(
                Finding(
                    f"{plan['BackupPlanName']}/{rule['RuleName']}",
                    Status.PASS if days else Status.FAIL,
                    f"recovery points deleted after {days} days"
                    if days
                    else "recovery points are kept forever",
                )
            )
    return verdict(
        findings,
        passed="{total} backup rules expire their recovery points",
        failed="{failed} of {total} backup rules keep recovery points forever",
        empty="No backup plans in this region",
    )


@probe(
    key="compliance.trail_bucket_retention",
    section=SECTION,
    item="Retention Policies",
    title="CloudTrail buckets lock their logs (Object Lock) and expire them (lifecycle)",
    actions=(
        "cloudtrail:DescribeTrails",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetLifecycleConfiguration",
    ),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Create the trail bucket with Object Lock (it cannot be turned on later for existing "
        "buckets without AWS Support) in compliance or governance mode with a default "
        "retention, and add a lifecycle rule that transitions and finally expires the logs "
        "at the end of the retention period."
    ),
)
def trail_bucket_retention(context: ProbeContext) -> ProbeResult:
    """Each trail bucket has Object Lock enabled and a lifecycle configuration."""
    s3 = context.client("s3")

    def judge(bucket: str) -> Finding:
        problems = []
        try:
            lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
            if lock.get("ObjectLockEnabled") != "Enabled":
                problems.append("Object Lock off")
        except ClientError as exc:
            if _code(exc) != "ObjectLockConfigurationNotFoundError":
                raise
            problems.append("Object Lock off")
        try:
            if not s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules"):
                problems.append("no lifecycle rule")
        except ClientError as exc:
            if _code(exc) != "NoSuchLifecycleConfiguration":
                raise
            problems.append("no lifecycle rule")
        if problems:
            return Finding(bucket, Status.FAIL, "; ".join(problems))
        return Finding(bucket, Status.PASS, "Object Lock and a lifecycle rule")

    return verdict(
        _per_bucket(context, judge),
        passed="{total} trail buckets lock and expire their logs",
        failed="{failed} of {total} trail buckets can lose logs early or keep them forever",
        empty="No CloudTrail trail delivers to S3",
    )
