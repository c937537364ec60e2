"""Celery entry points of the checklist layer: thin wrappers that load by id."""

import random

from celery import shared_task
from django.db import DatabaseError

from readiness.checklists import targets


@shared_task(
    name=targets.LISTING_TASK,
    bind=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=1,
    retry_backoff_max=10,
    retry_jitter=True,
    max_retries=3,
    # Pages of 20 accounts, each retried by botocore: a minute is far more than an
    # organization of a thousand accounts needs. The soft limit ends the listing as failed.
    soft_time_limit=60,
    time_limit=75,
    acks_late=True,
)
def aws_organization_list(self, source_id: int, attempt: int) -> str:
    try:
        return targets.aws_organization_list(
            source_id=source_id,
            attempt=attempt,
            retry_throttling=self.request.retries < targets.LISTING_THROTTLE_RETRIES,
        )
    except targets.OrganizationThrottled as exc:
        # Throttling is the organization's, shared with everything else calling it: back
        # off (5, 10, 20 s) with jitter, then the last try writes the throttling as failed.
        countdown = 5 * 2**self.request.retries + random.uniform(0, 2)
        raise self.retry(exc=exc, countdown=countdown) from exc
