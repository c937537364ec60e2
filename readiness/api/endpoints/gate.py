"""/deployments/{id}/gate: may this deployment go out? 200 or 409, for `curl --fail`."""

from django.urls import reverse
from ninja import Router, Schema, Status

from readiness.api.endpoints.common import absolute_url, visible_deployment
from signoff.lifecycle.gate import gate_check

router = Router()


class RoleOut(Schema):
    role: str
    status: str
    signed_by: str | None


class GateOut(Schema):
    approved: bool
    state: str
    missing_roles: list[str]
    stale_roles: list[str]
    failed_items: list[str]
    open_items: int
    roles: list[RoleOut]
    record_sha256: str | None
    url: str


@router.get(
    "/deployments/{int:deployment_id}/gate",
    response={200: GateOut, 409: GateOut},
    tags=["gate"],
)
def gate(request, deployment_id: int):
    """May this deployment go out? 200 when every role's approval holds, 409 otherwise —
    so a pipeline step can be `curl --fail`. The answer says what is missing."""
    deployment = visible_deployment(request, deployment_id)
    decision = gate_check(deployment=deployment, actor=request.user)
    body = {
        "approved": decision.approved,
        "state": decision.state,
        "missing_roles": decision.missing_roles,
        "stale_roles": decision.stale_roles,
        "failed_items": decision.failed_items,
        "open_items": decision.open_items,
        "roles": [
            {
                "role": s.role.name,
                "status": s.status,
                "signed_by": s.active.printed_name if s.active else None,
            }
            for s in decision.standings
        ],
        "record_sha256": decision.record_sha256,
        "url": absolute_url(request, reverse("deployment_detail", args=[deployment.pk])),
    }
    return Status(200 if decision.approved else 409, body)
