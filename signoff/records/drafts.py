"""Drafts of the record: rendered by a worker, kept by state digest, served from storage.

A request never renders. It reads the deployment's snapshot (about 20 ms, the digest needs
it) and looks for the draft of that digest and page size in the default storage, under
drafts/<deployment>/<digest>-<page size>.pdf. If it is there the request serves it; if not,
it stores one render in the outbox (key draft:<deployment>:<digest>:<page size>:<attempt>)
and answers a page that polls until the file is there.

Why storage and not the cache: the default cache is each process's own memory (LocMem),
which a worker cannot fill for the web process; the storage is where records already go,
shared by web and worker (one folder in `make run`, a volume in docker-compose).

Two clicks, two users, two gunicorn workers asking for the same digest write the same
outbox key: one row, so one render (the outbox's unique key is the lock, in PostgreSQL and
SQLite alike). A failed attempt leaves its error beside the draft
(<digest>-<page size>-<attempt>.error); a retry stores the next attempt's key. An attempt
neither done nor failed RECORD_DRAFT_TIMEOUT seconds after it was asked for (a worker that
died, no worker at all) is reported as failed, so a page never waits for ever. Storing a
draft removes the deployment's drafts of other digests: one deployment keeps one state.

A draft is never a record: DRAFT on every page, no signature, no SignedRecord row.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.utils import timezone

from readiness.checklists.models import Deployment
from readiness.outbox.models import OutboxMessage
from readiness.outbox.services import outbox_enqueue, outbox_once
from signoff.records.snapshot import record_snapshot

log = logging.getLogger(__name__)

TASK_NAME = "signoff.record_draft_render"
FOLDER = "drafts"
# The last bytes of a complete PDF hold its end marker: a file still being written (the
# file system storage writes in place) is not served half-way.
PDF_END = b"%%EOF"


class DraftState(StrEnum):
    READY = "ready"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True)
class Draft:
    """What a request learns about the draft of the deployment's current state."""

    deployment_id: int
    state_digest: str
    page_size: str
    state: DraftState
    attempt: int = 0
    asked_at: datetime | None = None
    rendering: bool = False  # a worker has taken it
    error: str = ""

    @property
    def name(self) -> str:
        return draft_name(self.deployment_id, self.state_digest, self.page_size)

    @property
    def waited_seconds(self) -> int:
        return int((timezone.now() - self.asked_at).total_seconds()) if self.asked_at else 0


def draft_name(deployment_id: int, state_digest: str, page_size: str) -> str:
    return f"{FOLDER}/{deployment_id}/{state_digest}-{page_size.lower()}.pdf"


def _error_name(deployment_id: int, state_digest: str, page_size: str, attempt: int) -> str:
    return f"{FOLDER}/{deployment_id}/{state_digest}-{page_size.lower()}-{attempt}.error"


def _key_prefix(deployment_id: int, state_digest: str, page_size: str) -> str:
    return f"draft:{deployment_id}:{state_digest}:{page_size.lower()}:"


def draft_key(deployment_id: int, state_digest: str, page_size: str, attempt: int) -> str:
    return f"{_key_prefix(deployment_id, state_digest, page_size)}{attempt}"


def _page_size(page_size: str | None) -> str:
    from signoff.records import pdf  # WeasyPrint: only where a record is drawn (services)

    chosen = page_size or settings.RECORD_PAGE_SIZE
    pdf.page_size_css(chosen)  # refuses a size the record cannot print
    return chosen


def draft_is_stored(name: str) -> bool:
    """A complete draft is in storage under `name`."""
    try:
        with default_storage.open(name, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(size - 1024, 0))
            return PDF_END in handle.read()
    except (FileNotFoundError, OSError):
        return False


def draft_open(draft: Draft):
    """The stored draft's file, open for reading; FileNotFoundError when it was replaced."""
    return default_storage.open(draft.name, "rb")


def _read_error(name: str) -> str | None:
    try:
        with default_storage.open(name, "rb") as handle:
            return handle.read().decode(errors="replace") or "The render failed."
    except (FileNotFoundError, OSError):
        return None


