import moto
from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.conftest import REGION
from tests.readiness.probes.cost_optimization.helpers import ACCOUNT, by_id, run


def _without_metadata(response: dict) -> dict:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


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
