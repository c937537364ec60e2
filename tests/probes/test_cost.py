from datetime import date

import moto
import pytest
from botocore.stub import ANY, Stubber

from readiness.probes.base import Status, execute, registry
from tests.conftest import REGION

ACCOUNT = "123456789012"  # moto's account
OTHER_REGION = "eu-west-1"


def run(key, context):
    return execute(registry()[key], context).result


def by_id(result) -> dict:
    return {finding.resource: finding for finding in result.findings}


def _without_metadata(response: dict) -> dict:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


# Budget Alerts

NOTIFICATION = {
    "NotificationType": "ACTUAL",
    "ComparisonOperator": "GREATER_THAN",
    "Threshold": 80,
    "ThresholdType": "PERCENTAGE",
}
EMAIL = {"SubscriptionType": "EMAIL", "Address": "finops@example.com"}
TOPIC = {"SubscriptionType": "SNS", "Address": f"arn:aws:sns:{REGION}:{ACCOUNT}:budget-alerts"}


def _budget(aws, name: str, kind: str = "COST", subscribers=None) -> str:
    """A budget in moto; `subscribers` gives it one ACTUAL > 80% notification."""
    aws.client("budgets").create_budget(
        AccountId=ACCOUNT,
        Budget={
            "BudgetName": name,
            "BudgetLimit": {"Amount": "500", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": kind,
        },
        NotificationsWithSubscribers=[{"Notification": NOTIFICATION, "Subscribers": subscribers}]
        if subscribers
        else [],
    )
    return f"arn:aws:budgets::{ACCOUNT}:budget/{name}"


def _stub_budgets(aws, context, subscribers: dict[str, list[dict]]) -> Stubber:
    """moto's own budgets and notifications, plus the subscribers moto cannot list
    (it has no DescribeSubscribersForNotification)."""
    moto = aws.client("budgets")
    stubber = Stubber(context.client("budgets"))
    listed = _without_metadata(moto.describe_budgets(AccountId=ACCOUNT))
    listed.pop("nextToken", None)
    stubber.add_response("describe_budgets", listed, {"AccountId": ACCOUNT})
    for budget in listed["Budgets"]:
        name = budget["BudgetName"]
        notifications = moto.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName=name)
        stubber.add_response(
            "describe_notifications_for_budget",
            {"Notifications": notifications["Notifications"]},
            {"AccountId": ACCOUNT, "BudgetName": name},
        )
        for notification in notifications["Notifications"]:
            stubber.add_response(
                "describe_subscribers_for_notification",
                {"Subscribers": subscribers[name]},
                {"AccountId": ACCOUNT, "BudgetName": name, "Notification": notification},
            )
    return stubber


def test_budgets_pass_when_a_cost_budget_alerts_its_subscribers(aws, make_context):
    monthly = _budget(aws, "monthly", subscribers=[EMAIL, TOPIC])
    context = make_context("global")
    with _stub_budgets(aws, context, {"monthly": [EMAIL, TOPIC]}):
        result = run("cost.budgets", context)
    assert result.status == Status.PASS, result
    finding = by_id(result)[monthly]
    assert finding.reason == (
        "COST budget monthly (MONTHLY, limit 500 USD): alerts on ACTUAL > 80% to 1 EMAIL, 1 SNS"
    )
    assert "finops@example.com" not in finding.reason
    assert result.facts == {
        "account": ACCOUNT,
        "budgets": 1,
        "cost_budgets": 1,
        "alerting_cost_budgets": 1,
        "budgets_without_alerts": 0,
    }


def test_budgets_warn_about_silent_budgets_beside_an_alerting_one(aws, make_context):
    monthly = _budget(aws, "monthly", subscribers=[EMAIL])
    silent = _budget(aws, "sandbox")
    context = make_context("global")
    with _stub_budgets(aws, context, {"monthly": [EMAIL]}):
        result = run("cost.budgets", context)
    assert result.status == Status.WARN, result
    assert by_id(result)[monthly].status == Status.PASS
    assert by_id(result)[silent].status == Status.WARN
    assert "no notification, crossing the limit alerts nobody" in by_id(result)[silent].reason
    assert result.summary == "A COST budget alerts, but 1 of 2 budgets notify nobody"


