from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry
from tests.conftest import REGION

ACCOUNT = "123456789012"


def run(key, context):
    return execute(registry()[key], context).result


NOTIFICATION = {
    "NotificationType": "ACTUAL",
    "ComparisonOperator": "GREATER_THAN",
    "Threshold": 80.0,
    "ThresholdType": "PERCENTAGE",
}


def _budgets(context, budgets):
    """moto answers DescribeBudgets but not DescribeSubscribersForNotification: stub all."""
    stubber = Stubber(context.client("budgets"))
    stubber.add_response(
        "describe_budgets",
        {
            "Budgets": [
                {
                    "BudgetName": name,
                    "BudgetLimit": {"Amount": "100", "Unit": "USD"},
                    "TimeUnit": "MONTHLY",
                    "BudgetType": kind,
                }
                for name, kind, _ in budgets
            ]
        },
    )
    for _name, kind, subscribers in budgets:
        if kind != "COST":
            continue
        stubber.add_response(
            "describe_notifications_for_budget",
            {"Notifications": [NOTIFICATION] if subscribers is not None else []},
        )
        if subscribers is not None:
            stubber.add_response(
                "describe_subscribers_for_notification",
                {
                    "Subscribers": [
                        {"SubscriptionType": "EMAIL", "Address": f"{n}@example.com"}
                        for n in range(subscribers)
                    ]
                },
            )
    return stubber


def test_budgets_pass_when_a_cost_budget_alerts_someone(aws, make_context):
    context = make_context()
    with _budgets(
        context, [("monthly", "COST", 1), ("silent", "COST", None), ("usage", "USAGE", None)]
    ):
        result = run("cost.budgets", context)
    assert result.status == Status.PASS, result
    by_id = {f.resource: f for f in result.findings}
    assert by_id["monthly"].status == Status.PASS and "1 subscriber" in by_id["monthly"].reason
    assert by_id["silent"].status == Status.FAIL and "usage" not in by_id
    assert result.summary == "1 of 2 cost budgets alert a subscriber"


def test_budgets_fail_without_a_budget_or_without_subscribers(aws, make_context):
    assert run("cost.budgets", make_context()).status == Status.FAIL  # moto: no budgets
    context = make_context()
    with _budgets(context, [("silent", "COST", None)]):
        result = run("cost.budgets", context)
    assert result.status == Status.FAIL and result.summary == "No cost budget alerts anyone"


MONITOR = "arn:aws:ce::123456789012:anomalymonitor/abc"


def _anomalies(context, monitors, subscriptions):
    client = context.client("ce")
    stubber = Stubber(client)
    stubber.add_response("get_anomaly_monitors", {"AnomalyMonitors": monitors})
    if monitors:
        stubber.add_response("get_anomaly_subscriptions", {"AnomalySubscriptions": subscriptions})
    return stubber


def _monitor(arn=MONITOR, name="services"):
    return {"MonitorArn": arn, "MonitorName": name, "MonitorType": "DIMENSIONAL"}


def _subscription(subscribers):
    return {
        "SubscriptionName": "team",
        "MonitorArnList": [MONITOR],
        "Subscribers": subscribers,
        "Frequency": "DAILY",
        "AccountId": ACCOUNT,
    }


def test_anomaly_detection_passes_with_a_subscribed_monitor(aws, make_context):
    context = make_context()
    with _anomalies(
        context, [_monitor()], [_subscription([{"Address": "a@example.com", "Type": "EMAIL"}])]
    ):
        result = run("cost.anomaly_detection", context)
    assert result.status == Status.PASS, result
    assert result.facts == {"monitors": 1, "subscriptions": 1}


def test_anomaly_detection_fails_without_monitor_or_subscriber(aws, make_context):
    context = make_context()
    with _anomalies(context, [], []):
        assert run("cost.anomaly_detection", context).status == Status.FAIL
    with _anomalies(context, [_monitor(), _monitor(MONITOR + "2", "other")], [_subscription([])]):
        result = run("cost.anomaly_detection", context)
    assert result.status == Status.FAIL
    assert result.summary == "2 of 2 anomaly monitors alert nobody"


def _coverage(context, reserved, running, covered_spend, on_demand):
    stubber = Stubber(context.client("ce"))
    stubber.add_response(
        "get_reservation_coverage",
        {
            "CoveragesByTime": [],
            "Total": {
                "CoverageHours": {
                    "ReservedHours": str(reserved),
                    "TotalRunningHours": str(running),
                    "OnDemandHours": str(running - reserved),
                    "CoverageHoursPercentage": "0",
                }
            },
        },
    )
    stubber.add_response(
        "get_savings_plans_coverage",
        {
            "SavingsPlansCoverages": [
                {
                    "Coverage": {
                        "SpendCoveredBySavingsPlans": str(covered_spend),
                        "OnDemandCost": str(on_demand),
                        "TotalCost": str(covered_spend + on_demand),
                        "CoveragePercentage": "0",
                    }
                }
            ]
        },
    )
    return stubber