def draft_request(
    *, deployment: Deployment, page_size: str | None = None, retry: bool = False
) -> Draft:
    """The draft of `deployment` as it is now: READY when stored, otherwise PENDING with one
    render asked for (never two for one digest), or FAILED with the reason. `retry` asks
    for a new attempt after a failure; a pending or ready draft is left as it is."""
    page_size = _page_size(page_size)
    digest = record_snapshot(deployment, record_id="DRAFT").state_digest
    found = Draft(deployment.pk, digest, page_size, DraftState.READY)
    if draft_is_stored(found.name):
        return found
    latest = (
        OutboxMessage.objects.filter(key__startswith=_key_prefix(deployment.pk, digest, page_size))
        .order_by("-id")
        .first()
    )
    if latest is None:
        return _ask(found, attempt=1)
    attempt = int(latest.key.rsplit(":", 1)[1])
    error = _read_error(_error_name(deployment.pk, digest, page_size, attempt))
    if error is None and latest.done_at is not None:
        # Rendered, yet no file: a newer state's draft replaced it, or the state changed
        # during the render (stored under its own digest). This state needs a render again.
        return _ask(found, attempt=attempt + 1)
    timeout = timedelta(seconds=settings.RECORD_DRAFT_TIMEOUT)
    if error is None and timezone.now() - latest.created_at > timeout:
        where = "a worker took it" if latest.claimed_at else "no worker took it"
        error = (
            f"The draft was not ready {settings.RECORD_DRAFT_TIMEOUT} s after it was asked "
            f"for ({where})."
        )
    if error is not None:
        if retry:
            return _ask(found, attempt=attempt + 1)
        return Draft(
            deployment.pk,
            digest,
            page_size,
            DraftState.FAILED,
            attempt=attempt,
            asked_at=latest.created_at,
            error=error,
        )
    return Draft(
        deployment.pk,
        digest,
        page_size,
        DraftState.PENDING,
        attempt=attempt,
        asked_at=latest.created_at,
        rendering=latest.claimed_at is not None,
    )


def _ask(found: Draft, *, attempt: int) -> Draft:
    key = draft_key(found.deployment_id, found.state_digest, found.page_size, attempt)
    with transaction.atomic():
        # Two requests asking at once write one row: the key is unique, the second adds
        # nothing, and the outbox publishes the row once.
        outbox_enqueue(
            TASK_NAME,
            key=key,
            args=[found.deployment_id, found.state_digest, found.page_size, attempt],
        )
    asked = OutboxMessage.objects.filter(key=key).values("created_at", "claimed_at").first()
    return Draft(
        found.deployment_id,
        found.state_digest,
        found.page_size,
        DraftState.PENDING,
        attempt=attempt,
        asked_at=asked["created_at"] if asked else timezone.now(),
        rendering=bool(asked and asked["claimed_at"]),
    )


def draft_render(*, deployment_id: int, state_digest: str, page_size: str, attempt: int) -> None:
    """The worker's part: render the deployment's draft and store it, once per attempt
    however often the broker delivers it."""
    key = draft_key(deployment_id, state_digest, page_size, attempt)
    outbox_once(key, lambda: _render(deployment_id, state_digest, page_size, attempt))


def _render(deployment_id: int, state_digest: str, page_size: str, attempt: int) -> None:
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None:
        return
    from signoff.records import pdf  # WeasyPrint: only where a record is drawn (services)

    try:
        snapshot = record_snapshot(deployment, record_id="DRAFT")
        data = pdf.render_record(snapshot, draft=True, page_size=page_size)
    except DatabaseError:
        # Transient: the task's own retries.
        raise
    except Exception as error:
        # Anything else (a template or WeasyPrint error, the soft time limit) would fail
        # again on its own: the page shows it and offers a retry.
        log.exception("the draft of deployment %s did not render", deployment_id)
        name = _error_name(deployment_id, state_digest, page_size, attempt)
        if default_storage.exists(name):
            default_storage.delete(name)
        message = f"The render failed: {type(error).__name__}: {error}"[:2000]
        default_storage.save(name, ContentFile(message.encode()))
        return
    if snapshot.state_digest != state_digest:
        log.info("deployment %s changed while its draft rendered", deployment_id)
    _store(deployment_id, snapshot.state_digest, page_size, data)


def _store(deployment_id: int, state_digest: str, page_size: str, data: bytes) -> None:
    name = draft_name(deployment_id, state_digest, page_size)
    if not draft_is_stored(name):
        if default_storage.exists(name):
            # An incomplete file of a render killed while writing.
            default_storage.delete(name)
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:
            # Another render of the same state stored it first; the storage renamed ours.
            default_storage.delete(saved)
    _remove_other_drafts(deployment_id, keep=f"{state_digest}-")


def _remove_other_drafts(deployment_id: int, *, keep: str) -> None:
    """Bounded disk: a deployment keeps the drafts of its newest stored state only."""
    folder = f"{FOLDER}/{deployment_id}"
    try:
        _, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for file in files:
        if not file.startswith(keep) or file.endswith(".error"):
            default_storage.delete(f"{folder}/{file}")
