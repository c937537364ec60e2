from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.monitoring.helpers import (
    REGION,
    _without_metadata,
    assert_access_denied_names_a_declared_action,
    run,
    statuses,
)


def _health_check(aws, host: str = "shop.example.com", **config) -> str:
    return aws.client("route53").create_health_check(
        CallerReference=host,
        HealthCheckConfig={
            "Type": "HTTPS",
            "FullyQualifiedDomainName": host,
            "Port": 443,
            "ResourcePath": "/health",
            **config,
        },
    )["HealthCheck"]["Id"]


def _canary(name: str, state: str = "RUNNING") -> dict:
    return {"Name": name, "Id": f"id-{name}", "Status": {"State": state}}


def _run(state: str, reason: str = "") -> dict:
    return {
        "Id": "run-1",
        "Name": "run",
        "Status": {"State": state, **({"StateReason": reason} if reason else {})},
        "Timeline": {"Started": datetime(2026, 1, 1, tzinfo=UTC)},
    }


def test_synthetics_pass_with_a_healthy_route53_health_check(aws, make_context):
    # Route 53 is global: the same health check counts in a regional run of eu-west-1.
    check = _health_check(aws)
    result = run("monitoring.synthetic_checks", make_context("eu-west-1"))
    assert result.status == Status.PASS, result
    assert statuses(result) == {f"arn:aws:route53:::healthcheck/{check}": Status.PASS}


def test_synthetics_pass_with_a_running_canary_whose_last_run_passed(aws, make_context):
    context = make_context()
    client = context.client("synthetics")
    # moto has canaries but no canary runs or start-canary: answer as AWS would.
    with Stubber(client) as stubber:
        stubber.add_response("describe_canaries", {"Canaries": [_canary("checkout")]})
        stubber.add_response(
            "describe_canaries_last_run",
            {"CanariesLastRun": [{"CanaryName": "checkout", "LastRun": _run("PASSED")}]},
        )
        result = run("monitoring.synthetic_checks", context)
    assert result.status == Status.PASS, result
    assert statuses(result) == {"canary checkout": Status.PASS}


def test_synthetics_look_past_a_run_in_progress_to_the_last_finished_one(aws, make_context):
    context = make_context()
    client = context.client("synthetics")
    with Stubber(client) as stubber:
        stubber.add_response("describe_canaries", {"Canaries": [_canary("checkout")]})
        stubber.add_response(
            "describe_canaries_last_run",
            {"CanariesLastRun": [{"CanaryName": "checkout", "LastRun": _run("RUNNING")}]},
        )
        stubber.add_response(
            "get_canary_runs",
            {"CanaryRuns": [_run("RUNNING"), _run("FAILED", "Timeout after 60s")]},
            {"Name": "checkout"},
        )
        result = run("monitoring.synthetic_checks", context)
    assert result.status == Status.FAIL
    assert "Timeout after 60s" in result.findings[0].reason


def test_synthetics_fail_when_canary_and_health_check_both_fail(aws, make_context):
    check = _health_check(aws)
    context = make_context()
    synthetics = context.client("synthetics")
    route53 = context.client("route53")
    # moto leaves out members AWS always sends (and the Stubber requires).
    listed = {
        "Marker": "",
        "IsTruncated": False,
        "MaxItems": "100",
        **_without_metadata(route53.list_health_checks()),
    }
    unhealthy = {
        "HealthCheckObservations": [
            {
                "Region": region,
                "IPAddress": "198.51.100.7",
                "StatusReport": {"Status": "Failure: HTTP Status Code 503, Service Unavailable"},
            }
            for region in ("us-east-1", "eu-west-1", "ap-southeast-1")
        ]
    }
    # moto reports every health check healthy: keep moto's listing, stub the status.
    with Stubber(synthetics) as canaries, Stubber(route53) as checks:
        canaries.add_response(
            "describe_canaries", {"Canaries": [_canary("checkout"), _canary("old", "STOPPED")]}
        )
        canaries.add_response(
            "describe_canaries_last_run",
            {"CanariesLastRun": [{"CanaryName": "checkout", "LastRun": _run("FAILED", "500")}]},
        )
        checks.add_response("list_health_checks", listed)
        checks.add_response("get_health_check_status", unhealthy, {"HealthCheckId": check})
        result = run("monitoring.synthetic_checks", context)
    assert result.status == Status.FAIL
    assert statuses(result) == {
        "canary checkout": Status.FAIL,
        "canary old": Status.WARN,
        f"arn:aws:route53:::healthcheck/{check}": Status.FAIL,
    }
    assert "0 of 3 checkers" in result.findings[1].reason


def test_synthetics_warn_when_one_check_passes_and_another_is_disabled(aws, make_context):
    healthy = _health_check(aws)
    disabled = _health_check(aws, "admin.example.com", Disabled=True)
    _health_check(aws, "calc.example.com", Type="CALCULATED")  # looks at nothing from outside
    result = run("monitoring.synthetic_checks", make_context())
    assert result.status == Status.WARN
    assert statuses(result) == {
        f"arn:aws:route53:::healthcheck/{healthy}": Status.PASS,
        f"arn:aws:route53:::healthcheck/{disabled}": Status.WARN,
    }
    assert result.facts["route53_other_checks"] == 1


def test_synthetics_fail_with_neither_canary_nor_health_check(aws, make_context):
    result = run("monitoring.synthetic_checks", make_context())
    assert result.status == Status.FAIL
    assert "nothing checks the service from outside" in result.summary


# Errors


def test_an_unsupported_call_is_an_error_not_a_pass(aws, make_context):
    # moto lists canaries but has no DescribeCanariesLastRun: the emulator answers 501.
    aws.client("synthetics").create_canary(
        Name="checkout",
        Code={"Handler": "index.handler"},
        ArtifactS3Location="s3://canary-artifacts",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/canary",
        Schedule={"Expression": "rate(5 minutes)"},
        RuntimeVersion="syn-nodejs-puppeteer-9.1",
    )
    _health_check(aws)  # a passing health check must not hide the failed read
    result = run("monitoring.synthetic_checks", make_context())
    assert result.status == Status.ERROR
    assert "synthetics:DescribeCanariesLastRun" in result.summary
    assert "does not implement" in result.summary


@pytest.mark.parametrize(
    ("key", "region", "service", "operation"),
    [
        ("monitoring.synthetic_checks", REGION, "synthetics", "describe_canaries"),
    ],
)
def test_access_denied_is_an_error_naming_a_declared_action(
    aws, make_context, key, region, service, operation
):
    assert_access_denied_names_a_declared_action(make_context(region), key, service, operation)