def test_commitments_compare_the_best_coverage_with_the_target(aws, make_context):
    context = make_context()
    with _coverage(context, 600, 1000, 30, 70):
        result = run("cost.commitments", context)
    assert result.status == Status.WARN, result
    assert result.summary == "Reserved Instances cover 60.0 % of eligible usage (target 70 %)"
    assert result.facts["savings_plans_coverage_percent"] == 30.0
    lowered = make_context(commitment_coverage_target_percent=50)
    with _coverage(lowered, 600, 1000, 80, 20):
        result = run("cost.commitments", lowered)
    assert result.status == Status.PASS and result.summary.startswith("Savings Plans cover 80.0 %")


def test_commitments_not_applicable_without_eligible_usage(aws, make_context):
    context = make_context()
    stubber = Stubber(context.client("ce"))
    stubber.add_client_error("get_reservation_coverage", "DataUnavailableException")
    stubber.add_client_error("get_savings_plans_coverage", "DataUnavailableException")
    with stubber:
        result = run("cost.commitments", context)
    assert result.status == Status.NOT_APPLICABLE


def test_lifecycle_passes_buckets_with_a_transition(aws, make_context):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="archive")
    s3.put_bucket_lifecycle_configuration(
        Bucket="archive",
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "cold",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
                }
            ]
        },
    )
    s3.create_bucket(Bucket="hot")
    s3.create_bucket(Bucket="expires")
    s3.put_bucket_lifecycle_configuration(
        Bucket="expires",
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "x",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": 9},
                }
            ]
        },
    )
    result = run("cost.s3_lifecycle", make_context())
    by_id = {f.resource: f for f in result.findings}
    assert result.status == Status.FAIL
    assert by_id["archive"].status == Status.PASS
    assert by_id["hot"].reason == "no lifecycle configuration"
    assert "none enabled with a transition" in by_id["expires"].reason


def test_lifecycle_not_applicable_without_buckets(aws, make_context):
    assert run("cost.s3_lifecycle", make_context()).status == Status.NOT_APPLICABLE


def _nat_vpc(aws, *services):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.create_nat_gateway(SubnetId=subnet, AllocationId=allocation)
    for service in services:
        ec2.create_vpc_endpoint(
            VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.{service}", VpcEndpointType="Gateway"
        )
    return vpc


def test_nat_vpcs_need_gateway_endpoints(aws, make_context):
    assert run("cost.nat_endpoints", make_context()).status == Status.NOT_APPLICABLE
    bare = _nat_vpc(aws)
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.FAIL and result.findings[0].resource == bare


def test_nat_vpc_with_s3_only_warns_and_with_both_passes(aws, make_context):
    _nat_vpc(aws, "s3")
    assert run("cost.nat_endpoints", make_context()).status == Status.WARN
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.1.0.0/16"]}])["Vpcs"][0]
    ec2.create_vpc_endpoint(
        VpcId=vpc["VpcId"],
        ServiceName=f"com.amazonaws.{REGION}.dynamodb",
        VpcEndpointType="Gateway",
    )
    assert run("cost.nat_endpoints", make_context()).status == Status.PASS


def _group(aws, name, environment, schedule=()):
    autoscaling = aws.client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"{name}-lc", ImageId="ami-12345678", InstanceType="t3.micro"
    )
    tags = (
        [{"Key": "Environment", "Value": environment, "PropagateAtLaunch": True}]
        if environment
        else []
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=f"{name}-lc",
        MinSize=0,
        MaxSize=2,
        AvailabilityZones=[f"{REGION}a"],
        Tags=tags,
    )
    for action, size in schedule:
        autoscaling.put_scheduled_update_group_action(
            AutoScalingGroupName=name,
            # Unique across groups: moto keys scheduled actions by name alone.
            ScheduledActionName=f"{name}-{action}",
            Recurrence="0 20 * * 1-5",
            MinSize=size,
            DesiredCapacity=size,
        )


def test_dev_toggles_judge_only_non_production_groups(aws, make_context):
    _group(aws, "prod-web", "production")
    _group(aws, "untagged", None)
    assert run("cost.dev_toggles", make_context()).status == Status.NOT_APPLICABLE
    _group(aws, "staging-web", "Staging", [("night", 0), ("day", 2)])
    _group(aws, "dev-batch", "dev")
    _group(aws, "qa-api", "qa", [("night", 0)])
    result = run("cost.dev_toggles", make_context())
    by_id = {f.resource: f for f in result.findings}
    assert set(by_id) == {"staging-web", "dev-batch", "qa-api"}
    assert by_id["staging-web"].status == Status.PASS
    assert "no scheduled actions" in by_id["dev-batch"].reason
    assert "never back up" in by_id["qa-api"].reason
    assert result.status == Status.FAIL


def test_dev_toggles_use_the_configured_tag(aws, make_context):
    _group(aws, "staging-web", "staging")
    context = make_context(environment_tag_key="Stage")
    assert run("cost.dev_toggles", context).status == Status.NOT_APPLICABLE