def test_budgets_fail_when_only_a_usage_budget_alerts(aws, make_context):
    usage = _budget(aws, "ec2-hours", kind="USAGE", subscribers=[EMAIL])
    cost = _budget(aws, "monthly")
    context = make_context("global")
    with _stub_budgets(aws, context, {"ec2-hours": [EMAIL]}):
        result = run("cost.budgets", context)
    assert result.status == Status.FAIL
    assert result.findings[0].resource == cost  # failures first
    assert by_id(result)[cost].status == Status.FAIL
    assert "not a cost budget" in by_id(result)[usage].reason
    assert result.facts["alerting_cost_budgets"] == 0


def test_budgets_fail_without_any_budget(aws, make_context):
    result = run("cost.budgets", make_context("global"))
    assert result.status == Status.FAIL
    assert result.summary == f"No AWS Budget in account {ACCOUNT}: overspending alerts nobody"


def test_budgets_error_names_the_budgets_action_when_subscribers_cannot_be_read(aws, make_context):
    _budget(aws, "monthly", subscribers=[EMAIL])  # moto has no DescribeSubscribers...
    result = run("cost.budgets", make_context("global"))
    assert result.status == Status.ERROR
    assert result.summary == (
        "budgets:ViewBudget failed: NotImplemented: The AWS emulator (moto "
        f"{moto.__version__}) does not implement DescribeSubscribersForNotification"
    )


# Cost Anomaly Detection

MONITOR = f"arn:aws:ce::{ACCOUNT}:anomalymonitor/services"
TEAM_MONITOR = f"arn:aws:ce::{ACCOUNT}:anomalymonitor/team"


def _monitor(arn=MONITOR, name="services") -> dict:
    return {
        "MonitorArn": arn,
        "MonitorName": name,
        "MonitorType": "DIMENSIONAL",
        "MonitorDimension": "SERVICE",
    }


def _subscription(name: str, monitors: list[str], *statuses: str, frequency="DAILY") -> dict:
    return {
        "SubscriptionArn": f"arn:aws:ce::{ACCOUNT}:anomalysubscription/{name}",
        "SubscriptionName": name,
        "AccountId": ACCOUNT,
        "MonitorArnList": monitors,
        "Subscribers": [
            {"Address": f"{n}@example.com", "Type": "EMAIL", "Status": status}
            for n, status in enumerate(statuses)
        ],
        "Frequency": frequency,
    }


def _anomalies(context, monitor_pages: list[list[dict]], subscriptions: list[dict]) -> Stubber:
    # moto has no Cost Explorer anomaly API: answer as AWS does.
    stubber = Stubber(context.client("ce"))
    for number, monitors in enumerate(monitor_pages):
        page = {"AnomalyMonitors": monitors}
        if number + 1 < len(monitor_pages):
            page["NextPageToken"] = f"page-{number + 1}"
        stubber.add_response(
            "get_anomaly_monitors", page, {"NextPageToken": f"page-{number}"} if number else {}
        )
    if any(monitor_pages):
        stubber.add_response("get_anomaly_subscriptions", {"AnomalySubscriptions": subscriptions})
    return stubber


def test_anomaly_detection_passes_with_a_confirmed_subscriber(aws, make_context):
    context = make_context("global")
    subscription = _subscription("finops", [MONITOR], "CONFIRMED", frequency="IMMEDIATE")
    with _anomalies(context, [[_monitor()]], [subscription]):
        result = run("cost.anomaly_detection", context)
    assert result.status == Status.PASS, result
    assert by_id(result)[MONITOR].reason == (
        "DIMENSIONAL monitor services on SERVICE: alerts via subscription finops (IMMEDIATE) "
        "to 1 EMAIL"
    )
    assert result.facts == {"monitors": 1, "subscriptions": 1, "alerting_monitors": 1}


