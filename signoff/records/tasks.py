"""Celery entry points of the signed record and of its drafts."""

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from readiness.outbox.services import OutboxBusy, outbox_once
from signoff.records import drafts, services
from signoff.records.errors import TrustedTimeError


@shared_task(
    name="signoff.record_generate",
    # Rendering and signing are local work; the database and the time-stamping authority
    # (SIGNING_TSA_URL) are the ones worth another try. A broken key is not.
    autoretry_for=(DatabaseError, TrustedTimeError, OutboxBusy),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
    time_limit=180,
    soft_time_limit=150,
    acks_late=True,
)
def record_generate(deployment_id: int, outbox_key: str | None = None) -> None:
    # Requests stored before the key was passed come without one and simply run.
    outbox_once(outbox_key, lambda: services.record_generate(deployment_id=deployment_id))


@shared_task(
    name="signoff.record_draft_render",
    autoretry_for=(DatabaseError,),
    retry_backoff=1,
    retry_backoff_max=10,
    retry_jitter=True,
    max_retries=3,
    # The page reports a draft not ready after RECORD_DRAFT_TIMEOUT as failed and offers a
    # retry: past that, a render is no use to anyone.
    soft_time_limit=settings.RECORD_DRAFT_TIMEOUT,
    time_limit=settings.RECORD_DRAFT_TIMEOUT + 10,
    acks_late=True,
)
def record_draft_render(
    deployment_id: int, state_digest: str, page_size: str, attempt: int
) -> None:
    try:
        drafts.draft_render(
            deployment_id=deployment_id,
            state_digest=state_digest,
            page_size=page_size,
            attempt=attempt,
        )
    except OutboxBusy:
        # Another delivery of this attempt is rendering; the page waits for that one.
        return
