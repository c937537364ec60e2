"""The outbox: store a task in the caller's transaction, send it after commit or later.

`outbox_enqueue` writes the row beside the change that causes it, so the intent commits or
rolls back with that change. After the commit one best-effort attempt sends the rows the
transaction wrote; what the broker refused stays pending for `outbox_sweep` (Celery beat,
every 30 seconds), which sends pending rows oldest first.

Exactly once, honestly: a publish and the UPDATE that marks it sent cannot be one atomic
step across the broker and the database. A sender leases a row before publishing (so two
senders never publish it at the same time) and marks it sent after; a crash between the
two publishes it again once the lease expires. So the consumers are idempotent: the record
is unique per state digest, probe tasks claim their checks, and a mail or webhook task runs
its work through `outbox_once`, which does it once per row however often it is delivered.
"""

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import structlog
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from readiness import dispatch
from readiness.outbox.models import OutboxMessage

log = logging.getLogger(__name__)

T = TypeVar("T")

# A sender's lease on a row: longer than a publish can take with its retries (3 s connect
# timeout, CELERY_TASK_PUBLISH_RETRY_POLICY), shorter than the sweep interval.
SEND_LEASE = timedelta(seconds=25)
# The sweeper leaves rows this young to the sender that runs right after their commit.
SWEEP_MIN_AGE = timedelta(seconds=5)
SWEEP_BATCH = 500
# A consumer's lease: longer than the hard time limit of any task that uses outbox_once, so
# a live delivery is never taken over; a dead one's work is retried after it.
CLAIM_LEASE = timedelta(seconds=300)
# Sent rows are kept this long (what was sent when), then the sweeper removes them.
KEEP_SENT = timedelta(days=30)
# A row whose consumer reports its work done (`outbox_key` in its kwargs, `outbox_once`) and
# has not, this long after it was sent, is sent again: longer than any such task's own
# retries last (a mail's: about 16 minutes), so it only catches work those retries gave up
# on (a mail server or a time-stamping authority down for longer) or a message the broker
# lost. Up to REDELIVER_MAX_ATTEMPTS sends (a day at this pace); after that the row waits
# for an operator (`manage.py outbox`).
REDELIVER_AFTER = timedelta(minutes=30)
REDELIVER_MAX_ATTEMPTS = 48
# Right after a commit a request is waiting: one reconnection (a broker that restarted
# leaves a stale pooled connection), then the sweeper's turn.
AFTER_COMMIT_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


# Every send of one intent carries one Celery task id, derived from its key: the sender's,
# the sweeper's and a task's own re-sends alike, so the intent can be revoked by its key.
_TASK_ID_NAMESPACE = uuid.UUID("5b0c1f0e-3d1a-4d8e-9a65-2f1c7a4e0b11")


def task_id_of(key: str) -> str:
    """The Celery task id every send of the intent `key` carries."""
    return str(uuid.uuid5(_TASK_ID_NAMESPACE, key))


class OutboxBusy(Exception):
    """Another delivery of this message is at work right now: try again later."""


@dataclass(frozen=True)
class Intent:
    """One task to store: its name, the key naming the intent, JSON args and kwargs."""

    task_name: str
    key: str
    args: list | tuple = ()
    kwargs: dict | None = None


def outbox_enqueue(
    task_name: str,
    *,
    key: str,
    args: list | tuple = (),
    kwargs: dict | None = None,
) -> None:
    """Store a task to send once the current transaction commits; call it inside that
    transaction. A key already stored is the same intent: nothing is added."""
    outbox_enqueue_many([Intent(task_name, key, args, kwargs)])


def outbox_enqueue_many(intents: Iterable[Intent]) -> None:
    """Store several tasks in one INSERT (a probe run's tasks, a notification's channels),
    sent in this order after the commit."""
    intents = list(intents)
    if not intents:
        return
    if not connection.in_atomic_block:
        # Outside a transaction the row would commit on its own, before (or without) the
        # change that is its reason: a mail about a signature that was rolled back.
        raise RuntimeError(f"outbox_enqueue({intents[0].key!r}) outside a transaction")
    # The row may be sent long after this request by the sweeper, whose own context is not
    # the request's: the request id travels with the row (see _publish).
    request_id = str(structlog.contextvars.get_contextvars().get("request_id") or "")[:128]
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                key=intent.key,
                task_name=intent.task_name,
                args=list(intent.args),
                kwargs=intent.kwargs or {},
                request_id=request_id,
            )
            for intent in intents
        ],
        # A key stored already (by this transaction or an earlier one) is left as it is.
        ignore_conflicts=True,
    )
    transaction.on_commit(_SendAfterCommit([intent.key for intent in intents]), robust=True)


_local = threading.local()


class _SendAfterCommit:
    """A best-effort send of rows once their transaction commits. After a refusal the
    transaction's other rows are not tried (the sweeper sends them): a request waits for
    at most one failing publish, however many rows it wrote."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        # Django collects one transaction's callbacks in one list (a new one after each
        # commit or rollback): its identity tells the rows of this transaction apart.
        self.batch = connection.run_on_commit

    def __call__(self) -> None:
        for key in self.keys:
            if getattr(_local, "refused_batch", None) is self.batch:
                return
            if _send(key, retry_policy=AFTER_COMMIT_RETRY) is False:
                _local.refused_batch = self.batch


def _lease(rows, now) -> bool:
    """Take the right to publish one pending row (a conditional UPDATE)."""
    return bool(
        rows.filter(sent_at__isnull=True)
        .filter(Q(sending_since__isnull=True) | Q(sending_since__lt=now - SEND_LEASE))
        .update(sending_since=now, attempts=F("attempts") + 1)
    )


def _send(key: str, *, retry_policy: dict | None) -> bool | None:
    """Publish one row: True when sent, False when the broker refused, None when it was
    not this sender's to send (sent already, gone, or leased by another sender)."""
    now = timezone.now()
    if not _lease(OutboxMessage.objects.filter(key=key), now):
        return None
    return _publish(OutboxMessage.objects.get(key=key), now, retry_policy=retry_policy)