def test_anomaly_detection_fails_without_a_monitor(aws, make_context):
    context = make_context("global")
    with _anomalies(context, [[]], []):  # no subscription call when nothing is monitored
        result = run("cost.anomaly_detection", context)
    assert result.status == Status.FAIL
    assert result.summary == "Cost Anomaly Detection has no monitor: unusual spend is not detected"


def test_anomaly_detection_fails_when_nobody_listens(aws, make_context):
    context = make_context("global")
    declined = _subscription("old-team", [MONITOR], "DECLINED")
    with _anomalies(context, [[_monitor(), _monitor(TEAM_MONITOR, "team")]], [declined]):
        result = run("cost.anomaly_detection", context)
    assert result.status == Status.FAIL
    assert result.summary == "None of 2 anomaly monitors alerts a confirmed subscriber"
    assert "old-team have no confirmed subscriber" in by_id(result)[MONITOR].reason
    assert "no alert subscription" in by_id(result)[TEAM_MONITOR].reason


def test_anomaly_detection_warns_for_a_silent_monitor_across_pages(aws, make_context):
    context = make_context("global")
    listening = _subscription("finops", [MONITOR], "CONFIRMED", "DECLINED")
    with _anomalies(context, [[_monitor()], [_monitor(TEAM_MONITOR, "team")]], [listening]):
        result = run("cost.anomaly_detection", context)
    assert result.status == Status.WARN, result
    assert by_id(result)[MONITOR].status == Status.PASS
    assert by_id(result)[MONITOR].reason.endswith("to 1 EMAIL")  # the declined one is not heard
    assert by_id(result)[TEAM_MONITOR].status == Status.WARN
    assert result.facts["alerting_monitors"] == 1


# Reserved Instances (commitment coverage)


def _reservation_page(reserved: float, running: float, token: str | None = None) -> dict:
    page = {
        "CoveragesByTime": [
            {
                "TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"},
                "Total": {
                    "CoverageHours": {
                        "ReservedHours": str(reserved),
                        "OnDemandHours": str(running - reserved),
                        "TotalRunningHours": str(running),
                        "CoverageHoursPercentage": str(100 * reserved / running if running else 0),
                    }
                },
            }
        ]
    }
    if token:
        page["NextPageToken"] = token
    return page


def _plans_page(covered: float, on_demand: float, token: str | None = None) -> dict:
    page = {
        "SavingsPlansCoverages": [
            {
                "Coverage": {
                    "SpendCoveredBySavingsPlans": str(covered),
                    "OnDemandCost": str(on_demand),
                    "TotalCost": str(covered + on_demand),
                    "CoveragePercentage": "0",
                },
                "TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"},
            }
        ]
    }
    if token:
        page["NextToken"] = token
    return page


def _coverage(context, reservation_pages: list[dict], plan_pages: list[dict]) -> Stubber:
    # moto has no reservation or Savings Plans coverage: answer as AWS does.
    stubber = Stubber(context.client("ce"))
    expected = {"TimePeriod": ANY, "Granularity": "MONTHLY"}
    for number, page in enumerate(reservation_pages):
        token = {"NextPageToken": reservation_pages[number - 1]["NextPageToken"]} if number else {}
        stubber.add_response("get_reservation_coverage", page, {**expected, **token})
    for number, page in enumerate(plan_pages):
        token = {"NextToken": plan_pages[number - 1]["NextToken"]} if number else {}
        stubber.add_response("get_savings_plans_coverage", page, {**expected, **token})
    return stubber


