"""Downloads of a deployment's PDF: stored records as they were written, drafts rendered now."""

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_GET

from readiness.checklists import selectors as readiness_selectors
from signoff.records import services as records
from signoff.records.models import SignedRecord


@require_GET
def record_download(request: HttpRequest, pk: int, number: int) -> FileResponse:
    """A stored record, byte for byte from storage: never re-rendered."""
    deployment = get_object_or_404(readiness_selectors.deployments_visible_to(request.user), pk=pk)
    record = get_object_or_404(SignedRecord, deployment=deployment, number=number)
    try:
        handle = record.file.open("rb")
    except FileNotFoundError as error:
        raise Http404("The stored file of this record is missing; see the runbook.") from error
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=records.record_filename(deployment, record.number),
        content_type="application/pdf",
    )
    response["X-Record-SHA256"] = record.sha256
    return response


@require_GET
def record_draft(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = get_object_or_404(readiness_selectors.deployments_visible_to(request.user), pk=pk)
    data = records.draft_pdf(deployment)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    name = records.record_filename(deployment, 0).replace("-record-0.pdf", f"-DRAFT-{stamp}.pdf")
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
