"""The worker's side of /healthz."""

from celery import shared_task


@shared_task(name="readiness.worker_ping", ignore_result=False, time_limit=10, soft_time_limit=5)
def worker_ping() -> str:
    """Answers /healthz's round trip: proof that a worker is consuming the queue."""
    return "pong"
