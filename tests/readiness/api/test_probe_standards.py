"""The checklist API gives each probe result the standards its probe maps to."""

import pytest

from readiness.probe_runs import services as probe_runs
from readiness.probes.standards import standards_of
from tests.readiness.probe_runs.test_probe_runs import execute_all, target

BASE = "/api/v1"


@pytest.mark.django_db
def test_each_probe_result_names_its_security_hub_controls_and_checks(api, deployment, aws):
    target(deployment)
    execute_all(probe_runs.probe_run_start(deployment=deployment, user=deployment.owner)[0])
    body = api.get(f"{BASE}/deployments/{deployment.pk}/checklist").json()
    results = {
        result["probe"]: result
        for section in body["sections"]
        for item in section["items"]
        for result in item["probes"]
    }
    groups = results["network.security_groups"]["standards"]
    assert groups == standards_of("network.security_groups").as_json()
    assert {"id": "EC2.19", "match": "full", "note": ""} in groups["security_hub"]
    alarms = results["monitoring.cloudwatch_alarms"]["standards"]
    assert [control["id"] for control in alarms["security_hub"]] == [
        "CloudWatch.15",
        "CloudWatch.17",
    ]
    assert "cloudwatch-alarm-action-check" in alarms["config_rules"]
    assert results["cost.budgets"]["standards"] == {
        "security_hub": [],
        "prowler": [],
        "config_rules": [],
        "well_architected": [],
    }
