"""Cost Optimization: budgets and anomaly alerts that reach someone, commitment coverage, S3
lifecycle transitions, VPC endpoints beside NAT gateways, non-production groups that sleep.

Right-Sizing lives in performance.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
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
    parallel_map,
    probe,
    verdict,
)

SECTION = "Cost Optimization"

# Budgets authorizes all its read operations with one IAM action; S3 lists Intelligent-Tiering
# configurations under the Get action.
action_names(
    {
        ("budgets", "DescribeBudgets"): "budgets:ViewBudget",
        ("budgets", "DescribeNotificationsForBudget"): "budgets:ViewBudget",
        ("budgets", "DescribeSubscribersForNotification"): "budgets:ViewBudget",
        (
            "s3",
            "ListBucketIntelligentTieringConfigurations",
        ): "s3:GetIntelligentTieringConfiguration",
    }
)


def _by_status(findings: list[Finding]) -> list[Finding]:
    order = {Status.FAIL: 0, Status.WARN: 1, Status.PASS: 2}
    return sorted(findings, key=lambda f: order.get(f.status, 3))


def _subscriber_types(subscribers: list[dict], type_key: str) -> str:
    counts: dict[str, int] = defaultdict(int)
    for subscriber in subscribers:
        counts[subscriber.get(type_key, "?")] += 1
    # Addresses (mailboxes, topics) stay out of the evidence: the type and count are enough.
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


# Budget Alerts


def _notification_text(notification: dict, unit: str) -> str:
    threshold = notification.get("Threshold")
    amount = (
        f"{threshold:g}%"
        if notification.get("ThresholdType", "PERCENTAGE") == "PERCENTAGE"
        else f"{threshold:g} {unit}"
    )
    operator = {"GREATER_THAN": ">", "LESS_THAN": "<", "EQUAL_TO": "="}.get(
        notification.get("ComparisonOperator", ""), notification.get("ComparisonOperator", "?")
    )
    return f"{notification.get('NotificationType', '?')} {operator} {amount}"


@probe(
    key="cost.budgets",
    section=SECTION,
    item="Budget Alerts",
    title="At least one COST budget notifies a subscriber, and no budget is without notification",
    actions=("sts:GetCallerIdentity", "budgets:ViewBudget"),
    scope=Scope.GLOBAL,
    severity=Severity.HIGH,
    remediation=(
        "Create a monthly cost budget with alerts (console: Billing and Cost Management > "
        "Budgets > Create budget > Monthly cost budget, with e-mail recipients or an SNS "
        "topic; or `aws budgets create-budget --account-id <id> --budget file://budget.json "
        "--notifications-with-subscribers file://alerts.json`, e.g. ACTUAL > 80% and "
        "FORECASTED > 100%). Give existing budgets without alerts a notification "
        "(`aws budgets create-notification ... --subscribers SubscriptionType=EMAIL,"
        "Address=<team address>`) or delete them."
    ),
)
def budgets(context: ProbeContext) -> ProbeResult:
    account = context.account_id()
    partition = context.session.get_partition_for_region(context.api_region)
    listed = list(context.paginate("budgets", "describe_budgets", "Budgets", AccountId=account))
    if not listed:
        return ProbeResult(
            Status.FAIL,
            f"No AWS Budget in account {account}: overspending alerts nobody",
            facts={"account": account, "budgets": 0, "cost_budgets": 0, "alerting_cost_budgets": 0},
        )

    def alerts(budget: dict) -> list[tuple[str, list[dict]]]:
        """(notification, subscribers) for every notification of the budget."""
        name = budget["BudgetName"]
        unit = (budget.get("BudgetLimit") or {}).get("Unit", "USD")
        return [
            (
                _notification_text(notification, unit),
                list(
                    context.paginate(
                        "budgets",
                        "describe_subscribers_for_notification",
                        "Subscribers",
                        AccountId=account,
                        BudgetName=name,
                        Notification=notification,
                    )
                ),
            )
            for notification in context.paginate(
                "budgets",
                "describe_notifications_for_budget",
                "Notifications",
                AccountId=account,
                BudgetName=name,
            )
        ]

    judged = []
    # One after the other: accounts hold a handful of budgets and the Budgets API throttles early.
    for budget in listed:
        notifications = alerts(budget)
        kind = budget.get("BudgetType", "COST")
        limit = budget.get("BudgetLimit") or {}
        what = f"{kind} budget {budget['BudgetName']} ({budget.get('TimeUnit', '?')}"
        what += f", limit {limit['Amount']} {limit.get('Unit', '')})" if limit else ")"
        heard = [(text, subs) for text, subs in notifications if subs]
        if heard:
            conditions = "; ".join(
                f"{text} to {_subscriber_types(subs, 'SubscriptionType')}" for text, subs in heard
            )
            reason = f"{what}: alerts on {conditions}"
            if kind != "COST":
                reason += " (not a cost budget: spend itself is not watched)"
        elif notifications:
            reason = f"{what}: {len(notifications)} notifications without subscribers"
        else:
            reason = f"{what}: no notification, crossing the limit alerts nobody"
        arn = f"arn:{partition}:budgets::{account}:budget/{budget['BudgetName']}"
        judged.append((arn, kind, bool(heard), reason))
    covered = any(kind == "COST" and heard for _, kind, heard, _ in judged)
    # Once one cost budget alerts, a silent budget is clutter to fix, not a blind spot.
    silent = Status.WARN if covered else Status.FAIL
    findings = [
        Finding(arn, Status.PASS if heard else silent, reason) for arn, _, heard, reason in judged
    ]
    facts = {
        "account": account,
        "budgets": len(judged),
        "cost_budgets": sum(kind == "COST" for _, kind, _, _ in judged),
        "alerting_cost_budgets": sum(kind == "COST" and heard for _, kind, heard, _ in judged),
        "budgets_without_alerts": sum(not heard for _, _, heard, _ in judged),
    }
    if not covered:
        return ProbeResult(
            Status.FAIL,
            f"None of {len(judged)} budgets is a COST budget whose notification reaches a "
            "subscriber",
            tuple(_by_status(findings)),
            facts,
        )
    return verdict(
        findings,
        passed="{total} budgets alert their subscribers, including a COST budget",
        failed="",
        warned="A COST budget alerts, but {warned} of {total} budgets notify nobody",
        empty="",
        facts=facts,
    )


# Cost Anomaly Detection


@probe(
    key="cost.anomaly_detection",
    section=SECTION,
    item="Cost Anomaly Detection",
    title="A Cost Anomaly Detection monitor has a subscription with a confirmed subscriber",
    actions=("ce:GetAnomalyMonitors", "ce:GetAnomalySubscriptions"),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Console: Billing and Cost Management > Cost Anomaly Detection > Create monitor (AWS "
        "services, or linked account / cost allocation tag / cost category) and an alert "
        "subscription with e-mail recipients (daily or weekly summary) or an SNS topic "
        "(individual alerts); CLI `aws ce create-anomaly-monitor --anomaly-monitor "
        "MonitorName=services,MonitorType=DIMENSIONAL,MonitorDimension=SERVICE` then `aws ce "
        "create-anomaly-subscription --anomaly-subscription file://subscription.json` with "
        "the monitor ARN in MonitorArnList. Replace subscribers whose status is DECLINED."
    ),
)
def anomaly_detection(context: ProbeContext) -> ProbeResult:
    monitors = list(context.paginate("ce", "get_anomaly_monitors", "AnomalyMonitors"))
    if not monitors:
        return ProbeResult(
            Status.FAIL,
            "Cost Anomaly Detection has no monitor: unusual spend is not detected",
            facts={"monitors": 0, "subscriptions": 0, "alerting_monitors": 0},
        )
    subscriptions = list(
        context.paginate("ce", "get_anomaly_subscriptions", "AnomalySubscriptions")
    )
    alerting: dict[str, list[str]] = defaultdict(list)
    silent: dict[str, list[str]] = defaultdict(list)
    for subscription in subscriptions:
        # A declined subscriber unsubscribed from the e-mails: nobody reads them any more.
        listening = [
            s for s in subscription.get("Subscribers", []) if s.get("Status") != "DECLINED"
        ]
        name = subscription.get("SubscriptionName", subscription.get("SubscriptionArn", "?"))
        for monitor_arn in subscription.get("MonitorArnList", []):
            if listening:
                alerting[monitor_arn].append(
                    f"subscription {name} ({subscription.get('Frequency', '?')}) to "
                    f"{_subscriber_types(listening, 'Type')}"
                )
            else:
                silent[monitor_arn].append(name)
    judged = []
    for monitor in monitors:
        arn = monitor["MonitorArn"]
        what = f"{monitor.get('MonitorType', '?')} monitor {monitor.get('MonitorName', arn)}"
        if monitor.get("MonitorDimension"):
            what += f" on {monitor['MonitorDimension']}"
        if alerting[arn]:
            judged.append((arn, True, f"{what}: alerts via {'; '.join(alerting[arn])}"))
        elif silent[arn]:
            judged.append(
                (
                    arn,
                    False,
                    f"{what}: subscriptions {', '.join(silent[arn])} have no confirmed subscriber",
                )
            )
        else:
            judged.append(
                (arn, False, f"{what}: no alert subscription, anomalies show only in the console")
            )
    covered = any(heard for _, heard, _ in judged)
    silent_status = Status.WARN if covered else Status.FAIL
    findings = [
        Finding(arn, Status.PASS if heard else silent_status, reason)
        for arn, heard, reason in judged
    ]
    return verdict(
        findings,
        passed="{total} anomaly monitors alert their subscribers",
        failed="None of {total} anomaly monitors alerts a confirmed subscriber",
        warned="{warned} of {total} anomaly monitors alert nobody (another one does)",
        empty="",
        facts={
            "monitors": len(monitors),
            "subscriptions": len(subscriptions),
            "alerting_monitors": sum(heard for _, heard, _ in judged),
        },
    )


# Reserved Instances (and Savings Plans)


def _ce_pages(call, key: str, token_key: str, **params) -> Iterator[dict]:
    """Every element of `key` for a Cost Explorer operation without a botocore paginator."""
    token = None
    while True:
        page = call(**params, **({token_key: token} if token else {}))
        yield from page.get(key, [])
        token = page.get(token_key)
        if not token:
            return


def _amount(value) -> float:
    return float(value or 0)


def _percent(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole > 0 else None


@probe(
    key="cost.commitments",
    section=SECTION,
    item="Reserved Instances",
    title=(
        "Reserved Instances (EC2) or Savings Plans cover the target share of eligible usage "
        "over the commitment window"
    ),
    actions=("ce:GetReservationCoverage", "ce:GetSavingsPlansCoverage"),
    scope=Scope.GLOBAL,
    severity=Severity.LOW,
    remediation=(
        "Review the steady-state baseline in Billing and Cost Management > Savings Plans > "
        "Recommendations (or Reservations > Recommendations) and purchase a Compute Savings "
        "Plan or Reserved Instances for it (`aws ce get-savings-plans-purchase-recommendation "
        "--savings-plans-type COMPUTE_SP --term-in-years ONE_YEAR --payment-option "
        "NO_UPFRONT --lookback-period-in-days THIRTY_DAYS`); track coverage in Cost "
        "Explorer > Savings Plans coverage / RI coverage."
    ),
)
def commitments(context: ProbeContext) -> ProbeResult:
    target = context.settings.commitment_coverage_target_percent
    days = context.settings.commitment_window_days
    end = datetime.now(UTC).date()
    start = end - timedelta(days=days)
    window = {"Start": start.isoformat(), "End": end.isoformat()}  # End is exclusive
    facts = {
        "coverage_target_percent": target,
        "window_days": days,
        "window": f"{window['Start']}..{window['End']}",
    }
    ce = context.client("ce")
    # Each Cost Explorer request is billed: one aggregate query per kind, monthly periods.
    try:
        reservation_periods = list(
            _ce_pages(
                ce.get_reservation_coverage,
                "CoveragesByTime",
                "NextPageToken",
                TimePeriod=window,
                Granularity="MONTHLY",
            )
        )
        plan_periods = list(
            _ce_pages(
                ce.get_savings_plans_coverage,
                "SavingsPlansCoverages",
                "NextToken",
                TimePeriod=window,
                Granularity="MONTHLY",
            )
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "DataUnavailableException":
            raise
        return ProbeResult(
            Status.NOT_APPLICABLE,
            f"Cost Explorer has no usage data for the last {days} days yet (a new account, or "
            "Cost Explorer enabled less than a day ago): coverage cannot be evaluated",
            facts=facts,
        )
    # Without GroupBy, each period's Total is the whole account for that period; CE defaults
    # reservation coverage to EC2 when no SERVICE filter is given.
    hours = [period.get("Total", {}).get("CoverageHours", {}) for period in reservation_periods]
    running = sum(_amount(h.get("TotalRunningHours")) for h in hours)
    reserved = sum(_amount(h.get("ReservedHours")) for h in hours)
    spend = [period.get("Coverage", {}) for period in plan_periods]
    eligible = sum(_amount(s.get("TotalCost")) for s in spend)
    covered = sum(_amount(s.get("SpendCoveredBySavingsPlans")) for s in spend)
    ri_percent, sp_percent = _percent(reserved, running), _percent(covered, eligible)
    facts |= {
        "reservation_coverage_percent": ri_percent,
        "reservation_running_hours": round(running, 1),
        "savings_plans_coverage_percent": sp_percent,
        "savings_plans_eligible_spend": round(eligible, 2),
    }
    if ri_percent is None and sp_percent is None:
        return ProbeResult(
            Status.NOT_APPLICABLE,
            f"No usage eligible for Reserved Instances (EC2) or Savings Plans in the last "
            f"{days} days",
            facts=facts,
        )
    figures = []
    if ri_percent is not None:
        figures.append(
            f"Reserved Instances cover {ri_percent:g}% of {running:,.0f} EC2 running hours"
        )
    if sp_percent is not None:
        figures.append(f"Savings Plans cover {sp_percent:g}% of {eligible:,.2f} eligible spend")
    best = max(p for p in (ri_percent, sp_percent) if p is not None)
    facts["best_coverage_percent"] = best
    detail = "; ".join(figures) + f" (last {days} days, target {target:g}%)"
    if best >= target:
        return ProbeResult(
            Status.PASS, f"Commitment coverage meets the target: {detail}", (), facts
        )
    return ProbeResult(Status.WARN, f"Commitment coverage below the target: {detail}", (), facts)


# Lifecycle Policies

# Objects must be 30 days old before they can move to Standard-IA/One Zone-IA (and are billed
# 30 days there anyway): data deleted sooner has no cheaper class to go to.
MIN_TRANSITION_DAYS = 30


def _rule_scope(rule: dict) -> str:
    filters = rule.get("Filter") or {}
    prefix = rule.get("Prefix", filters.get("Prefix", ""))
    if filters.get("And") or filters.get("Tag") or "ObjectSizeGreaterThan" in filters:
        return "filtered objects"
    return f"objects under {prefix}" if prefix else "objects"


def _rule_name(rule: dict) -> str:
    return f"rule {rule['ID']}" if rule.get("ID") else "a rule"


def _judge_rules(rules: list[dict]) -> tuple[Status, str]:
    enabled = [rule for rule in rules if rule.get("Status") == "Enabled"]
    if not enabled:
        return Status.FAIL, f"all {len(rules)} lifecycle rules are disabled"
    moves, short_lived, long_lived, noncurrent = [], [], [], []
    for rule in enabled:
        transitions = [
            *rule.get("Transitions", []),
            *([rule["Transition"]] if "Transition" in rule else []),
        ]
        for transition in transitions:
            when = (
                f"after {transition['Days']} days"
                if "Days" in transition
                else f"from {transition.get('Date')}"
            )
            moves.append(
                f"{_rule_name(rule)} moves {_rule_scope(rule)} to "
                f"{transition.get('StorageClass', '?')} {when}"
            )
        expiry = (rule.get("Expiration") or {}).get("Days")
        if expiry is not None:
            text = f"{_rule_name(rule)} deletes {_rule_scope(rule)} after {expiry} days"
            (short_lived if expiry <= MIN_TRANSITION_DAYS else long_lived).append(text)
        if rule.get("NoncurrentVersionTransitions") or rule.get("NoncurrentVersionExpiration"):
            noncurrent.append(_rule_name(rule))
    if moves:
        return Status.PASS, "; ".join(moves)
    if short_lived:
        return Status.PASS, "; ".join(short_lived) + " (too soon for a cheaper class to pay off)"
    if long_lived:
        return Status.WARN, "; ".join(long_lived) + ", never moving them to a cheaper class"
    if noncurrent:
        return (
            Status.WARN,
            f"only noncurrent versions are moved or deleted ({', '.join(noncurrent)}); current "
            "objects stay in their storage class",
        )
    return (
        Status.FAIL,
        "enabled rules only clean up incomplete uploads or delete markers; no transition",
    )


def _tiering_configurations(s3, bucket: str) -> Iterator[dict]:
    token = None
    while True:
        page = s3.list_bucket_intelligent_tiering_configurations(
            Bucket=bucket, **({"ContinuationToken": token} if token else {})
        )
        yield from page.get("IntelligentTieringConfigurationList", [])
        token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        if not token:
            return


@probe(
    key="cost.s3_lifecycle",
    section=SECTION,
    item="Lifecycle Policies",
    title=(
        "Every S3 bucket has an enabled lifecycle rule moving objects to a cheaper storage "
        "class (or an S3 Intelligent-Tiering archive configuration)"
    ),
    actions=(
        "s3:ListAllMyBuckets",
        "s3:GetBucketLocation",
        "s3:GetLifecycleConfiguration",
        "s3:GetIntelligentTieringConfiguration",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Add a lifecycle rule with transitions (console: S3 > bucket > Management > Create "
        "lifecycle rule > Transition current versions, e.g. STANDARD_IA after 30 days and "
        "GLACIER_IR or GLACIER after 90; also transition or expire noncurrent versions), or "
        "`aws s3api put-bucket-lifecycle-configuration --bucket <name> --lifecycle-configuration "
        "file://lifecycle.json`; for unpredictable access, transition to INTELLIGENT_TIERING "
        "at day 0. Data that is only kept a few days needs an expiration rule instead."
    ),
)
def s3_lifecycle(context: ProbeContext) -> ProbeResult:
    names = sorted(
        name
        for name, region in bucket_regions(context, only_region=context.region).items()
        if region == context.region  # emulators may ignore the server-side filter
    )
    if not names:
        return verdict([], passed="", failed="", empty=f"No S3 buckets in {context.region}")
    s3 = context.client("s3")

    def judge(name: str) -> Finding:
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=name).get("Rules", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        if rules:
            status, reason = _judge_rules(rules)
        else:
            status, reason = Status.FAIL, "no lifecycle configuration: objects never move"
        if status != Status.PASS:
            # Objects uploaded straight into INTELLIGENT_TIERING need no transition rule;
            # an archive configuration shows the bucket is meant to be used that way.
            tiering = [
                c.get("Id", "?")
                for c in _tiering_configurations(s3, name)
                if c.get("Status") == "Enabled"
            ]
            if tiering:
                status = Status.PASS
                reason = (
                    f"S3 Intelligent-Tiering archive configuration {', '.join(tiering)}; "
                    f"lifecycle: {reason}"
                )
        return Finding(name, status, reason)

    findings = parallel_map(judge, names)
    return verdict(
        findings,
        passed="All {total} S3 buckets move or expire their objects by lifecycle rules",
        failed="{failed} of {total} S3 buckets have no enabled lifecycle transition",
        warned="{warned} of {total} S3 buckets keep current objects in their storage class "
        "indefinitely",
        empty="",
        facts={
            "buckets": len(findings),
            "with_transitions": sum(f.status == Status.PASS for f in findings),
            "min_transition_days": MIN_TRANSITION_DAYS,
        },
    )


# NAT Optimization


def _gateway_endpoint_tables(endpoints: list[dict], service: str) -> dict[str, set[str]]:
    """VPC → route tables an available gateway endpoint of `service` is associated with."""
    tables: dict[str, set[str]] = defaultdict(set)
    for endpoint in endpoints:
        if (
            endpoint.get("VpcEndpointType") == "Gateway"
            and endpoint.get("ServiceName", "").endswith(f".{service}")
            and str(endpoint.get("State", "")).lower() == "available"
        ):
            tables[endpoint["VpcId"]].update(endpoint.get("RouteTableIds", []))
    return tables


def _endpoint_problem(
    service: str, tables_through_nat: set[str], vpc_tables: set[str] | None
) -> str | None:
    if vpc_tables is None:
        return (
            f"no {service} gateway endpoint: {service} traffic goes through the NAT "
            "(charged per GB processed)"
        )
    missing = sorted(tables_through_nat - vpc_tables)
    if missing:
        return (
            f"the {service} gateway endpoint is not on route tables {', '.join(missing)}, "
            "which route through the NAT"
        )
    return None


@probe(
    key="cost.nat_endpoints",
    section=SECTION,
    item="NAT Optimization",
    title=(
        "VPCs with a NAT gateway have S3 and DynamoDB gateway endpoints on the route tables "
        "that use the NAT"
    ),
    actions=("ec2:DescribeNatGateways", "ec2:DescribeRouteTables", "ec2:DescribeVpcEndpoints"),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Create free gateway endpoints for S3 and DynamoDB on the private route tables: "
        "console VPC > Endpoints > Create endpoint > AWS services > com.amazonaws.<region>.s3 "
        "(type Gateway) and select the route tables; or `aws ec2 create-vpc-endpoint --vpc-id "
        "<vpc> --service-name com.amazonaws.<region>.s3 --vpc-endpoint-type Gateway "
        "--route-table-ids <rtb> ...` (same for .dynamodb). Delete NAT gateways that no route "
        "table uses."
    ),
)
def nat_endpoints(context: ProbeContext) -> ProbeResult:
    gateways = list(
        context.paginate(
            "ec2",
            "describe_nat_gateways",
            "NatGateways",
            Filter=[{"Name": "state", "Values": ["available"]}],
        )
    )
    # A private NAT gateway has no route to the internet, so no S3/DynamoDB traffic to save.
    public = [g for g in gateways if (g.get("ConnectivityType") or "public") == "public"]
    facts = {"nat_gateways": len(public), "private_nat_gateways": len(gateways) - len(public)}
    if not public:
        return verdict(
            [],
            passed="",
            failed="",
            empty=f"No public NAT gateway in {context.region}",
            facts=facts,
        )
    nats_of_vpc: dict[str, set[str]] = defaultdict(set)
    for gateway in public:
        nats_of_vpc[gateway["VpcId"]].add(gateway["NatGatewayId"])
    through_nat: dict[str, set[str]] = defaultdict(set)
    for table in context.paginate("ec2", "describe_route_tables", "RouteTables"):
        nats = nats_of_vpc.get(table.get("VpcId"), set())
        if any(
            route.get("NatGatewayId") in nats and route.get("State") != "blackhole"
            for route in table.get("Routes", [])
        ):
            through_nat[table["VpcId"]].add(table["RouteTableId"])
    endpoints = list(context.paginate("ec2", "describe_vpc_endpoints", "VpcEndpoints"))
    s3_tables = _gateway_endpoint_tables(endpoints, "s3")
    dynamodb_tables = _gateway_endpoint_tables(endpoints, "dynamodb")
    findings = []
    for vpc, nats in sorted(nats_of_vpc.items()):
        tables = through_nat[vpc]
        if not tables:
            findings.append(
                Finding(
                    vpc,
                    Status.WARN,
                    f"NAT gateways {', '.join(sorted(nats))} are in no route table: charged "
                    "by the hour, carrying nothing",
                )
            )
            continue
        s3 = _endpoint_problem("S3", tables, s3_tables.get(vpc))
        dynamodb = _endpoint_problem("DynamoDB", tables, dynamodb_tables.get(vpc))
        problems = [p for p in (s3, dynamodb) if p]
        if problems:
            status = Status.FAIL if s3 else Status.WARN
            reason = "; ".join(problems)
        else:
            status = Status.PASS
            reason = f"S3 and DynamoDB gateway endpoints on all {len(tables)} route tables "
            reason += f"using NAT {', '.join(sorted(nats))}"
        findings.append(Finding(vpc, status, reason))
    return verdict(
        findings,
        passed="All {total} VPCs with a NAT gateway reach S3 and DynamoDB through gateway "
        "endpoints",
        failed="{failed} of {total} VPCs with a NAT gateway send S3 traffic through the NAT",
        warned="{warned} of {total} VPCs with a NAT gateway lack a DynamoDB gateway endpoint "
        "or have an unused NAT",
        empty="",
        facts={
            **facts,
            "vpcs_with_nat": len(nats_of_vpc),
            "s3_gateway_endpoint_vpcs": len(s3_tables),
            "dynamodb_gateway_endpoint_vpcs": len(dynamodb_tables),
        },
    )


# Development Toggles


def _when(action: dict) -> str:
    when = f"'{action['Recurrence']}'"
    return f"{when} {action['TimeZone']}" if action.get("TimeZone") else f"{when} UTC"


def _scales_to_zero(action: dict, group: dict) -> bool:
    # An action leaving MinSize above zero fails when it runs, so the minimum must be 0 too.
    minimum = action.get("MinSize", group.get("MinSize"))
    return minimum == 0 and (action.get("DesiredCapacity") == 0 or action.get("MaxSize") == 0)


def _scales_up(action: dict) -> bool:
    return (action.get("DesiredCapacity") or 0) > 0 or (action.get("MinSize") or 0) > 0


def _judge_group(group: dict, actions: list[dict]) -> tuple[Status, str]:
    recurring = [a for a in actions if a.get("Recurrence")]
    stops = [a for a in recurring if _scales_to_zero(a, group)]
    starts = [a for a in recurring if _scales_up(a)]
    if stops and starts:
        return (
            Status.PASS,
            f"scales to zero at {', '.join(_when(a) for a in stops)} and back up at "
            f"{', '.join(_when(a) for a in starts)}",
        )
    if group.get("MaxSize") == 0 and group.get("DesiredCapacity") == 0:
        return Status.PASS, "parked at zero (MaxSize 0): costs nothing while off"
    one_off = len(actions) - len(recurring)
    note = f" ({one_off} one-off scheduled actions do not repeat)" if one_off else ""
    if stops:
        return (
            Status.FAIL,
            f"scales to zero at {', '.join(_when(a) for a in stops)} but no recurring action "
            f"scales it back up{note}",
        )
    return (
        Status.FAIL,
        "no recurring scheduled action scales it to zero (MinSize and DesiredCapacity 0): "
        f"runs around the clock{note}",
    )


@probe(
    key="cost.dev_toggles",
    section=SECTION,
    item="Development Toggles",
    title=(
        "Non-production Auto Scaling groups (by environment tag) scale to zero and back up on "
        "a recurring schedule"
    ),
    actions=("autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScheduledActions"),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Add recurring scheduled actions to each non-production group: `aws autoscaling "
        "put-scheduled-update-group-action --auto-scaling-group-name <group> "
        "--scheduled-action-name night --recurrence '0 20 * * 1-5' --time-zone <tz> "
        "--min-size 0 --desired-capacity 0` and a matching 'morning' action with the working "
        "sizes (console: EC2 > Auto Scaling groups > group > Automatic scaling > Scheduled "
        "actions); or use AWS Instance Scheduler."
    ),
)
def dev_toggles(context: ProbeContext) -> ProbeResult:
    tag_key = context.settings.environment_tag_key
    production = {value.strip().lower() for value in context.settings.production_environments}
    groups = list(
        context.paginate("autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups")
    )
    non_production = []
    for group in groups:
        environments = [
            str(tag.get("Value", "")).strip()
            for tag in group.get("Tags", [])
            if tag.get("Key", "").lower() == tag_key.lower()
        ]
        # An empty value names no environment: such a group is treated as untagged.
        if environments and environments[0] and environments[0].lower() not in production:
            non_production.append((group, environments[0]))
    facts = {
        "auto_scaling_groups": len(groups),
        "non_production_groups": len(non_production),
        "environment_tag_key": tag_key,
        "production_environments": sorted(production),
    }
    if not non_production:
        return verdict(
            [],
            passed="",
            failed="",
            empty=f"No Auto Scaling group tagged {tag_key} with a non-production value in "
            f"{context.region}",
            facts=facts,
        )
    actions: dict[str, list[dict]] = defaultdict(list)
    for action in context.paginate(
        "autoscaling", "describe_scheduled_actions", "ScheduledUpdateGroupActions"
    ):
        actions[action.get("AutoScalingGroupName", "")].append(action)
    findings = []
    for group, environment in non_production:
        name = group["AutoScalingGroupName"]
        status, reason = _judge_group(group, actions[name])
        findings.append(Finding(name, status, f"{tag_key}={environment}: {reason}"))
    return verdict(
        findings,
        passed="All {total} non-production Auto Scaling groups sleep on a schedule",
        failed="{failed} of {total} non-production Auto Scaling groups run around the clock",
        empty="",
        facts=facts,
    )
