"""Downloads of a deployment's PDF: stored records as they were written; drafts as a worker
rendered them (signoff.records.drafts), never rendered in the request."""

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from readiness.checklists import selectors as readiness_selectors
from signoff.records import drafts
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


def _draft_file(deployment, draft: drafts.Draft) -> HttpResponse:
    try:
        handle = drafts.draft_open(draft)
    except FileNotFoundError as error:
        # Removed between the look and the open (a newer state's draft was stored).
        raise Http404("The draft was replaced by a newer one; ask for it again.") from error
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    name = records.record_filename(deployment, 0).replace("-record-0.pdf", f"-DRAFT-{stamp}.pdf")
    response = FileResponse(
        handle, as_attachment=True, filename=name, content_type="application/pdf"
    )
    response["Cache-Control"] = "no-store"
    return response


def _draft_page(request: HttpRequest, deployment, draft: drafts.Draft, *, status: int = 200):
    template = "signoff/draft.html"
    if request.htmx:
        template += "#draft-panel"
    context = {
        "deployment": deployment,
        "draft": draft,
        "poll_seconds": 1,
        "timeout": settings.RECORD_DRAFT_TIMEOUT,
    }
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def record_draft(request: HttpRequest, pk: int) -> HttpResponse:
    """The draft PDF when a worker has rendered the current state; otherwise 202 and the page
    that waits for it (one render per state, however many ask)."""
    deployment = get_object_or_404(readiness_selectors.deployments_visible_to(request.user), pk=pk)
    draft = drafts.draft_request(deployment=deployment)
    if draft.state == drafts.DraftState.READY:
        return _draft_file(deployment, draft)
    return _draft_page(request, deployment, draft, status=202)


@require_GET
def record_draft_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Where the draft is: preparing (htmx polls this panel), ready (a link), or failed."""
    deployment = get_object_or_404(readiness_selectors.deployments_visible_to(request.user), pk=pk)
    return _draft_page(request, deployment, drafts.draft_request(deployment=deployment))


@require_POST
def record_draft_retry(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = get_object_or_404(readiness_selectors.deployments_visible_to(request.user), pk=pk)
    draft = drafts.draft_request(deployment=deployment, retry=True)
    if request.htmx:
        return _draft_page(request, deployment, draft)
    return redirect("record_draft_status", pk=deployment.pk)
