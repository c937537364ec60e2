import pytest

from readiness.probes.base import Status
from readiness.probes.reliability.rto_rpo import duration
from tests.readiness.probes.reliability.helpers import (
    assert_failed_call_is_an_error,
    failing,
    run,
)


def tiers(rto, rpo, region=False):
    names = ["AZ", "Hardware", "Software"] + (["Region"] if region else [])
    return {name: {"rtoInSecs": rto, "rpoInSecs": rpo} for name in names}


def test_rto_rpo_passes_when_policies_meet_targets_and_apps_have_one(aws, make_context):
    hub = aws.client("resiliencehub")
    policy = hub.create_resiliency_policy(
        policyName="gold", tier="MissionCritical", policy=tiers(1800, 300, region=True)
    )["policy"]["policyArn"]
    hub.create_app(name="checkout", policyArn=policy)
    result = run("resilience.rto_rpo", make_context())
    assert result.status == Status.PASS, result
    assert result.facts == {
        "resiliency_policies": 1,
        "apps": 1,
        "rto_target_seconds": 4 * 3600,
        "rpo_target_seconds": 3600,
    }
    assert "Region RTO 30m/RPO 5m" in next(
        f.reason for f in result.findings if f.resource == policy
    )


def test_rto_rpo_fails_loose_policies_and_apps_without_policy(aws, make_context):
    hub = aws.client("resiliencehub")
    loose = hub.create_resiliency_policy(
        policyName="bronze", tier="NonCritical", policy=tiers(86400, 3600)
    )["policy"]["policyArn"]
    orphan = hub.create_app(name="reports")["app"]["appArn"]
    result = run("resilience.rto_rpo", make_context(rpo_target_seconds=900))
    assert result.status == Status.FAIL
    assert failing(result) == {loose, orphan}
    reasons = {f.resource: f.reason for f in result.findings}
    assert "AZ RTO 24h > 4h" in reasons[loose]
    assert "AZ RPO 1h > 15m" in reasons[loose]
    assert "no resiliency policy assigned" in reasons[orphan]


def test_rto_rpo_fails_when_nothing_is_defined(aws, make_context):
    result = run("resilience.rto_rpo", make_context())
    assert result.status == Status.FAIL
    assert result.summary.startswith("No RTO/RPO defined in Resilience Hub")


def test_duration_is_readable():
    assert [duration(s) for s in (0, 45, 90, 3600, 5400)] == ["0s", "45s", "1m30s", "1h", "1h30m"]


# Errors


@pytest.mark.parametrize(
    ("key", "service", "operation", "code", "expected"),
    [
        # What moto answers for a JSON operation it lacks: HTTP 500 with no error code.
        (
            "resilience.rto_rpo",
            "resiliencehub",
            "list_resiliency_policies",
            "500",
            "resiliencehub:ListResiliencyPolicies answered HTTP 500 with no error code",
        ),
    ],
)
def test_failed_calls_become_error_results(
    aws, make_context, key, service, operation, code, expected
):
    assert_failed_call_is_an_error(make_context(), key, service, operation, code, expected)
