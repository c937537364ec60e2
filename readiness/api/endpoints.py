"""/api/v1/: what a pipeline needs — deployments, their checklist, probe runs, evidence and
the gate — over personal tokens (Authorization: Bearer rdy_…). OpenAPI at
/api/v1/openapi.json, docs at /api/v1/docs.

Every answer is JSON. Bad input is a 400 with a precise `detail`, never a 5xx; another
team's deployment does not exist (404); a missing or wrong token is a 401, not a login page.
"""

from datetime import date, datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import File, Form, NinjaAPI, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.files import UploadedFile
from ninja.pagination import PageNumberPagination, paginate
from ninja.security import HttpBearer
from pydantic import Field

from readiness.api import tokens
from readiness.api.models import ApiToken
from readiness.audit.services import audit_record, current_via
from readiness.checklists import selectors
from readiness.checklists.forms import AwsTargetForm, DeploymentCreateForm
from readiness.checklists.models import (
    ChecklistItem,
    ChecklistTemplate,
    Deployment,
    DeploymentState,
    ItemStatus,
)
from readiness.checklists.services import RecordClosed, deployment_set_aws_target
from readiness.checklists.services import deployment_create as create_deployment
from readiness.evidence.models import Evidence, EvidenceKind
from readiness.evidence.selectors import latest_verdicts
from readiness.evidence.services import Upload, evidence_upload
from readiness.probe_runs import selectors as probe_run_selectors
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeRun, ProbeRunTrigger
from readiness.probes.base import is_manual, probes_by_item
from signoff.records.models import SignedRecord
from signoff.signatures.selectors import standings

API_VERSION = "1"


class TokenAuth(HttpBearer):
    """A personal token; the request then acts as its user, and audit events name it."""

    openapi_description = "A personal API token from your profile page: `Bearer rdy_…`."

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = tokens.token_authenticate(token)
        if found is None:
            return None
        request.user = found.user
        request.api_token = found
        # Reset by signoff.audit.AuditRequestMiddleware at the end of the request.
        current_via.set(tokens.token_label(found))
        return found


