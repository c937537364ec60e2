"""Cost Optimization: budgets that alert someone, anomaly detection that reaches someone,
commitment coverage, S3 lifecycle transitions, NAT traffic kept off the NAT where a gateway
endpoint can carry it, and non-production capacity that sleeps at night."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    action_names,
    bucket_regions,
    probe,
    verdict,
)

SECTION = "Cost Optimization"

action_names(
    {
        ("budgets", "DescribeBudgets"): "budgets:ViewBudget",
        ("budgets", "DescribeNotificationsForBudget"): "budgets:ViewBudget",
        ("budgets", "DescribeSubscribersForNotification"): "budgets:ViewBudget",
    }
)


def _next_tokens(call, key: str, token_in: str, token_out: str, **kwargs):
    """Every element of `key` from an API without a botocore paginator."""
    token = None
    while True:
        page = call(**kwargs, **({token_in: token} if token else {}))
        yield from page.get(key, [])
        token = page.get(token_out)
        if not token:
            return


@probe(
    key="cost.budgets",
    section=SECTION,
    item="Budget Alerts",
    title="A cost budget alerts at least one subscriber",
    actions=("budgets:ViewBudget", "sts:GetCallerIdentity"),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Create a monthly cost budget with an ACTUAL and a FORECASTED notification at 80-100 % "
        "sent to the team's address or an SNS topic: Billing and Cost Management > Budgets > "
        "Create budget, or `aws budgets create-budget --account-id ACCOUNT --budget file://"
        "budget.json --notifications-with-subscribers file://notify.json`."
    ),
)
def budgets(context: ProbeContext) -> ProbeResult:
    """Pass when at least one COST budget has a notification with a subscriber; budgets
    that would alert nobody are listed."""
    account = context.account_id()
    client = context.client("budgets")
    findings = []
    for budget in _next_tokens(
        client.describe_budgets, "Budgets", "NextToken", "NextToken", AccountId=account
    ):
        if budget.get("BudgetType") != "COST":
            continue
        name = budget["BudgetName"]
        subscribers = 0
        notifications = list(
            _next_tokens(
                client.describe_notifications_for_budget,
                "Notifications",
                "NextToken",
                "NextToken",
                AccountId=account,
                BudgetName=name,
            )
        )
        for notification in notifications:
            subscribers += len(
                list(
                    _next_tokens(
                        client.describe_subscribers_for_notification,
                        "Subscribers",
                        "NextToken",
                        "NextToken",
                        AccountId=account,
                        BudgetName=name,
                        Notification=notification,
                    )
                )
            )
        limit = budget.get("BudgetLimit") or {}
        amount = f"{limit.get('Amount', '?')} {limit.get('Unit', '')}".strip()
        if subscribers:
            findings.append(
                Finding(
                    name,
                    Status.PASS,
                    f"{amount} {budget.get('TimeUnit', '').lower()}: {len(notifications)} "
                    f"notification(s), {subscribers} subscriber(s)",
                )
            )
        else:
            findings.append(
                Finding(name, Status.FAIL, f"{amount}: no notification with a subscriber")
            )
    if not findings:
        return ProbeResult(Status.FAIL, "No cost budget: spending is not watched by anyone")
    alerting = [f for f in findings if f.status == Status.PASS]
    return ProbeResult(
        Status.PASS if alerting else Status.FAIL,
        f"{len(alerting)} of {len(findings)} cost budgets alert a subscriber"
        if alerting
        else "No cost budget alerts anyone",
        tuple(sorted(findings, key=lambda f: f.status != Status.FAIL)),
        {"cost_budgets": len(findings), "alerting": len(alerting)},
    )


@probe(
    key="cost.anomaly_detection",
    section=SECTION,
    item="Cost Anomaly Detection",
    title="A Cost Anomaly Detection monitor has a subscription with a subscriber",
    actions=("ce:GetAnomalyMonitors", "ce:GetAnomalySubscriptions"),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Billing and Cost Management > Cost Anomaly Detection > Create monitor (AWS services, "
        "or a linked-account / cost-category monitor), then an alert subscription with the "
        "team's address or SNS topic and a threshold; `aws ce create-anomaly-monitor` and "
        "`aws ce create-anomaly-subscription`."
    ),
)
def anomaly_detection(context: ProbeContext) -> ProbeResult:
    """Pass when every monitor is referenced by a subscription that has a subscriber."""
    client = context.client("ce")
    monitors = list(
        _next_tokens(
            client.get_anomaly_monitors, "AnomalyMonitors", "NextPageToken", "NextPageToken"
        )
    )
    if not monitors:
        return ProbeResult(Status.FAIL, "No cost anomaly monitor: unusual spend goes unnoticed")
    subscriptions = list(
        _next_tokens(
            client.get_anomaly_subscriptions,
            "AnomalySubscriptions",
            "NextPageToken",
            "NextPageToken",
        )
    )
    reached: dict[str, int] = {}
    for subscription in subscriptions:
        for arn in subscription.get("MonitorArnList", []):
            reached[arn] = reached.get(arn, 0) + len(subscription.get("Subscribers", []))
    findings = [
        Finding(
            monitor.get("MonitorName") or monitor["MonitorArn"],
            Status.PASS if reached.get(monitor["MonitorArn"]) else Status.FAIL,
            f"{reached[monitor['MonitorArn']]} subscriber(s)"
            if reached.get(monitor["MonitorArn"])
            else "no subscription with a subscriber: anomalies are found but nobody is told",
        )
        for monitor in monitors
    ]
    return verdict(
        findings,
        passed="{total} anomaly monitors, each alerting a subscriber",
        failed="{failed} of {total} anomaly monitors alert nobody",
        empty="",
        facts={"monitors": len(monitors), "subscriptions": len(subscriptions)},
    )


def _coverage(context: ProbeContext, kind: str) -> tuple[float, float] | None:
    """(covered, total) over the window — running hours for reservations, spend for
    Savings Plans — or None when there is no eligible usage."""
    end = datetime.now(UTC).date()
    start = end - timedelta(days=context.settings.commitment_window_days)
    period = {"Start": start.isoformat(), "End": end.isoformat()}
    client = context.client("ce")
    if kind == "reservations":
        hours = (client.get_reservation_coverage(TimePeriod=period).get("Total") or {}).get(
            "CoverageHours"
        ) or {}
        covered = float(hours.get("ReservedHours") or 0)
        whole = float(hours.get("TotalRunningHours") or 0)
    else:
        covered = whole = 0.0
        for entry in _next_tokens(
            client.get_savings_plans_coverage,
            "SavingsPlansCoverages",
            "NextToken",
            "NextToken",
            TimePeriod=period,
        ):
            figures = entry.get("Coverage") or {}
            covered += float(figures.get("SpendCoveredBySavingsPlans") or 0)
            whole += float(figures.get("TotalCost") or 0)
    return (covered, whole) if whole > 0 else None


@probe(
    key="cost.commitments",
    section=SECTION,
    item="Reserved Instances",
    title="Reservations and Savings Plans cover steady-state usage",
    actions=("ce:GetReservationCoverage", "ce:GetSavingsPlansCoverage"),
    scope=Scope.GLOBAL,
    severity=Severity.LOW,
    remediation=(
        "Review Billing and Cost Management > Savings Plans > Recommendations and "
        "Reservations > Recommendations for the steady part of the usage; buy a Compute "
        "Savings Plan (flexible across instance families and regions) or reservations for "
        "databases and caches."
    ),
)
def commitments(context: ProbeContext) -> ProbeResult:
    """The better of Reserved Instance and Savings Plans coverage over the window against
    the target; below target warns (the item asks that commitments were evaluated)."""
    target = context.settings.commitment_coverage_target_percent
    figures = {}
    for name in ("reservations", "savings_plans"):
        try:
            figures[name] = _coverage(context, name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "DataUnavailableException":
                raise
            figures[name] = None
    usable = {name: value for name, value in figures.items() if value is not None}
    facts = {
        "target_percent": target,
        "window_days": context.settings.commitment_window_days,
        **{
            f"{name}_coverage_percent": round(100 * c / w, 1) if w else None
            for name, (c, w) in usable.items()
        },
    }
    if not usable:
        return ProbeResult(
            Status.NOT_APPLICABLE,
            "No usage eligible for reservations or Savings Plans in the window (or Cost "
            "Explorer has no data yet for a new account)",
            facts=facts,
        )
    best_name, (covered, whole) = max(usable.items(), key=lambda pair: pair[1][0] / pair[1][1])
    percent = 100 * covered / whole
    label = {"reservations": "Reserved Instances", "savings_plans": "Savings Plans"}[best_name]
    summary = f"{label} cover {percent:.1f} % of eligible usage (target {target:g} %)"
    return ProbeResult(Status.PASS if percent >= target else Status.WARN, summary, facts=facts)


@probe(
    key="cost.s3_lifecycle",
    section=SECTION,
    item="Lifecycle Policies",
    title="S3 buckets move ageing objects to cheaper storage",
    actions=("s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:GetLifecycleConfiguration"),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Add a lifecycle rule with a transition (e.g. to STANDARD_IA after 30 days, GLACIER "
        "after 90) and, for versioned buckets, a noncurrent-version transition or expiration: "
        "S3 > bucket > Management > Create lifecycle rule, or `aws s3api "
        "put-bucket-lifecycle-configuration`."
    ),
)
def s3_lifecycle(context: ProbeContext) -> ProbeResult:
    """Each bucket of the region needs an enabled lifecycle rule with a transition."""
    s3 = context.client("s3")
    findings = []
    for name, region in sorted(bucket_regions(context, only_region=context.region).items()):
        if region != context.region:
            continue
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=name).get("Rules", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        moving = [
            rule
            for rule in rules
            if rule.get("Status") == "Enabled"
            and (rule.get("Transitions") or rule.get("NoncurrentVersionTransitions"))
        ]
        if moving:
            findings.append(
                Finding(name, Status.PASS, f"{len(moving)} enabled rule(s) with a transition")
            )
        elif rules:
            findings.append(
                Finding(name, Status.FAIL, "lifecycle rules, but none enabled with a transition")
            )
        else:
            findings.append(Finding(name, Status.FAIL, "no lifecycle configuration"))
    return verdict(
        findings,
        passed="{total} buckets transition ageing objects",
        failed="{failed} of {total} buckets keep every object in its first storage class",
        empty="No S3 buckets in this region",
        facts={"buckets": len(findings)},
    )


@probe(
    key="cost.nat_endpoints",
    section=SECTION,
    item="NAT Optimization",
    title="VPCs with a NAT gateway send S3 (and DynamoDB) traffic through gateway endpoints",
    actions=("ec2:DescribeNatGateways", "ec2:DescribeVpcEndpoints"),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Create free gateway endpoints for S3 and DynamoDB in each VPC with a NAT gateway and "
        "associate them with the private subnets' route tables: VPC > Endpoints > Create "
        "endpoint (type Gateway, service com.amazonaws.REGION.s3), or `aws ec2 "
        "create-vpc-endpoint --vpc-endpoint-type Gateway --service-name "
        "com.amazonaws.REGION.s3 --vpc-id VPC --route-table-ids RTB…`."
    ),
)
def nat_endpoints(context: ProbeContext) -> ProbeResult:
    """Fail a NAT VPC without an S3 gateway endpoint; warn without a DynamoDB one."""
    nat_vpcs: dict[str, int] = {}
    for gateway in context.paginate("ec2", "describe_nat_gateways", "NatGateways"):
        if gateway.get("State") in ("available", "pending"):
            nat_vpcs[gateway["VpcId"]] = nat_vpcs.get(gateway["VpcId"], 0) + 1
    if not nat_vpcs:
        return ProbeResult(Status.NOT_APPLICABLE, "No NAT gateways in this region")
    endpoints: dict[str, set[str]] = {}
    for endpoint in context.paginate("ec2", "describe_vpc_endpoints", "VpcEndpoints"):
        if endpoint.get("VpcEndpointType") == "Gateway" and endpoint.get("State", "").lower() in (
            "available",
            "pending",
        ):
            service = endpoint.get("ServiceName", "").rsplit(".", 1)[-1]
            endpoints.setdefault(endpoint["VpcId"], set()).add(service)
    findings = []
    for vpc, count in sorted(nat_vpcs.items()):
        services = endpoints.get(vpc, set())
        if "s3" not in services:
            status, reason = Status.FAIL, "no S3 gateway endpoint: S3 traffic pays NAT processing"
        elif "dynamodb" not in services:
            status, reason = Status.WARN, "S3 gateway endpoint; no DynamoDB gateway endpoint"
        else:
            status, reason = Status.PASS, "S3 and DynamoDB gateway endpoints"
        findings.append(Finding(vpc, status, f"{count} NAT gateway(s); {reason}"))
    return verdict(
        findings,
        passed="{total} VPCs with NAT gateways use S3 and DynamoDB gateway endpoints",
        failed="{failed} of {total} VPCs with NAT gateways lack an S3 gateway endpoint",
        warned="{warned} of {total} VPCs with NAT gateways lack a DynamoDB gateway endpoint",
        empty="",
        facts={"nat_vpcs": len(nat_vpcs)},
    )


@probe(
    key="cost.dev_toggles",
    section=SECTION,
    item="Development Toggles",
    title="Non-production Auto Scaling groups are scheduled to scale to zero and back",
    actions=("autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScheduledActions"),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Add two scheduled actions to each non-production group: one that sets min and desired "
        "capacity to 0 in the evening and one that restores them in the morning (EC2 > Auto "
        "Scaling groups > Automatic scaling > Scheduled actions, or `aws autoscaling "
        "put-scheduled-update-group-action --recurrence '0 20 * * 1-5' --min-size 0 "
        "--desired-capacity 0`)."
    ),
)
def dev_toggles(context: ProbeContext) -> ProbeResult:
    """Groups tagged with a non-production environment need a schedule down to zero and one
    back up; groups without the tag or tagged production are not judged."""
    key = context.settings.environment_tag_key
    production = {value.lower() for value in context.settings.production_environments}
    groups = {}
    for group in context.paginate(
        "autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups"
    ):
        environment = next(
            (tag["Value"] for tag in group.get("Tags", []) if tag.get("Key") == key), None
        )
        if environment and environment.lower() not in production:
            groups[group["AutoScalingGroupName"]] = environment
    if not groups:
        return ProbeResult(
            Status.NOT_APPLICABLE,
            f"No Auto Scaling groups tagged {key} with a non-production value in this region",
        )
    actions: dict[str, list[dict]] = {}
    for action in context.paginate(
        "autoscaling", "describe_scheduled_actions", "ScheduledUpdateGroupActions"
    ):
        actions.setdefault(action["AutoScalingGroupName"], []).append(action)
    findings = []
    for name, environment in sorted(groups.items()):
        scheduled = actions.get(name, [])
        down = any(a.get("DesiredCapacity") == 0 or a.get("MaxSize") == 0 for a in scheduled)
        up = any((a.get("DesiredCapacity") or a.get("MinSize") or 0) > 0 for a in scheduled)
        if down and up:
            status, reason = Status.PASS, "scheduled to zero and back"
        elif down:
            status, reason = Status.FAIL, "scaled to zero by schedule but never back up"
        elif scheduled:
            status, reason = Status.FAIL, "scheduled actions, none to zero"
        else:
            status, reason = Status.FAIL, "runs around the clock: no scheduled actions"
        findings.append(Finding(name, status, f"{key}={environment}: {reason}"))
    return verdict(
        findings,
        passed="{total} non-production groups sleep on a schedule",
        failed="{failed} of {total} non-production groups run around the clock",
        empty="",
        facts={"non_production_groups": len(groups), "tag_key": key},
    )
