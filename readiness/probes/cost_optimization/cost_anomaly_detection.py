"""Cost Optimization / Cost Anomaly Detection: anomaly monitors whose alerts reach someone."""

from __future__ import annotations

from collections import defaultdict

from readiness.probes.aws import _subscriber_types
from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    probe,
    verdict,
)

SECTION = "Cost Optimization"


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
