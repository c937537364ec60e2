"""/deployments/{id}/checklist: every item with its status, probes and newest CI evidence."""

from datetime import datetime

from ninja import Router, Schema
from pydantic import Field

from readiness.api.endpoints.common import DeploymentOut, visible_deployment
from readiness.checklists import selectors
from readiness.evidence.selectors import latest_verdicts
from readiness.probe_runs import selectors as probe_run_selectors
from readiness.probes.base import is_manual, probes_by_item
from readiness.probes.standards import standards_of

router = Router()


class SecurityHubControlOut(Schema):
    id: str = Field(description="Security Hub control id, e.g. EC2.18")
    match: str = Field(description="full: the probe fails all the control fails; partial: see note")
    note: str


class StandardsOut(Schema):
    security_hub: list[SecurityHubControlOut]
    prowler: list[str] = Field(description="Prowler check ids")
    config_rules: list[str] = Field(description="AWS Config managed rule names")
    well_architected: list[str] = Field(description="AWS Well-Architected choice ids")


class ProbeResultOut(Schema):
    probe: str
    region: str
    title: str
    status: str
    summary: str
    failing: list[dict]
    remediation: str
    standards: StandardsOut | None = Field(
        None,
        description="What the probe corresponds to in AWS Security Hub, Prowler, AWS "
        "Config and the Well-Architected Framework (docs/controls.md)",
    )


class EvidenceVerdictOut(Schema):
    evidence_id: int
    kind: str
    filename: str
    sha256: str
    uploaded_at: datetime
    uploaded_by: str
    passed: bool
    applied: bool
    summary: str
    details: list[str]
    conflict: str


class ItemOut(Schema):
    id: int
    title: str
    description: str
    status: str
    decided_by: str = Field(description="person, probe, evidence or empty when open")
    status_reason: str
    note: str
    evidence_url: str
    na_reason: str
    owner_role: str | None
    manual: bool = Field(description="True when no AWS probe can verify the item")
    probes: list[ProbeResultOut]
    ci_evidence: EvidenceVerdictOut | None


class SectionOut(Schema):
    title: str
    items: list[ItemOut]


class ChecklistOut(Schema):
    deployment: DeploymentOut
    probe_run: int | None
    sections: list[SectionOut]


def _verdict_out(verdict) -> dict | None:
    if verdict is None:
        return None
    evidence = verdict.evidence
    return {
        "evidence_id": evidence.pk,
        "kind": evidence.kind,
        "filename": evidence.filename,
        "sha256": evidence.sha256,
        "uploaded_at": evidence.uploaded_at,
        "uploaded_by": evidence.uploaded_by.get_username(),
        "passed": verdict.passed,
        "applied": verdict.applied,
        "summary": verdict.summary,
        "details": [str(line) for line in verdict.details],
        "conflict": verdict.conflict,
    }


@router.get("/deployments/{int:deployment_id}/checklist", response=ChecklistOut, tags=["checklist"])
def checklist_read(request, deployment_id: int):
    """Every section and item with its status, who decided it, the latest probe results
    and the newest CI evidence."""
    deployment = visible_deployment(request, deployment_id)
    sections = selectors.deployment_sections(deployment)
    run = probe_run_selectors.latest_finished_run(deployment)
    results = probe_run_selectors.results_by_item(run)
    coverage = probes_by_item()
    verdicts = latest_verdicts([deployment.pk])
    out = []
    for section in sections:
        items = []
        for item in section.items.all():
            probes = coverage.get((section.title, item.title), [])
            items.append(
                {
                    "id": item.pk,
                    "title": item.title,
                    "description": item.description,
                    "status": item.status,
                    "decided_by": item.source,
                    "status_reason": item.status_reason,
                    "note": item.note,
                    "evidence_url": item.evidence_url,
                    "na_reason": item.na_reason,
                    "owner_role": item.owner_role.name if item.owner_role_id else None,
                    "manual": is_manual(probes),
                    "probes": [
                        {
                            "probe": result.probe_key,
                            "region": result.region,
                            "title": result.title,
                            "status": result.status or result.state,
                            "summary": result.summary,
                            "failing": result.failing_findings[:20],
                            "remediation": result.remediation,
                            "standards": standards_of(result.probe_key).as_json(),
                        }
                        for result in results.get(item.pk, [])
                    ],
                    "ci_evidence": _verdict_out(verdicts.get(item.pk)),
                }
            )
        out.append({"title": section.title, "items": items})
    return {"deployment": deployment, "probe_run": run.pk if run else None, "sections": out}
