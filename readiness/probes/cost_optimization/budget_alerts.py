"""Cost Optimization / Budget Alerts: cost budgets whose alerts reach someone."""

from __future__ import annotations

from readiness.probes.aws import _subscriber_types
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

SECTION = "Cost Optimization"


# Budgets authorizes all its read operations with one IAM action.
action_names(
    {
        ("budgets", "DescribeBudgets"): "budgets:ViewBudget",
        ("budgets", "DescribeNotificationsForBudget"): "budgets:ViewBudget",
        ("budgets", "DescribeSubscribersForNotification"): "budgets:ViewBudget",
    }
)


def _by_status(findings: list[Finding]) -> list[Finding]:
    order = {Status.FAIL: 0, Status.WARN: 1, Status.PASS: 2}
    return sorted(findings, key=lambda f: order.get(f.status, 3))


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