def test_commitments_warn_below_the_target_with_both_figures(aws, make_context):
    context = make_context("global")
    with _coverage(context, [_reservation_page(300, 1000)], [_plans_page(400, 600)]):
        result = run("cost.commitments", context)
    assert result.status == Status.WARN, result
    assert result.summary == (
        "Commitment coverage below the target: Reserved Instances cover 30% of 1,000 EC2 "
        "running hours; Savings Plans cover 40% of 1,000.00 eligible spend (last 30 days, "
        "target 70%)"
    )
    assert result.facts["reservation_coverage_percent"] == 30.0
    assert result.facts["savings_plans_coverage_percent"] == 40.0
    assert result.facts["best_coverage_percent"] == 40.0
    assert result.facts["coverage_target_percent"] == 70.0
    start, end = (date.fromisoformat(d) for d in result.facts["window"].split(".."))
    assert (end - start).days == 30


def test_commitments_pass_on_the_better_figure_summed_over_pages(aws, make_context):
    context = make_context("global")
    reservations = [_reservation_page(0, 500, token="r2"), _reservation_page(0, 500)]
    plans = [_plans_page(300, 100, token="p2"), _plans_page(500, 100)]
    with _coverage(context, reservations, plans):
        result = run("cost.commitments", context)
    assert result.status == Status.PASS, result
    assert result.facts["reservation_coverage_percent"] == 0.0
    assert result.facts["savings_plans_coverage_percent"] == 80.0
    assert result.facts["savings_plans_eligible_spend"] == 1000.0
    assert result.summary.startswith("Commitment coverage meets the target")


def test_commitments_use_the_target_and_window_from_settings(aws, make_context):
    context = make_context(
        "global", commitment_coverage_target_percent=25, commitment_window_days=90
    )
    with _coverage(context, [_reservation_page(300, 1000)], [_plans_page(0, 0)]):
        result = run("cost.commitments", context)
    assert result.status == Status.PASS, result
    assert result.facts["savings_plans_coverage_percent"] is None  # no eligible spend
    assert "Savings Plans" not in result.summary
    assert result.summary.endswith("(last 90 days, target 25%)")
    start, end = (date.fromisoformat(d) for d in result.facts["window"].split(".."))
    assert (end - start).days == 90


def test_commitments_not_applicable_without_eligible_usage(aws, make_context):
    context = make_context("global")
    with _coverage(context, [_reservation_page(0, 0)], [_plans_page(0, 0)]):
        result = run("cost.commitments", context)
    assert result.status == Status.NOT_APPLICABLE
    assert result.summary.startswith("No usage eligible for Reserved Instances")


def test_commitments_not_applicable_while_cost_explorer_has_no_data(aws, make_context):
    context = make_context("global")
    with Stubber(context.client("ce")) as stubber:
        stubber.add_client_error(
            "get_reservation_coverage",
            service_error_code="DataUnavailableException",
            service_message="Data is not available. Please try to adjust the time period.",
        )
        result = run("cost.commitments", context)
    assert result.status == Status.NOT_APPLICABLE
    assert "new account" in result.summary
    assert result.facts["window_days"] == 30


def test_commitments_other_errors_are_errors(aws, make_context):
    context = make_context("global")
    with Stubber(context.client("ce")) as stubber:
        stubber.add_client_error(
            "get_reservation_coverage", "AccessDeniedException", http_status_code=400
        )
        result = run("cost.commitments", context)
    assert result.status == Status.ERROR
    assert result.summary == "Access denied: the probe needs ce:GetReservationCoverage"


# Lifecycle Policies


def _bucket(aws, name: str, *rules: dict, region: str = REGION) -> str:
    s3 = aws.client("s3", region_name=region)
    location = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3.create_bucket(Bucket=name, **({"CreateBucketConfiguration": location} if location else {}))
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": list(rules)}
        )
    return name


def _rule(rule_id: str, status: str = "Enabled", prefix: str = "", **actions) -> dict:
    return {"ID": rule_id, "Status": status, "Filter": {"Prefix": prefix}, **actions}


