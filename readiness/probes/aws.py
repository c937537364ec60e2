"""AWS reads and checks shared by the probes of several modules: the framework side.

No probe is registered here; each section module registers its own probes, by the item of
the checklist they verify, and takes what it shares with other modules from this one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from readiness.probes.base import Finding, ProbeContext, ProbeResult, Status, verdict

# Compliance: error codes, and the CloudTrail buckets of Audit Logging and Retention Policies.

DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _trail_buckets(context: ProbeContext) -> dict[str, list[str]]:
    buckets: dict[str, list[str]] = {}
    for trail in context.client("cloudtrail").describe_trails(includeShadowTrails=False)[
        "trailList"
    ]:
        if trail.get("S3BucketName"):
            buckets.setdefault(trail["S3BucketName"], []).append(trail["Name"])
    return buckets


def _per_bucket(context: ProbeContext, judge) -> list[Finding]:
    """`judge(bucket) -> Finding` for every trail bucket; a bucket in another account that
    this one may not read is a warning, not an error of the whole probe."""
    findings = []
    for bucket, trails in sorted(_trail_buckets(context).items()):
        try:
            findings.append(judge(bucket))
        except ClientError as exc:
            if _code(exc) not in DENIED:
                raise
            findings.append(
                Finding(
                    bucket,
                    Status.WARN,
                    f"bucket of {', '.join(trails)} is not readable from this account "
                    "(another account's log archive?): check it there",
                )
            )
    return findings


# Cost Optimization: who Budget Alerts and Cost Anomaly Detection notify.


def _subscriber_types(subscribers: list[dict], type_key: str) -> str:
    counts: dict[str, int] = defaultdict(int)
    for subscriber in subscribers:
        counts[subscriber.get(type_key, "?")] += 1
    # Addresses (mailboxes, topics) stay out of the evidence: the type and count are enough.
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


# Monitoring & Observability: CloudWatch Alarms, Log Aggregation, Dashboards and Synthetic
# Monitoring.


def _pages_in(
    context: ProbeContext, service: str, region: str, operation: str, key: str, **params
) -> Iterator[Any]:
    """context.paginate, for a client of another region than the probe's own."""
    if region == context.api_region:
        yield from context.paginate(service, operation, key, **params)
        return
    for page in context.client(service, region).get_paginator(operation).paginate(**params):
        yield from page.get(key, [])


def _arn_field(arn: str, index: int) -> str:
    parts = arn.split(":", 5)
    return parts[index] if len(parts) == 6 else ""


def _at_least_one(
    findings: Iterable[Finding], *, passed: str, partly: str, none: str, facts: dict
) -> ProbeResult:
    """PASS when everything passes, WARN when some pass and others do not, FAIL when none does.

    For items met by one working resource (a dashboard, a synthetic check): a broken extra one
    is worth a look but does not undo the one that works.
    """
    # verdict() orders the findings; the failed/warned summaries are replaced below.
    result = verdict(findings, passed=passed, failed="", warned="", empty="", facts=facts)
    if result.status not in (Status.FAIL, Status.WARN):
        return result
    passing = sum(f.status == Status.PASS for f in result.findings)
    counts = {"total": len(result.findings), "passing": passing}
    if passing:
        return replace(result, status=Status.WARN, summary=partly.format(**counts))
    return replace(result, status=Status.FAIL, summary=none.format(**counts))


# Reliability: what Backup Strategy and Disaster Recovery both read.


def _backup_plans(context: ProbeContext) -> Iterator[tuple[str, dict]]:
    """(plan ARN, plan) for every backup plan of the region; the listing has no rules."""
    backup = context.client("backup")
    for summary in context.paginate("backup", "list_backup_plans", "BackupPlansList"):
        plan = backup.get_backup_plan(BackupPlanId=summary["BackupPlanId"])["BackupPlan"]
        yield summary["BackupPlanArn"], plan


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


# Performance / Resource Sizing and Cost Optimization / Right-Sizing: one check, registered by
# each section for its item.

OPTIMIZER_FINDINGS = {
    "Overprovisioned": (Status.WARN, "over-provisioned"),
    "Underprovisioned": (Status.FAIL, "under-provisioned"),
    "Optimized": (Status.PASS, "optimized"),
}

