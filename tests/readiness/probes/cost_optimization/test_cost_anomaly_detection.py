import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status, registry
from tests.conftest import REGION
from tests.readiness.probes.cost_optimization.helpers import ACCOUNT, by_id, run

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


@pytest.mark.parametrize(
    ("key", "service", "operation", "expected"),
    [
        ("cost.anomaly_detection", "ce", "get_anomaly_monitors", "ce:GetAnomalyMonitors"),
    ],
)
def test_refused_calls_name_the_iam_action(aws, make_context, key, service, operation, expected):
    context = make_context("global" if registry()[key].scope == "global" else REGION)
    with Stubber(context.client(service)) as stubber:
        stubber.add_client_error(operation, "AccessDeniedException", http_status_code=403)
        result = run(key, context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(f"Access denied: the probe needs {expected}")