def _publish(message: OutboxMessage, leased_at, *, retry_policy: dict | None) -> bool:
    """Publish a leased row (retry_policy None: the configured one)."""
    # Bound while publishing, django-structlog copies it into the message's headers, and the
    # worker binds it for the task's lines (LOG_FORMAT=json).
    context = (
        structlog.contextvars.bound_contextvars(request_id=message.request_id)
        if message.request_id
        else nullcontext()
    )
    try:
        with context:
            dispatch.send(
                message.task_name,
                message.args,
                message.kwargs,
                retry_policy=retry_policy,
                task_id=task_id_of(message.key),
            )
    except Exception as error:
        # Release the lease: the next sweep (or an operator's `manage.py outbox --sweep`)
        # may try at once.
        OutboxMessage.objects.filter(pk=message.pk, sending_since=leased_at).update(
            sending_since=None,
            last_error=f"{leased_at:%Y-%m-%d %H:%M:%S} UTC {type(error).__name__}: {error}"[:2000],
        )
        log.warning(
            "Outbox: could not send %s (%s): %s; it stays pending for the sweeper.",
            message.key,
            message.task_name,
            error,
        )
        return False
    OutboxMessage.objects.filter(pk=message.pk, sent_at__isnull=True).update(
        sent_at=timezone.now(), last_error=""
    )
    return True


def _ready(now, min_age: timedelta):
    return OutboxMessage.objects.filter(
        Q(sending_since__isnull=True) | Q(sending_since__lt=now - SEND_LEASE),
        sent_at__isnull=True,
        created_at__lte=now - min_age,
    )


def outbox_sweep(*, min_age: timedelta = SWEEP_MIN_AGE, limit: int = SWEEP_BATCH) -> int:
    """Send pending rows, oldest first; stop at the first refusal (the broker is away, the
    next sweep tries again). Returns how many were sent.

    Each row is picked with SELECT … FOR UPDATE SKIP LOCKED and leased in that transaction,
    and published after it: two sweepers never publish one row at the same time, and no
    transaction stays open while the broker is asked.
    """
    sent = 0
    while sent < limit:
        now = timezone.now()
        with transaction.atomic():
            message = (
                _ready(now, min_age).select_for_update(skip_locked=True).order_by("id").first()
            )
            if message is None:
                break
            # On SQLite (no FOR UPDATE) the conditional UPDATE alone keeps two apart.
            leased = _lease(OutboxMessage.objects.filter(pk=message.pk), now)
        if leased:
            if not _publish(message, now, retry_policy=None):
                break
            sent += 1
    return sent


def outbox_redeliver(*, after: timedelta = REDELIVER_AFTER) -> int:
    """Make pending again the rows sent `after` ago whose work is not done and that no
    delivery is at (their consumer marks work done); returns how many. The sweep then sends
    them like any pending row, and `outbox_once` keeps a late first delivery from doing the
    work a second time."""
    now = timezone.now()
    return (
        OutboxMessage.objects.filter(
            sent_at__lt=now - after,
            done_at__isnull=True,
            kwargs__has_key="outbox_key",
            attempts__lt=REDELIVER_MAX_ATTEMPTS,
        )
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_LEASE))
        .update(
            sent_at=None,
            sending_since=None,
            last_error=f"{now:%Y-%m-%d %H:%M:%S} UTC not done {after} after it was sent: "
            "sent again",
        )
    )


def outbox_prune(*, keep: timedelta = KEEP_SENT, limit: int = 5000) -> int:
    """Remove rows sent longer than `keep` ago, oldest first; returns how many. Pending rows
    are never removed."""
    old = OutboxMessage.objects.filter(sent_at__lt=timezone.now() - keep).order_by("id")
    ids = list(old.values_list("pk", flat=True)[:limit])
    return OutboxMessage.objects.filter(pk__in=ids).delete()[0] if ids else 0


def outbox_once(key: str | None, work: Callable[[], T]) -> T | None:
    """Do a message's work once however often the broker delivers it: lease the row, run
    `work`, mark the row done. Returns None without running `work` when it was done
    already; raises OutboxBusy while another delivery is at it (the task retries later).

    A failure of `work` releases the lease and propagates (the task's own retries). A
    worker killed inside `work` leaves the lease to expire (CLAIM_LEASE): the work is then
    done again, which for a mail may mean twice; its Message-ID is the same both times.
    """
    if key is None:
        return work()
    now = timezone.now()
    claimed = (
        OutboxMessage.objects.filter(key=key, done_at__isnull=True)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_LEASE))
        .update(claimed_at=now)
    )
    if not claimed:
        state = OutboxMessage.objects.filter(key=key).values("done_at").first()
        if state is None:
            # No row to keep count with (removed by hand): deliver rather than drop.
            log.warning("Outbox: no row %s; doing its work without the once-only check", key)
            return work()
        if state["done_at"] is not None:
            log.info("Outbox: %s was done already; this delivery does nothing", key)
            return None
        raise OutboxBusy(key)
    try:
        result = work()
    except BaseException:
        OutboxMessage.objects.filter(key=key, claimed_at=now).update(claimed_at=None)
        raise
    OutboxMessage.objects.filter(key=key, claimed_at=now).update(done_at=timezone.now())
    return result