def test_lifecycle_passes_transitions_and_short_lived_data(aws, make_context):
    archive = _bucket(
        aws,
        "archive",
        _rule("cold", prefix="logs/", Transitions=[{"Days": 90, "StorageClass": "GLACIER"}]),
    )
    scratch = _bucket(aws, "scratch", _rule("purge", Expiration={"Days": 7}))
    result = run("cost.s3_lifecycle", make_context())
    assert result.status == Status.PASS, result
    assert (
        by_id(result)[archive].reason
        == "rule cold moves objects under logs/ to GLACIER after 90 days"
    )
    assert "deletes objects after 7 days" in by_id(result)[scratch].reason
    assert result.facts == {"buckets": 2, "with_transitions": 2, "min_transition_days": 30}


def test_lifecycle_fails_buckets_without_enabled_transitions_and_warns_partial_rules(
    aws, make_context
):
    hot = _bucket(aws, "hot")
    paused = _bucket(
        aws,
        "paused",
        _rule("cold", status="Disabled", Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}]),
    )
    uploads = _bucket(
        aws, "uploads", _rule("abort", AbortIncompleteMultipartUpload={"DaysAfterInitiation": 7})
    )
    kept = _bucket(aws, "kept-a-year", _rule("year", Expiration={"Days": 365}))
    versions = _bucket(
        aws,
        "versions",
        _rule(
            "old",
            NoncurrentVersionTransitions=[{"NoncurrentDays": 30, "StorageClass": "GLACIER"}],
        ),
    )
    result = run("cost.s3_lifecycle", make_context())
    assert result.status == Status.FAIL
    found = by_id(result)
    assert {name: found[name].status for name in found} == {
        hot: Status.FAIL,
        paused: Status.FAIL,
        uploads: Status.FAIL,
        kept: Status.WARN,
        versions: Status.WARN,
    }
    assert found[hot].reason == "no lifecycle configuration: objects never move"
    assert found[paused].reason == "all 1 lifecycle rules are disabled"
    assert "only clean up incomplete uploads" in found[uploads].reason
    assert "never moving them to a cheaper class" in found[kept].reason
    assert "only noncurrent versions" in found[versions].reason
    assert result.summary == "3 of 5 S3 buckets have no enabled lifecycle transition"


def test_lifecycle_judges_only_the_buckets_of_the_region(aws, make_context):
    _bucket(aws, "elsewhere", region=OTHER_REGION)
    assert run("cost.s3_lifecycle", make_context()).status == Status.NOT_APPLICABLE
    result = run("cost.s3_lifecycle", make_context(OTHER_REGION))
    assert result.status == Status.FAIL
    assert set(by_id(result)) == {"elsewhere"}


def test_lifecycle_accepts_an_intelligent_tiering_archive_configuration(aws, make_context):
    context = make_context()
    client = context.client("s3")
    # moto has no Intelligent-Tiering configurations: answer S3 as AWS would.
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_buckets",
            {"Buckets": [{"Name": "media", "BucketRegion": REGION}]},
            {"BucketRegion": REGION},
        )
        stubber.add_client_error(
            "get_bucket_lifecycle_configuration",
            service_error_code="NoSuchLifecycleConfiguration",
            http_status_code=404,
            expected_params={"Bucket": "media"},
        )
        stubber.add_response(
            "list_bucket_intelligent_tiering_configurations",
            {
                "IsTruncated": False,
                "IntelligentTieringConfigurationList": [
                    {
                        "Id": "archive",
                        "Status": "Enabled",
                        "Tierings": [{"Days": 90, "AccessTier": "ARCHIVE_ACCESS"}],
                    }
                ],
            },
            {"Bucket": "media"},
        )
        result = run("cost.s3_lifecycle", context)
    assert result.status == Status.PASS, result
    assert result.findings[0].reason.startswith(
        "S3 Intelligent-Tiering archive configuration archive"
    )


