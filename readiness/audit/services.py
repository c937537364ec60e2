"""The append-only, hash-chained audit trail: record an event, verify the chain."""

import hashlib
import json
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from readiness.audit.models import AuditEvent

GENESIS = "0" * 64
# The client address of the request being served, set by AuditRequestMiddleware, so that
# services record it without every signature carrying the request.
current_ip: ContextVar[str | None] = ContextVar("current_ip", default=None)
# How the actor acted when not through the pages, e.g. "API token “CI” (rdy_abcd1234…)":
# written into the event's `after` so the chain itself says which credential was used.
current_via: ContextVar[str] = ContextVar("current_via", default="")
# Any constant: serializes appends to the chain across PostgreSQL connections.
_CHAIN_LOCK = 7_230_514


def hashed_fields(event: AuditEvent) -> dict:
    """The fields an event's hash covers, as hashed (exports hand them to auditors)."""
    return {
        "prev_hash": event.prev_hash,
        "created_at": event.created_at.isoformat(),
        "actor_id": event.actor_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "deployment_id": event.deployment_id,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "ip": event.ip,
    }


def _canonical(event: AuditEvent) -> bytes:
    payload = hashed_fields(event)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


def audit_record(
    *,
    actor,
    action: str,
    obj,
    deployment=None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEvent:
    """Append an event; call it inside the transaction that makes the change."""
    if not connection.in_atomic_block:
        # Outside a transaction the chain lock is released at once and two writers can
        # read the same head: the chain would fork. That is a bug in the caller.
        raise RuntimeError(f"audit_record({action!r}) outside a transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
    # SQLite's IMMEDIATE transactions already serialize writers.
    head = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    via = current_via.get()
    if via:
        after = {**(after or {}), "via": via}
    event = AuditEvent(
        created_at=timezone.now(),
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_type=obj._meta.label_lower if hasattr(obj, "_meta") else str(type(obj).__name__),
        object_id=str(obj.pk),
        deployment=deployment,
        before=before,
        after=after,
        reason=reason,
        ip=current_ip.get(),
        prev_hash=head or GENESIS,
    )
    event.hash = event_hash(event)
    event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class ChainReport:
    events: int
    head: str
    problem: str

    @property
    def ok(self) -> bool:
        return not self.problem


def verify_chain() -> ChainReport:
    """Walk the chain in order; name the first event edited, removed or inserted out of order."""
    previous_hash, previous = GENESIS, None
    count = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        count += 1
        where = f"event #{event.pk} ({event.action} {event.object_type}:{event.object_id})"
        if event.prev_hash != previous_hash:
            after = f"event #{previous.pk}" if previous else "the start of the chain"
            return ChainReport(
                count,
                previous_hash,
                f"{where} does not follow {after}: an event between them was removed, or "
                "this one was inserted out of order",
            )
        if event_hash(event) != event.hash:
            return ChainReport(count, previous_hash, f"{where} was edited after it was written")
        if previous is not None and event.created_at < previous.created_at:
            return ChainReport(
                count, previous_hash, f"{where} is dated before event #{previous.pk}"
            )
        previous_hash, previous = event.hash, event
    return ChainReport(count, previous_hash, "")