api = NinjaAPI(
    title="Readiness API",
    version=API_VERSION,
    description=(
        "Production-readiness checklists, sign-offs and the deployment gate for pipelines. "
        "Authenticate with a personal token (profile page → API tokens)."
    ),
    urls_namespace="api-v1",
    auth=TokenAuth(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)


class Error(Schema):
    detail: str
    errors: dict[str, list[str]] | None = None


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    response = api.create_response(
        request,
        {
            "detail": "Missing, unknown or revoked API token: send "
            "`Authorization: Bearer <token>` with a token from your profile page."
        },
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="readiness"'
    return response


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc):
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",))
        errors.setdefault(where or "request", []).append(str(error.get("msg", "invalid")))
    detail = "; ".join(f"{where}: {', '.join(msgs)}" for where, msgs in errors.items())
    return api.create_response(
        request, {"detail": f"Invalid request: {detail}", "errors": errors}, status=400
    )


@api.exception_handler(DjangoValidationError)
def _refused(request, exc):
    errors = exc.message_dict if hasattr(exc, "error_dict") else None
    detail = " ".join(exc.messages)
    return api.create_response(request, {"detail": detail, "errors": errors}, status=400)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Not allowed."}, status=403)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, {"detail": "Not found."}, status=404)


@api.exception_handler(RecordClosed)
def _closed(request, exc):
    return api.create_response(request, {"detail": str(exc)}, status=409)


def _writer(request) -> None:
    if not request.api_token.can_write:
        raise HttpError(403, "This token is read-only: create one with the write scope.")


def _visible(request, pk: int) -> Deployment:
    return get_object_or_404(selectors.deployments_visible_to(request.user), pk=pk)


def _absolute(request, path: str) -> str:
    """The address as the client reached this server, so links in answers work from CI."""
    return request.build_absolute_uri(path)


# --- Deployments -------------------------------------------------------------------------


class DeploymentOut(Schema):
    id: int
    service: str
    environment: str
    version: str
    state: str
    team: str
    template: str
    planned_date: date | None
    deployed_at: datetime | None
    created_at: datetime
    url: str

    @staticmethod
    def resolve_team(obj: Deployment) -> str:
        return obj.team.slug

    @staticmethod
    def resolve_template(obj: Deployment) -> str:
        return f"{obj.template.name} v{obj.template.version}"

    @staticmethod
    def resolve_url(obj: Deployment, context) -> str:
        return _absolute(context["request"], reverse("deployment_detail", args=[obj.pk]))


class DeploymentFilter(Schema):
    service: str | None = None
    environment: str | None = None
    state: DeploymentState | None = None


class AwsTargetIn(Schema):
    account_id: str = Field(examples=["123456789012"])
    regions: list[str] = Field(examples=[["eu-west-1", "us-east-1"]])
    role_arn: str = ""
    external_id: str = ""


class DeploymentIn(Schema):
    service: str = Field(max_length=100, examples=["payments-api"])
    environment: str = Field(max_length=50, examples=["production"])
    version: str = Field(max_length=100, examples=["2.4.0"])
    planned_date: date | None = None
    team: str | None = Field(
        None, description="Team slug; may be left out by someone in exactly one team."
    )
    template_id: int | None = Field(None, description="Template id; the default when left out.")
    aws: AwsTargetIn | None = Field(
        None, description="The AWS account and regions the probes read (optional)."
    )


@api.get("/deployments", response=list[DeploymentOut], tags=["deployments"])
@paginate(PageNumberPagination, page_size=settings.API_PAGE_SIZE, max_page_size=500)
def deployments_list(request, filters: Query[DeploymentFilter]):
    """Your teams' deployments, newest first; filter by service, environment and state."""
    deployments = selectors.deployments_visible_to(request.user).order_by("-created_at", "-pk")
    if filters.service:
        deployments = deployments.filter(service=filters.service)
    if filters.environment:
        deployments = deployments.filter(environment=filters.environment)
    if filters.state:
        deployments = deployments.filter(state=filters.state)
    return deployments


@api.post(
    "/deployments",
    response={201: DeploymentOut, 400: Error, 403: Error},
    tags=["deployments"],
)
def deployments_create(request, payload: DeploymentIn):
    """Create a deployment from a template (the default one unless named)."""
    _writer(request)
    teams = selectors.teams_of(request.user)
    if payload.team:
        team = teams.filter(slug=payload.team).first()
        if team is None:
            raise DjangoValidationError({"team": [f"You are not in a team “{payload.team}”."]})
    elif teams.count() == 1:
        team = teams.get()
    else:
        raise DjangoValidationError(
            {"team": ["Name the team (its slug): you are in several teams, or none."]}
        )
    if payload.template_id is None:
        template = selectors.default_template()
    else:
        template = ChecklistTemplate.objects.filter(pk=payload.template_id).first()
    if template is None:
        raise DjangoValidationError({"template_id": ["No such checklist template."]})
    form = DeploymentCreateForm(
        {
            "service": payload.service,
            "environment": payload.environment,
            "version": payload.version,
            "planned_date": payload.planned_date or "",
            "team": team.pk,
            "template": template.pk,
        },
        user=request.user,
    )
    if not form.is_valid():
        raise DjangoValidationError(
            {
                field: [error["message"] for error in errors]
                for field, errors in form.errors.get_json_data().items()
            }
        )
    target = None
    if payload.aws is not None:
        target = AwsTargetForm(
            {
                "aws_account_id": payload.aws.account_id,
                "aws_regions": ", ".join(payload.aws.regions),
                "aws_role_arn": payload.aws.role_arn,
                "aws_external_id": payload.aws.external_id,
            }
        )
        if not target.is_valid():
            raise DjangoValidationError(
                {
                    f"aws.{field}": [error["message"] for error in errors]
                    for field, errors in target.errors.get_json_data().items()
                }
            )
    with transaction.atomic():
        deployment = create_deployment(user=request.user, **form.cleaned_data)
        if target is not None:
            deployment_set_aws_target(
                deployment=deployment, user=request.user, **target.cleaned_data
            )
    return Status(201, selectors.deployments_visible_to(request.user).get(pk=deployment.pk))


@api.get("/deployments/{int:deployment_id}", response=DeploymentOut, tags=["deployments"])
def deployments_read(request, deployment_id: int):
    return _visible(request, deployment_id)


# --- Checklist ---------------------------------------------------------------------------


class ProbeResultOut(Schema):
    probe: str
    region: str
    title: str
    status: str
    summary: str
    failing: list[dict]
    remediation: str


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


@api.get("/deployments/{int:deployment_id}/checklist", response=ChecklistOut, tags=["checklist"])
def checklist_read(request, deployment_id: int):
    """Every section and item with its status, who decided it, the latest probe results
    and the newest CI evidence."""
    deployment = _visible(request, deployment_id)
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
                        }
                        for result in results.get(item.pk, [])
                    ],
                    "ci_evidence": _verdict_out(verdicts.get(item.pk)),
                }
            )
        out.append({"title": section.title, "items": items})
    return {"deployment": deployment, "probe_run": run.pk if run else None, "sections": out}