def test_lifecycle_not_applicable_without_buckets(aws, make_context):
    result = run("cost.s3_lifecycle", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert result.summary == f"No S3 buckets in {REGION}"


# NAT Optimization


def _nat_vpc(aws, cidr: str = "10.1.0.0/16", *, routed: bool = True, **kwargs) -> dict:
    """A VPC with a NAT gateway and, if `routed`, a private route table sending 0.0.0.0/0 to
    it."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.rsplit(".", 2)[0]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.1.0/24")["Subnet"]["SubnetId"]
    if kwargs.get("ConnectivityType") != "private":
        kwargs["AllocationId"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, **kwargs)["NatGateway"]["NatGatewayId"]
    ids = {"vpc": vpc, "nat": nat}
    if routed:
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        ids["table"] = table
    return ids


def _endpoint(aws, net: dict, service: str, tables: list[str] | None = None) -> None:
    aws.client("ec2").create_vpc_endpoint(
        VpcId=net["vpc"],
        ServiceName=f"com.amazonaws.{REGION}.{service}",
        VpcEndpointType="Gateway",
        RouteTableIds=[net["table"]] if tables is None else tables,
    )


def test_nat_passes_with_s3_and_dynamodb_gateway_endpoints(aws, make_context):
    net = _nat_vpc(aws)
    _endpoint(aws, net, "s3")
    _endpoint(aws, net, "dynamodb")
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.PASS, result
    assert by_id(result)[net["vpc"]].reason == (
        f"S3 and DynamoDB gateway endpoints on all 1 route tables using NAT {net['nat']}"
    )
    assert result.facts["vpcs_with_nat"] == 1


def test_nat_fails_without_an_s3_endpoint_and_warns_without_dynamodb(aws, make_context):
    bare = _nat_vpc(aws)
    s3_only = _nat_vpc(aws, "10.2.0.0/16")
    _endpoint(aws, s3_only, "s3")
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.FAIL
    found = by_id(result)
    assert found[bare["vpc"]].status == Status.FAIL
    assert found[bare["vpc"]].reason.startswith("no S3 gateway endpoint")
    assert "no DynamoDB gateway endpoint" in found[bare["vpc"]].reason
    assert found[s3_only["vpc"]].status == Status.WARN
    assert found[s3_only["vpc"]].reason.startswith("no DynamoDB gateway endpoint")


def test_nat_fails_when_the_s3_endpoint_misses_the_route_table_using_the_nat(aws, make_context):
    net = _nat_vpc(aws)
    other = aws.client("ec2").create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    _endpoint(aws, net, "s3", tables=[other])
    _endpoint(aws, net, "dynamodb")
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.FAIL
    assert by_id(result)[net["vpc"]].reason == (
        f"the S3 gateway endpoint is not on route tables {net['table']}, which route through "
        "the NAT"
    )


def test_nat_warns_about_a_nat_gateway_no_route_table_uses(aws, make_context):
    net = _nat_vpc(aws, routed=False)
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.WARN
    assert by_id(result)[net["vpc"]].reason.startswith(f"NAT gateways {net['nat']} are in no route")


def test_nat_not_applicable_without_a_public_nat_gateway(aws, make_context):
    assert run("cost.nat_endpoints", make_context()).status == Status.NOT_APPLICABLE
    _nat_vpc(aws, ConnectivityType="private")
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert result.facts == {"nat_gateways": 0, "private_nat_gateways": 1}


# Development Toggles


def _group(aws, name: str, environment: str | None, *schedule, key="Environment", **sizes):
    autoscaling = aws.client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"{name}-lc", ImageId="ami-12345678", InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=f"{name}-lc",
        AvailabilityZones=[f"{REGION}a"],
        Tags=[{"Key": key, "Value": environment, "PropagateAtLaunch": True}]
        if environment is not None
        else [],
        **({"MinSize": 0, "MaxSize": 2} | sizes),
    )
    for action, recurrence, size in schedule:
        autoscaling.put_scheduled_update_group_action(
            AutoScalingGroupName=name,
            # Unique across groups: moto keys scheduled actions by name alone.
            ScheduledActionName=f"{name}-{action}",
            **({"Recurrence": recurrence} if recurrence else {"StartTime": "2030-01-01T00:00:00Z"}),
            MinSize=size,
            DesiredCapacity=size,
        )
    return name


NIGHT = ("night", "0 20 * * 1-5", 0)
MORNING = ("morning", "0 7 * * 1-5", 2)


def test_dev_toggles_pass_for_groups_that_sleep_on_a_schedule(aws, make_context):
    web = _group(aws, "staging-web", "Staging", NIGHT, MORNING)
    parked = _group(aws, "dev-old", "dev", MaxSize=0)
    result = run("cost.dev_toggles", make_context())
    assert result.status == Status.PASS, result
    assert by_id(result)[web].reason == (
        "Environment=Staging: scales to zero at '0 20 * * 1-5' UTC and back up at '0 7 * * 1-5' UTC"
    )
    assert "parked at zero" in by_id(result)[parked].reason


def test_dev_toggles_fail_groups_that_never_sleep_or_never_wake(aws, make_context):
    batch = _group(aws, "dev-batch", "dev")
    qa = _group(aws, "qa-api", "qa", NIGHT)
    one_off = _group(aws, "test-web", "test", ("night", None, 0), MORNING)
    result = run("cost.dev_toggles", make_context())
    assert result.status == Status.FAIL
    found = by_id(result)
    assert all(finding.status == Status.FAIL for finding in found.values())
    assert "runs around the clock" in found[batch].reason
    assert "no recurring action scales it back up" in found[qa].reason
    assert "1 one-off scheduled actions do not repeat" in found[one_off].reason
    assert result.facts["non_production_groups"] == 3


def test_dev_toggles_ignore_production_and_untagged_groups(aws, make_context):
    _group(aws, "prod-web", "PROD")  # production values compare case-insensitively
    _group(aws, "live-api", "live")
    _group(aws, "untagged", None)
    _group(aws, "blank", " ")
    result = run("cost.dev_toggles", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert (
        result.summary
        == f"No Auto Scaling group tagged Environment with a non-production value in {REGION}"
    )
    assert result.facts["auto_scaling_groups"] == 4
    assert result.facts["non_production_groups"] == 0


def test_dev_toggles_use_the_tag_key_and_production_values_from_settings(aws, make_context):
    _group(aws, "staging-web", "staging", key="stage")
    _group(aws, "dev-web", "dev", key="Environment")
    context = make_context(environment_tag_key="Stage", production_environments=("staging",))
    assert run("cost.dev_toggles", context).status == Status.NOT_APPLICABLE
    result = run("cost.dev_toggles", make_context(environment_tag_key="Stage"))
    assert result.status == Status.FAIL
    assert set(by_id(result)) == {"staging-web"}  # tag keys compare case-insensitively
    assert result.facts["environment_tag_key"] == "Stage"


@pytest.mark.parametrize(
    ("key", "service", "operation", "expected"),
    [
        ("cost.anomaly_detection", "ce", "get_anomaly_monitors", "ce:GetAnomalyMonitors"),
        ("cost.dev_toggles", "autoscaling", "describe_auto_scaling_groups", "autoscaling:Desc"),
        ("cost.nat_endpoints", "ec2", "describe_nat_gateways", "ec2:DescribeNatGateways"),
    ],
)
def test_refused_calls_name_the_iam_action(aws, make_context, key, service, operation, expected):
    context = make_context("global" if registry()[key].scope == "global" else REGION)
    with Stubber(context.client(service)) as stubber:
        stubber.add_client_error(operation, "AccessDeniedException", http_status_code=403)
        result = run(key, context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(f"Access denied: the probe needs {expected}")
