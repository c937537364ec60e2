"""Celery entry point of the outbox: the periodic sweeper."""

from celery import shared_task

from readiness.outbox import services


@shared_task(name="readiness.outbox_sweep", time_limit=120, soft_time_limit=100)
def outbox_sweep() -> int:
    """Celery beat's (every 30 s) send of what the broker refused after commit, and of work
    sent long ago and still not done (outbox_redeliver); rows sent more than KEEP_SENT ago
    are removed on the way."""
    services.outbox_prune()
    services.outbox_redeliver()
    return services.outbox_sweep()