# --- Probe runs --------------------------------------------------------------------------


class ProbeRunOut(Schema):
    id: int
    deployment_id: int
    state: str
    trigger: str
    total: int
    completed: int
    percent: int
    counts: dict[str, int]
    error: str
    created_at: datetime
    finished_at: datetime | None
    url: str


def _run_out(request, run: ProbeRun) -> dict:
    counts = dict(
        run.results.exclude(status="").values_list("status").annotate(n=Count("id")).order_by()
    )
    return {
        "id": run.pk,
        "deployment_id": run.deployment_id,
        "state": run.state,
        "trigger": run.trigger,
        "total": run.total,
        "completed": run.completed,
        "percent": run.percent,
        "counts": counts,
        "error": run.error,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "url": _absolute(
            request, reverse("api-v1:probe_runs_read", args=[run.deployment_id, run.pk])
        ),
    }


@api.post(
    "/deployments/{int:deployment_id}/probe-runs",
    response={202: ProbeRunOut, 200: ProbeRunOut, 400: Error, 403: Error},
    tags=["probes"],
)
def probe_runs_start(request, deployment_id: int):
    """Start a probe run (202), or join the one already running (200); poll its url."""
    _writer(request)
    deployment = _visible(request, deployment_id)
    run, created = probe_runs.probe_run_start(
        deployment=deployment, user=request.user, trigger=ProbeRunTrigger.API
    )
    return Status(202 if created else 200, _run_out(request, run))


@api.get(
    "/deployments/{int:deployment_id}/probe-runs/{int:run_id}",
    response=ProbeRunOut,
    tags=["probes"],
    url_name="probe_runs_read",
)
def probe_runs_read(request, deployment_id: int, run_id: int):
    deployment = _visible(request, deployment_id)
    return _run_out(request, get_object_or_404(ProbeRun, pk=run_id, deployment=deployment))


# --- Evidence ----------------------------------------------------------------------------


class EvidenceItemOut(Schema):
    section: str
    item: str
    passed: bool
    applied: bool
    summary: str
    details: list[str]
    conflict: str


class EvidenceOut(Schema):
    id: int
    kind: str
    filename: str
    sha256: str
    size_bytes: int
    uploaded_at: datetime
    uploaded_by: str
    verdicts: list[EvidenceItemOut]


def _evidence_out(evidence: Evidence) -> dict:
    return {
        "id": evidence.pk,
        "kind": evidence.kind,
        "filename": evidence.filename,
        "sha256": evidence.sha256,
        "size_bytes": evidence.size_bytes,
        "uploaded_at": evidence.uploaded_at,
        "uploaded_by": evidence.uploaded_by.get_username(),
        "verdicts": [
            {
                "section": verdict.item.section.title,
                "item": verdict.item.title,
                "passed": verdict.passed,
                "applied": verdict.applied,
                "summary": verdict.summary,
                "details": [str(line) for line in verdict.details],
                "conflict": verdict.conflict,
            }
            for verdict in evidence.verdicts.select_related("item__section").order_by("pk")
        ],
    }


