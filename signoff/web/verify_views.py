"""The record verification page: upload a PDF, learn whether it is an unaltered record, what
it says (read from the file) and, apart, whether today's database still agrees with it.

Status codes: bad input (no file, empty, too big, not a PDF, truncated or damaged, encrypted,
or a readable PDF that is not a record at all: unsigned, no record id, no stored copy) is a
400 with the form's error. A PDF that is, or claims to be, a record gets a 200 report whose
verdict says "valid" or "not valid: <reason>": the check itself succeeded.

Who sees what: the page answers anyone unless RECORD_VERIFY_PUBLIC is off (then it needs a
login, as every other page). Anyone learns what the file itself holds (the verdict, its
signature, what the record says when the file embeds it) and whether the stored record it
is still its deployment's latest. Only members of the record's deployment's team also get
the link to the deployment and today's database beside the file: its row and whether it
still agrees. Uploads without a login are limited per client address (RECORD_VERIFY_RATE);
over the limit is a 429.
"""

import logging

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

from readiness.checklists.selectors import deployments_visible_to
from signoff.records.selectors import record_standing
from signoff.records.signing import PDF_MAGIC, RecordVerification, verify_record

TEMPLATE = "signoff/verify.html"
RATE_GROUP = "record_verify"

log = logging.getLogger(__name__)


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


def _rate(group: str, request: HttpRequest) -> str | None:
    # People with an account are known and audited; the limit guards the anonymous use.
    return None if request.user.is_authenticated else settings.RECORD_VERIFY_RATE


def _client(group: str, request: HttpRequest) -> str:
    # The address axes and the audit trail use. Behind a proxy on a Unix socket it can be
    # empty, where django-ratelimit's "ip" key raises: such clients share one count.
    return request.META.get("REMOTE_ADDR") or "unknown address"


def _seconds_until_allowed(request: HttpRequest) -> int | None:
    """Counts this POST; the seconds until the client may verify again when it is over the
    limit, else None."""
    try:
        usage = get_usage(
            request, group=RATE_GROUP, key=_client, rate=_rate, method="POST", increment=True
        )
    except RedisError:
        # Failing open: an outage of the counter's store must not take the page down, and
        # the upload size limit still bounds each request's work.
        log.warning("record verification rate limit unavailable; not limiting", exc_info=True)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    return max(usage["time_left"], 1)


def _too_many(request: HttpRequest, retry_after: int) -> HttpResponse:
    context = {
        "form": RecordVerifyForm(),
        "retry_after": retry_after,
        "max_bytes": settings.RECORD_VERIFY_MAX_BYTES,
    }
    template = f"{TEMPLATE}#verify-panel" if request.htmx else TEMPLATE
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def _public_verdict(result: RecordVerification) -> str:
    """The verdict without what only the database knows: a file that claims a stored record
    it is not would otherwise learn that record's deployment name from the verdict."""
    claimed = result.claimed_record
    if claimed is None:
        return result.verdict
    return result.verdict.replace(f" (record {claimed.number} of {claimed.deployment})", "")


@login_not_required
@require_http_methods(["GET", "POST"])
def record_verify(request: HttpRequest) -> HttpResponse:
    if not settings.RECORD_VERIFY_PUBLIC and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    posted = request.method == "POST"
    if posted:
        retry_after = _seconds_until_allowed(request)
        if retry_after is not None:
            return _too_many(request, retry_after)
    form = RecordVerifyForm(request.POST if posted else None, request.FILES if posted else None)
    result = None
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
    match = result and (result.record or result.claimed_record)
    # Members of the deployment's team see the database beside the file; anyone else only
    # what the file holds and whether the stored record is still the latest.
    member = bool(
        match and deployments_visible_to(request.user).filter(pk=match.deployment_id).exists()
    )
    context = {
        "form": form,
        "result": result,
        "verdict": result and (result.verdict if member else _public_verdict(result)),
        "match": match,
        "member": member,
        "deployment_url_visible": member,
        "standing": record_standing(result.record) if result and result.record else None,
        "max_bytes": settings.RECORD_VERIFY_MAX_BYTES,
    }
    status = 400 if form.errors else 200
    template = f"{TEMPLATE}#verify-panel" if request.htmx else TEMPLATE
    return render(request, template, context, status=status)
