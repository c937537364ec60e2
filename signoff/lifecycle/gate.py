"""The pipeline gate: may a deployment go out? A read, and the decision audited."""

from dataclasses import dataclass

from django.db import transaction

from readiness.audit.services import audit_record
from readiness.checklists.models import (
    RELEASABLE_STATES,
    ChecklistItem,
    Deployment,
    ItemStatus,
)
from signoff.records.models import SignedRecord
from signoff.signatures.selectors import RoleStanding, standings


@dataclass(frozen=True)
class GateDecision:
    """May a deployment go out: every role's approval holds in a releasable state."""

    approved: bool
    state: str
    missing_roles: list[str]
    stale_roles: list[str]
    failed_items: list[str]
    open_items: int
    standings: list[RoleStanding]
    record_sha256: str | None


def gate_decision(deployment: Deployment) -> GateDecision:
    role_standings = standings([deployment])[deployment.pk]
    items = list(
        ChecklistItem.objects.filter(section__deployment=deployment)
        .select_related("section")
        .order_by("section__position", "position")
    )
    approving = all(standing.approving for standing in role_standings)
    approved = deployment.state in RELEASABLE_STATES and approving and bool(role_standings)
    record = (
        SignedRecord.objects.filter(deployment=deployment).order_by("-number").first()
        if approved
        else None
    )
    return GateDecision(
        approved=approved,
        state=deployment.state,
        missing_roles=[s.role.name for s in role_standings if s.status in ("missing", "revoked")],
        stale_roles=[s.role.name for s in role_standings if s.status == "stale"],
        failed_items=[
            f"{item.section.title} / {item.title}"
            for item in items
            if item.status == ItemStatus.FAILED
        ],
        open_items=sum(item.status == ItemStatus.OPEN for item in items),
        standings=role_standings,
        record_sha256=record.sha256 if record else None,
    )


@transaction.atomic
def gate_check(*, deployment: Deployment, actor) -> GateDecision:
    """The decision, kept in the audit trail: a pipeline acts on it."""
    decision = gate_decision(deployment)
    audit_record(
        actor=actor,
        action="api.gate_checked",
        obj=deployment,
        deployment=deployment,
        after={
            "approved": decision.approved,
            "state": decision.state,
            "http_status": 200 if decision.approved else 409,
        },
    )
    return decision