@api.post(
    "/deployments/{int:deployment_id}/evidence",
    response={201: EvidenceOut, 400: Error, 403: Error, 409: Error},
    tags=["evidence"],
)
def evidence_create(
    request,
    deployment_id: int,
    kind: Form[EvidenceKind],
    file: File[UploadedFile],
    item: Form[str | None] = None,
):
    """Upload a report (multipart: `kind`, `file`, and `item` for JUnit: Integration Tests,
    E2E Tests, Smoke Tests or Performance Tests). It settles the items it speaks to unless
    a person or a probe decided them; the answer says what it did to each."""
    _writer(request)
    deployment = _visible(request, deployment_id)
    if file.size is not None and file.size > settings.EVIDENCE_MAX_BYTES:
        raise DjangoValidationError(
            f"The file is {file.size} bytes; evidence files may be at most "
            f"{settings.EVIDENCE_MAX_BYTES} bytes (EVIDENCE_MAX_BYTES)."
        )
    evidence = evidence_upload(
        deployment=deployment,
        user=request.user,
        kind=kind,
        upload=Upload(filename=file.name or "", data=file.read()),
        item=item,
        token=request.api_token,
    )
    return Status(201, _evidence_out(evidence))


@api.get(
    "/deployments/{int:deployment_id}/evidence",
    response=list[EvidenceOut],
    tags=["evidence"],
)
@paginate(PageNumberPagination, page_size=settings.API_PAGE_SIZE, max_page_size=500)
def evidence_list(request, deployment_id: int):
    deployment = _visible(request, deployment_id)
    return [
        _evidence_out(evidence)
        for evidence in deployment.evidence.select_related("uploaded_by").order_by(
            "-uploaded_at", "-pk"
        )
    ]


# --- Gate --------------------------------------------------------------------------------


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


RELEASABLE_STATES = (DeploymentState.APPROVED, DeploymentState.DEPLOYED, DeploymentState.VERIFIED)


@api.get(
    "/deployments/{int:deployment_id}/gate",
    response={200: GateOut, 409: GateOut},
    tags=["gate"],
)
def gate(request, deployment_id: int):
    """May this deployment go out? 200 when every role's approval holds, 409 otherwise —
    so a pipeline step can be `curl --fail`. The answer says what is missing."""
    deployment = _visible(request, deployment_id)
    role_standings = standings([deployment])[deployment.pk]
    items = list(
        ChecklistItem.objects.filter(section__deployment=deployment)
        .select_related("section")
        .order_by("section__position", "position")
    )
    failed = [
        f"{item.section.title} / {item.title}" for item in items if item.status == ItemStatus.FAILED
    ]
    open_items = sum(item.status == ItemStatus.OPEN for item in items)
    missing = [s.role.name for s in role_standings if s.status in ("missing", "revoked")]
    stale = [s.role.name for s in role_standings if s.status == "stale"]
    approving = all(standing.approving for standing in role_standings)
    approved = deployment.state in RELEASABLE_STATES and approving and bool(role_standings)
    record = (
        SignedRecord.objects.filter(deployment=deployment).order_by("-number").first()
        if approved
        else None
    )
    body = {
        "approved": approved,
        "state": deployment.state,
        "missing_roles": missing,
        "stale_roles": stale,
        "failed_items": failed,
        "open_items": open_items,
        "roles": [
            {
                "role": s.role.name,
                "status": s.status,
                "signed_by": s.active.printed_name if s.active else None,
            }
            for s in role_standings
        ],
        "record_sha256": record.sha256 if record else None,
        "url": _absolute(request, reverse("deployment_detail", args=[deployment.pk])),
    }
    # The gate's answer is a decision a pipeline acted on: the audit trail keeps it.
    audit_record(
        actor=request.user,
        action="api.gate_checked",
        obj=deployment,
        deployment=deployment,
        after={
            "approved": approved,
            "state": deployment.state,
            "http_status": 200 if approved else 409,
        },
    )
    return Status(200 if approved else 409, body)
