"""Monitoring & Observability / Synthetic Monitoring: the service checked from outside
(CloudWatch Synthetics canaries, Route 53 health checks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from readiness.probes.aws import _at_least_one, _pages_in
from readiness.probes.base import (
    GLOBAL_API_REGION,
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    probe,
)

SECTION = "Monitoring & Observability"

# Route 53 health checks that probe an endpoint from its checkers around the world; calculated,
# CloudWatch-metric and recovery-control checks look at nothing from outside.
ENDPOINT_CHECK_TYPES = {"HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP"}

# Route 53 deems an endpoint healthy when more than 18% of its checkers report it healthy.
ROUTE53_HEALTHY_FRACTION = 0.18


def _token_pages(call: Callable[..., dict], key: str, **params) -> Iterator[Any]:
    """Every element of `key` for an operation botocore has no paginator for (NextToken)."""
    token = None
    while True:
        page = call(**params, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


def _last_completed_run(synthetics, name: str, last: dict | None) -> dict | None:
    """The canary's latest finished run; DescribeCanariesLastRun may show one in progress."""
    if not last or last.get("Status", {}).get("State") != "RUNNING":
        return last
    for run in _token_pages(synthetics.get_canary_runs, "CanaryRuns", Name=name):
        if run.get("Status", {}).get("State") in ("PASSED", "FAILED"):
            return run
    return None


def _canary_findings(context: ProbeContext) -> list[Finding]:
    synthetics = context.client("synthetics")
    canaries = list(_token_pages(synthetics.describe_canaries, "Canaries"))
    if not canaries:
        return []
    last_runs = {
        entry["CanaryName"]: entry.get("LastRun")
        for entry in _token_pages(synthetics.describe_canaries_last_run, "CanariesLastRun")
    }
    findings = []
    for canary in canaries:
        name = canary["Name"]
        resource = f"canary {name}"
        state = canary.get("Status", {}).get("State", "UNKNOWN")
        if state != "RUNNING":
            findings.append(Finding(resource, Status.WARN, f"canary {state}: not checking"))
            continue
        run = _last_completed_run(synthetics, name, last_runs.get(name))
        run_state = (run or {}).get("Status", {}).get("State")
        if run_state == "PASSED":
            findings.append(Finding(resource, Status.PASS, "running; last run passed"))
        elif run_state == "FAILED":
            why = run.get("Status", {}).get("StateReason") or "no reason given"
            findings.append(Finding(resource, Status.FAIL, f"running; last run failed: {why}"))
        else:
            findings.append(Finding(resource, Status.WARN, "running; no finished run yet"))
    return findings


def _health_check_findings(context: ProbeContext) -> tuple[list[Finding], int]:
    route53 = context.client("route53", GLOBAL_API_REGION)
    findings, not_external = [], 0
    for check in _pages_in(
        context, "route53", GLOBAL_API_REGION, "list_health_checks", "HealthChecks"
    ):
        config = check.get("HealthCheckConfig", {})
        kind = config.get("Type", "")
        if kind not in ENDPOINT_CHECK_TYPES or config.get("Inverted"):
            not_external += 1
            continue
        resource = f"arn:aws:route53:::healthcheck/{check['Id']}"
        target = config.get("FullyQualifiedDomainName") or config.get("IPAddress") or "?"
        label = f"Route 53 {kind} check of {target}"
        if config.get("Disabled"):
            findings.append(
                Finding(resource, Status.WARN, f"{label} is disabled (reported healthy unchecked)")
            )
            continue
        observations = route53.get_health_check_status(HealthCheckId=check["Id"]).get(
            "HealthCheckObservations", []
        )
        reports = [o.get("StatusReport", {}).get("Status", "") for o in observations]
        healthy = sum(report.startswith("Success") for report in reports)
        if not reports:
            findings.append(Finding(resource, Status.WARN, f"{label}: no checker reported yet"))
        elif healthy / len(reports) > ROUTE53_HEALTHY_FRACTION:
            findings.append(
                Finding(
                    resource,
                    Status.PASS,
                    f"{label}: {healthy} of {len(reports)} checkers report healthy",
                )
            )
        else:
            failure = next(r for r in reports if not r.startswith("Success"))
            findings.append(
                Finding(
                    resource,
                    Status.FAIL,
                    f"{label}: {healthy} of {len(reports)} checkers report healthy ({failure})",
                )
            )
    return findings, not_external


@probe(
    key="monitoring.synthetic_checks",
    section=SECTION,
    item="Synthetic Monitoring",
    title=(
        "A running CloudWatch Synthetics canary whose last run passed, or a healthy Route 53 "
        "endpoint health check"
    ),
    actions=(
        "synthetics:DescribeCanaries",
        "synthetics:DescribeCanariesLastRun",
        "synthetics:GetCanaryRuns",
        "route53:ListHealthChecks",
        "route53:GetHealthCheckStatus",
    ),
    # Canaries are regional; Route 53 health checks are global and probe from checkers around
    # the world. The probe runs per region and counts the account's Route 53 checks in every
    # region, since an endpoint check is the external check of whatever runs there: either
    # kind passing meets the item. Broken or stopped extra monitors make it a WARN.
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Check the service from outside: a CloudWatch Synthetics canary on the public URL "
        "(`aws synthetics create-canary ...` then `aws synthetics start-canary --name <name>`; "
        "the console's heartbeat blueprint) or a Route 53 health check (`aws route53 "
        "create-health-check --health-check-config Type=HTTPS,FullyQualifiedDomainName=<host>,"
        "ResourcePath=/health`), with a CloudWatch alarm on its failure. Fix what a failing "
        "check reports, and start or delete stopped canaries."
    ),
)
def synthetic_checks(context: ProbeContext) -> ProbeResult:
    canaries = _canary_findings(context)
    health_checks, not_external = _health_check_findings(context)
    facts = {
        "canaries": len(canaries),
        "route53_endpoint_checks": len(health_checks),
        "route53_other_checks": not_external,
        "healthy_fraction_over": ROUTE53_HEALTHY_FRACTION,
    }
    if not canaries and not health_checks:
        return ProbeResult(
            Status.FAIL,
            f"No CloudWatch Synthetics canary in {context.region} and no Route 53 endpoint "
            "health check: nothing checks the service from outside",
            facts=facts,
        )
    return _at_least_one(
        canaries + health_checks,
        passed="All {total} synthetic checks pass",
        partly="{passing} of {total} synthetic checks pass; the others fail or are stopped",
        none="None of {total} synthetic checks passes: the service is not seen healthy "
        "from outside",
        facts=facts,
    )
