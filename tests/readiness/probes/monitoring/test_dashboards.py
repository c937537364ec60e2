import json

import pytest

from readiness.probes.base import Status
from tests.readiness.probes.monitoring.helpers import (
    REGION,
    assert_access_denied_names_a_declared_action,
    run,
    statuses,
)

WIDGETS = {
    "widgets": [
        {
            "type": "metric",
            "x": 0,
            "y": 0,
            "width": 12,
            "height": 6,
            "properties": {
                "metrics": [["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"]],
                "region": REGION,
            },
        }
    ]
}


def _dashboard(aws, name: str, body: dict) -> str:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    return cloudwatch.get_dashboard(DashboardName=name)["DashboardArn"]


def test_dashboards_pass_with_a_dashboard_that_has_widgets(aws, make_context):
    _dashboard(aws, "service-health", WIDGETS)
    result = run("monitoring.dashboards", make_context())
    assert result.status == Status.PASS, result
    assert result.findings[0].reason == "1 widget(s)"


def test_dashboards_warn_about_empty_ones_next_to_a_good_one(aws, make_context):
    good = _dashboard(aws, "service-health", WIDGETS)
    empty = _dashboard(aws, "scratch", {"widgets": []})
    result = run("monitoring.dashboards", make_context())
    assert result.status == Status.WARN
    assert statuses(result) == {good: Status.PASS, empty: Status.WARN}


def test_dashboards_fail_when_all_are_empty_or_there_are_none(aws, make_context):
    assert run("monitoring.dashboards", make_context()).status == Status.FAIL
    empty = _dashboard(aws, "scratch", {"widgets": []})
    result = run("monitoring.dashboards", make_context())
    assert result.status == Status.FAIL
    assert [f.resource for f in result.findings] == [empty]


@pytest.mark.parametrize(
    ("key", "region", "service", "operation"),
    [
        ("monitoring.dashboards", REGION, "cloudwatch", "list_dashboards"),
    ],
)
def test_access_denied_is_an_error_naming_a_declared_action(
    aws, make_context, key, region, service, operation
):
    assert_access_denied_names_a_declared_action(make_context(region), key, service, operation)
