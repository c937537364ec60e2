"""The record verification page: upload a PDF, learn whether it is an unaltered record, what
it says (read from the file) and, apart, whether today's database still agrees with it.

Status codes: bad input (no file, empty, too big, not a PDF, truncated or damaged, encrypted,
or a readable PDF that is not a record at all: unsigned, no record id, no stored copy) is a
400 with the form's error. A PDF that is, or claims to be, a record gets a 200 report whose
verdict says "valid" or "not valid: <reason>": the check itself succeeded.
"""

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.http import require_http_methods

from readiness.checklists.selectors import deployments_visible_to
from signoff.records.signing import PDF_MAGIC, verify_record

TEMPLATE = "signoff/verify.html"


class RecordVerifyForm(forms.Form):
    file = forms.FileField(
        label="Record PDF",
        help_text="A record downloaded from this server (or sent to you as one).",
        error_messages={
            "required": "Choose the PDF to verify.",
            "empty": "The file is empty.",
        },
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
    )


def _read_upload(form: RecordVerifyForm) -> bytes | None:
    """The uploaded bytes, or None with an error on the form."""
    upload = form.cleaned_data["file"]
    limit = settings.RECORD_VERIFY_MAX_BYTES
    # Checked before reading: the size is known from the upload handler.
    if upload.size > limit:
        form.add_error(
            "file",
            f"The file is {filesizeformat(upload.size)}; the limit is {filesizeformat(limit)}.",
        )
        return None
    data = upload.read()
    # The client's content type and file name prove nothing; the bytes do.
    if not data.startswith(PDF_MAGIC):
        form.add_error("file", "This is not a PDF file (it does not start with %PDF-).")
        return None
    return data


@require_http_methods(["GET", "POST"])
def record_verify(request: HttpRequest) -> HttpResponse:
    posted = request.method == "POST"
    form = RecordVerifyForm(request.POST if posted else None, request.FILES if posted else None)
    result = None
    deployment_url_visible = False
    if posted and form.is_valid():
        data = _read_upload(form)
        if data is not None:
            result = verify_record(data)
            if result.pdf.bad_input:
                form.add_error("file", result.verdict)
                result = None
            elif not result.is_record:
                form.add_error(
                    "file",
                    "This PDF is not a record: it has no digital signature, names no record "
                    "and matches no stored record.",
                )
                result = None
    if result is not None:
        match = result.record or result.claimed_record
        deployment_url_visible = bool(
            match and deployments_visible_to(request.user).filter(pk=match.deployment_id).exists()
        )
    context = {
        "form": form,
        "result": result,
        "match": result and (result.record or result.claimed_record),
        "deployment_url_visible": deployment_url_visible,
        "max_bytes": settings.RECORD_VERIFY_MAX_BYTES,
    }
    status = 400 if form.errors else 200
    template = f"{TEMPLATE}#verify-panel" if request.htmx else TEMPLATE
    return render(request, template, context, status=status)