# Compute Optimizer not opted in, or an endpoint without it: CloudWatch judges instead.
# Not opted in, not allowed, or not offered where we ask (an emulator answers NotImplemented):
# the CPU statistics decide instead.
OPTIMIZER_UNAVAILABLE = {
    "OptInRequiredException",
    "AccessDeniedException",
    "NotImplemented",
    "500",
    "501",
    "404",
}

SIZING_ACTIONS = (
    "ec2:DescribeInstances",
    "compute-optimizer:GetEC2InstanceRecommendations",
    "cloudwatch:GetMetricStatistics",
)

SIZING_REMEDIATION = (
    "Resize to what the load needs: an instance whose CPU peak stays under the low band is "
    "over-provisioned (pick a smaller size or a burstable type), one whose average stays "
    "over the high band is under-provisioned (a larger size, or more instances behind the "
    "Auto Scaling group). Opt in to AWS Compute Optimizer for memory-aware recommendations: "
    "`aws compute-optimizer update-enrollment-status --status Active`."
)


def _optimizer(context: ProbeContext) -> dict[str, tuple[Status, str]] | None:
    try:
        response = context.client("compute-optimizer").get_ec2_instance_recommendations()
    except ResponseParserError:
        return None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code") or "")
        http = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in OPTIMIZER_UNAVAILABLE or http in OPTIMIZER_UNAVAILABLE:
            return None
        raise
    judged = {}
    for recommendation in response.get("instanceRecommendations", []):
        instance = recommendation["instanceArn"].rsplit("/", 1)[-1]
        status, word = OPTIMIZER_FINDINGS.get(recommendation.get("finding", ""), (None, ""))
        if status is not None:
            options = recommendation.get("recommendationOptions") or [{}]
            better = options[0].get("instanceType")
            judged[instance] = (
                status,
                f"Compute Optimizer: {word}"
                + (f", consider {better}" if better and status != Status.PASS else ""),
            )
    return judged


def _cpu(context: ProbeContext, instance: str) -> tuple[float, float] | None:
    days = context.settings.sizing_window_days
    end = datetime.now(UTC)
    points = context.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "InstanceId", "Value": instance}],
        StartTime=end - timedelta(days=days),
        EndTime=end,
        Period=3600 if days <= 15 else 86400,
        Statistics=["Average", "Maximum"],
    )["Datapoints"]
    if not points:
        return None
    average = sum(p["Average"] for p in points) / len(points)
    return average, max(p["Maximum"] for p in points)


def right_sizing(context: ProbeContext) -> ProbeResult:
    """Compute Optimizer's finding when it has one; otherwise the CPU of the window: a
    maximum under the low band is over-provisioned (warn: money, not risk), an average over
    the high band is under-provisioned (fail: it will not take a peak)."""
    instances = [
        instance["InstanceId"]
        for reservation in context.paginate(
            "ec2",
            "describe_instances",
            "Reservations",
            Filters=[{"Name": "instance-state-name", "Values": ["running"]}],
        )
        for instance in reservation["Instances"]
    ]
    low, high = context.settings.cpu_low_percent, context.settings.cpu_high_percent
    facts = {
        "instances": len(instances),
        "window_days": context.settings.sizing_window_days,
        "cpu_low_percent": low,
        "cpu_high_percent": high,
    }
    if not instances:
        return ProbeResult(Status.NOT_APPLICABLE, "No running EC2 instances", facts=facts)
    optimizer = _optimizer(context)
    facts["source"] = "compute-optimizer" if optimizer else "cloudwatch"
    findings = []
    for instance in instances:
        if optimizer and instance in optimizer:
            status, reason = optimizer[instance]
            findings.append(Finding(instance, status, reason))
            continue
        cpu = _cpu(context, instance)
        if cpu is None:
            findings.append(
                Finding(instance, Status.WARN, "no CPU datapoints in the window: cannot judge")
            )
            continue
        average, peak = cpu
        measured = f"CPU average {average:.0f} %, peak {peak:.0f} %"
        if peak < low:
            findings.append(
                Finding(instance, Status.WARN, f"{measured}: over-provisioned (peak < {low:g} %)")
            )
        elif average > high:
            findings.append(
                Finding(
                    instance, Status.FAIL, f"{measured}: under-provisioned (average > {high:g} %)"
                )
            )
        else:
            findings.append(Finding(instance, Status.PASS, measured))
    return verdict(
        findings,
        passed="{total} running instances are sized to their load",
        failed="{failed} of {total} running instances are under-provisioned",
        warned="{warned} of {total} running instances are over-provisioned or unmeasured",
        empty="",
        facts=facts,
    )
