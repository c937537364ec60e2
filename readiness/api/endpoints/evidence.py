"""/deployments/{id}/evidence: upload CI reports that settle items, list them."""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.pagination import paginate

from readiness.api.endpoints.common import Error, Pages, require_writer, visible_deployment
from readiness.evidence.models import Evidence, EvidenceKind
from readiness.evidence.services import Upload, evidence_upload

router = Router()


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


@router.post(
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
    require_writer(request)
    deployment = visible_deployment(request, deployment_id)
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


@router.get(
    "/deployments/{int:deployment_id}/evidence",
    response=list[EvidenceOut],
    tags=["evidence"],
)
@paginate(Pages, page_size=settings.API_PAGE_SIZE, max_page_size=500)
def evidence_list(request, deployment_id: int):
    deployment = visible_deployment(request, deployment_id)
    return [
        _evidence_out(evidence)
        for evidence in deployment.evidence.select_related("uploaded_by").order_by(
            "-uploaded_at", "-pk"
        )
    ]
