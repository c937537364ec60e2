import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.monitoring.helpers import (
    REGION,
    _topic,
    assert_access_denied_names_a_declared_action,
    run,
)


def _alarm(aws, name: str, **kwargs) -> str:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
        **kwargs,
    )
    return cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]


def test_alarms_pass_when_enabled_and_notifying_existing_topics(aws, make_context):
    topic = _topic(aws, "oncall")
    _alarm(aws, "api-5xx", AlarmActions=[topic], OKActions=[topic])
    _alarm(aws, "queue-age", AlarmActions=[topic])
    result = run("monitoring.cloudwatch_alarms", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["metric_alarms"] == 2
    assert result.facts["sns_regions_listed"] == [REGION]


def test_alarms_fail_when_disabled_or_notifying_a_deleted_topic(aws, make_context):
    topic = _topic(aws, "oncall")
    gone = topic.replace(":oncall", ":deleted-team")
    disabled = _alarm(aws, "api-5xx", AlarmActions=[topic], ActionsEnabled=False)
    dangling = _alarm(aws, "db-cpu", AlarmActions=[gone])
    healthy = _alarm(aws, "queue-age", AlarmActions=[topic])
    result = run("monitoring.cloudwatch_alarms", make_context())
    assert result.status == Status.FAIL
    by_arn = {f.resource: f for f in result.findings}
    assert by_arn[disabled].status == Status.FAIL
    assert "actions disabled" in by_arn[disabled].reason
    assert by_arn[dangling].status == Status.FAIL
    assert "deleted-team" in by_arn[dangling].reason
    assert by_arn[healthy].status == Status.PASS
    assert result.summary.startswith("2 of 3 alarms")


def test_an_alarm_with_no_alarm_action_fails(aws, make_context):
    # Security Hub CloudWatch.15: OK and INSUFFICIENT_DATA actions do not make up for none on
    # ALARM.
    topic = _topic(aws, "oncall")
    silent = _alarm(aws, "latency")
    recovery_only = _alarm(aws, "errors", OKActions=[topic], InsufficientDataActions=[topic])
    notifying = _alarm(aws, "api-5xx", AlarmActions=[topic])
    result = run("monitoring.cloudwatch_alarms", make_context())
    assert result.status == Status.FAIL, result
    by_arn = {f.resource: f for f in result.findings}
    assert by_arn[silent].status == Status.FAIL
    assert by_arn[silent].reason == "metric alarm: no action when it enters ALARM"
    assert by_arn[recovery_only].status == Status.FAIL
    assert "no action when it enters ALARM" in by_arn[recovery_only].reason
    assert by_arn[notifying].status == Status.PASS
    assert result.summary.startswith("2 of 3 alarms")


def test_alarms_fail_when_the_region_has_none(aws, make_context):
    _topic(aws, "oncall")
    result = run("monitoring.cloudwatch_alarms", make_context("eu-west-1"))
    assert result.status == Status.FAIL
    assert "No CloudWatch metric or composite alarm in eu-west-1" in result.summary


def test_alarms_judge_composite_alarms_too(aws, make_context):
    topic = _topic(aws, "oncall")
    context = make_context()
    client = context.client("cloudwatch")
    composite = {
        "AlarmName": "service-down",
        "AlarmArn": f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:service-down",
        "ActionsEnabled": True,
        "AlarmActions": [topic],
        "AlarmRule": 'ALARM("api-5xx") OR ALARM("latency")',
        "StateValue": "OK",
    }
    # moto has no PutCompositeAlarm: answer both DescribeAlarms calls as AWS would.
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_alarms", {"MetricAlarms": []}, {"AlarmTypes": ["MetricAlarm"]}
        )
        stubber.add_response(
            "describe_alarms", {"CompositeAlarms": [composite]}, {"AlarmTypes": ["CompositeAlarm"]}
        )
        result = run("monitoring.cloudwatch_alarms", context)
    assert result.status == Status.PASS, result
    assert result.facts["composite_alarms"] == 1
    assert "composite alarm" in result.findings[0].reason


@pytest.mark.parametrize(
    ("key", "region", "service", "operation"),
    [
        ("monitoring.cloudwatch_alarms", REGION, "cloudwatch", "describe_alarms"),
    ],
)
def test_access_denied_is_an_error_naming_a_declared_action(
    aws, make_context, key, region, service, operation
):
    assert_access_denied_names_a_declared_action(make_context(region), key, service, operation)
