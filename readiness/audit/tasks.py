"""Celery entry point of the audit checkpoints."""

from celery import shared_task
from django.db import DatabaseError

from readiness.audit import services, verification


@shared_task(
    name="readiness.audit_checkpoint",
    autoretry_for=(DatabaseError,),
    retry_backoff=5,
    retry_jitter=True,
    max_retries=3,
    time_limit=120,
    soft_time_limit=100,
)
def audit_checkpoint() -> int | None:
    checkpoint = services.audit_checkpoint()
    # A copy that failed to reach storage before is made now.
    services.anchor_log_write()
    return checkpoint.pk if checkpoint else None


# A walk of every event: hourly by default (AUDIT_VERIFY_INTERVAL), with room to finish on
# a long trail; its own task, so a slow or failing walk never holds up the checkpoints.
@shared_task(name="readiness.audit_verify", time_limit=900, soft_time_limit=870)
def audit_verify() -> bool:
    return verification.audit_verify(source="schedule").ok
