"""Celery entry points: thin wrappers that load by id and call domain code."""

import ctypes

from celery import shared_task
from celery.signals import worker_init
from django.db import DatabaseError

from readiness.probe_runs import services as probe_runs

# Only the database is retried here: AWS throttling and timeouts are retried inside botocore
# (standard mode, exponential backoff with jitter) and end as `error` results.
RETRY_DATABASE = dict(
    bind=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=3,
    # A task carries a probe's regions, run one after another.
    time_limit=240,
    soft_time_limit=220,
    acks_late=True,
)


# A prefork child killed mid-task (OOM, SIGKILL) would otherwise lose its message: it goes
# back to the queue, and the checks' claims decide whether they run again (services).
@shared_task(name="readiness.probe_results_execute", reject_on_worker_lost=True, **RETRY_DATABASE)
def probe_results_execute(self, result_ids: list[int]) -> None:
    held = probe_runs.probe_results_execute(result_ids=result_ids)
    if held is not None:
        # Another delivery holds some of these checks. Look again when its lease runs out:
        # by then it has finished them, or its worker died and they are taken over here.
        # The same task id: cancelling the run revokes every delivery of it.
        self.apply_async((result_ids,), countdown=held, task_id=self.request.id)


@shared_task(name="readiness.probe_runs_sweep", time_limit=120, soft_time_limit=100)
def probe_runs_sweep() -> int:
    return probe_runs.probe_runs_sweep()


@shared_task(name="readiness.reprobe_watched", time_limit=300, soft_time_limit=280)
def reprobe_watched() -> dict:
    """Celery beat's daily (REPROBE_SCHEDULE) re-probe of approved and deployed deployments."""
    return probe_runs.reprobe_watched()


# glibc raises its mmap threshold to the largest block freed so far (up to 32 MB): once the
# API models' files (a few MB each, read once per process) are freed, every later block under
# that size comes from the heap, where a freed one stays resident as long as a live one sits
# above it. A fixed threshold (glibc's default, 128 KiB: setting it stops it moving) gives
# large blocks back when they are freed: ~16 MB less for a worker building its accounts'
# clients, for the same CPU.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


@worker_init.connect(weak=False)
def fix_mmap_threshold(**kwargs) -> bool:
    """Keep malloc's mmap threshold where it starts, in a worker (True: it is set)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: its allocator has no such threshold
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
