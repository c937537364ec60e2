"""Monitoring & Observability / CloudWatch Alarms: alarms on critical metrics that reach
someone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from readiness.probes.aws import _arn_field, _pages_in
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

SECTION = "Monitoring & Observability"

ALARM_ACTION_KEYS = ("AlarmActions", "OKActions", "InsufficientDataActions")


def _alarms(context: ProbeContext) -> Iterator[tuple[str, dict]]:
    # Without AlarmTypes DescribeAlarms returns metric alarms only. moto ignores the filter and
    # always answers with metric alarms, so each type is read from its own key of its own call.
    for kind, key in (("MetricAlarm", "MetricAlarms"), ("CompositeAlarm", "CompositeAlarms")):
        for alarm in context.paginate("cloudwatch", "describe_alarms", key, AlarmTypes=[kind]):
            yield kind, alarm


@probe(
    key="monitoring.cloudwatch_alarms",
    section=SECTION,
    item="CloudWatch Alarms",
    title=(
        "The region has CloudWatch alarms; each has actions enabled, acts on ALARM, and "
        "notifies only SNS topics that exist"
    ),
    actions=("cloudwatch:DescribeAlarms", "sns:ListTopics"),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Create alarms on the metrics that show the service is failing (5XX count, latency p99, "
        "queue age, CPU/memory, DB connections): `aws cloudwatch put-metric-alarm ... "
        "--alarm-actions <SNS topic ARN>` (CloudFormation AWS::CloudWatch::Alarm AlarmActions). "
        "Turn actions back on with `aws cloudwatch enable-alarm-actions --alarm-names <name>`, "
        "and point AlarmActions/OKActions at an SNS topic that exists (re-create the topic or "
        "update the alarm)."
    ),
)
def cloudwatch_alarms(context: ProbeContext) -> ProbeResult:
    """Every metric and composite alarm fails when its actions are disabled (Security Hub
    CloudWatch.17), when it has no action for the ALARM state (CloudWatch.15), or when it
    notifies an SNS topic of this account that does not exist; a region without alarms
    fails."""
    topics_of_region: dict[str, set[str]] = {}

    def topic_exists(arn: str, account: str) -> bool | None:
        """None when the topic lives in another account, whose topics cannot be listed here."""
        region = _arn_field(arn, 3)
        if _arn_field(arn, 4) != account:
            return None
        if region not in topics_of_region:
            topics_of_region[region] = {
                topic["TopicArn"]
                for topic in _pages_in(context, "sns", region, "list_topics", "Topics")
            }
        return arn in topics_of_region[region]

    findings = []
    kinds: Counter[str] = Counter()
    states: Counter[str] = Counter()
    for kind, alarm in _alarms(context):
        kinds[kind] += 1
        states[alarm.get("StateValue", "UNKNOWN")] += 1
        account = _arn_field(alarm["AlarmArn"], 4)
        sns_arns = sorted(
            {
                action
                for key in ALARM_ACTION_KEYS
                for action in alarm.get(key) or []
                if _arn_field(action, 2) == "sns"
            }
        )
        exists = {arn: topic_exists(arn, account) for arn in sns_arns}
        failures = []
        # Security Hub CloudWatch.17: actions must be activated.
        if alarm.get("ActionsEnabled") is False:
            failures.append("actions disabled: it changes state but notifies no one")
        missing = [arn.rsplit(":", 1)[-1] for arn, found in exists.items() if found is False]
        if missing:
            failures.append("notifies SNS topic(s) that do not exist: " + ", ".join(missing))
        # Security Hub CloudWatch.15: an alarm with no ALARM action reaches no one when it
        # fires, whatever its OK or INSUFFICIENT_DATA actions do.
        if not alarm.get("AlarmActions"):
            failures.append("no action when it enters ALARM")
        label = "composite alarm" if kind == "CompositeAlarm" else "metric alarm"
        if failures:
            status = Status.FAIL
            reason = f"{label}: " + "; ".join(failures)
        else:
            foreign = sum(found is None for found in exists.values())
            reason = (
                f"{label}, {len(alarm['AlarmActions'])} action(s) on ALARM, "
                f"{len(sns_arns) - foreign} SNS topic(s) found"
                + (f" ({foreign} in another account, not verified)" if foreign else "")
            )
            status = Status.PASS
        findings.append(Finding(alarm["AlarmArn"], status, reason))
    facts = {
        "metric_alarms": kinds["MetricAlarm"],
        "composite_alarms": kinds["CompositeAlarm"],
        "alarm_states": dict(states),
        "sns_regions_listed": sorted(topics_of_region),
    }
    if not findings:
        return ProbeResult(
            Status.FAIL,
            f"No CloudWatch metric or composite alarm in {context.region}: "
            "no critical metric is monitored",
            facts=facts,
        )
    return verdict(
        findings,
        passed="All {total} alarms have actions enabled and notify existing SNS topics",
        failed="{failed} of {total} alarms have actions disabled, no action on ALARM, or "
        "notify a missing SNS topic",
        empty="",
        facts=facts,
    )
