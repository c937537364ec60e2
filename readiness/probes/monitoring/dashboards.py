"""Monitoring & Observability / Dashboards: CloudWatch dashboards for the key metrics."""

from __future__ import annotations

import json

from readiness.probes.aws import _at_least_one
from readiness.probes.base import Finding, ProbeContext, ProbeResult, Scope, Severity, Status, probe

SECTION = "Monitoring & Observability"


@probe(
    key="monitoring.dashboards",
    section=SECTION,
    item="Dashboards",
    title="At least one CloudWatch dashboard with widgets; empty dashboards are flagged",
    actions=("cloudwatch:ListDashboards", "cloudwatch:GetDashboard"),
    # The API is called per region, but AWS lists the account's dashboards (they are global
    # resources) from every region, so each region shows the same result; moto keeps them
    # per region.
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Create a dashboard for the service's key metrics (traffic, errors, latency, "
        "saturation): `aws cloudwatch put-dashboard --dashboard-name <name> "
        '--dashboard-body file://dashboard.json` with a non-empty "widgets" list '
        "(CloudFormation AWS::CloudWatch::Dashboard), and add widgets to, or delete, empty ones."
    ),
)
def dashboards(context: ProbeContext) -> ProbeResult:
    cloudwatch = context.client("cloudwatch")
    findings = []
    for entry in context.paginate("cloudwatch", "list_dashboards", "DashboardEntries"):
        body = cloudwatch.get_dashboard(DashboardName=entry["DashboardName"]).get("DashboardBody")
        widgets = json.loads(body or "{}").get("widgets") or []
        resource = entry.get("DashboardArn") or entry["DashboardName"]
        if widgets:
            findings.append(Finding(resource, Status.PASS, f"{len(widgets)} widget(s)"))
        else:
            findings.append(Finding(resource, Status.WARN, "no widgets"))
    if not findings:
        return ProbeResult(
            Status.FAIL,
            "No CloudWatch dashboard: key metrics are not gathered in one view",
            facts={"dashboards": 0},
        )
    return _at_least_one(
        findings,
        passed="All {total} CloudWatch dashboards have widgets",
        partly="{passing} of {total} CloudWatch dashboards have widgets; the others are empty",
        none="All {total} CloudWatch dashboards are empty",
        facts={"dashboards": len(findings)},
    )
