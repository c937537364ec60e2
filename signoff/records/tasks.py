"""Celery entry point of the signed record."""

from celery import shared_task
from django.db import DatabaseError

from signoff.records import services


@shared_task(
    name="signoff.record_generate",
    # Rendering and signing are local work; only the database is worth another try.
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
    time_limit=180,
    soft_time_limit=150,
    acks_late=True,
)
def record_generate(deployment_id: int) -> None:
    services.record_generate(deployment_id=deployment_id)
