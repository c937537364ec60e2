"""The append-only, hash-chained audit trail: record an event on its chain, checkpoint the
heads of every chain.

Each deployment has its own chain, and changes that belong to no deployment (teams,
templates, tokens) go on the installation's chain. An append is serialized by its chain's
head row, taken after the deployment's row that every write to a deployment takes first
(the lock order of docs/architecture.md), so work on different deployments never waits on
each other. A periodic checkpoint commits the head of every chain into one Merkle root
(`audit_checkpoint`), so the installation as a whole still has one value to anchor.
"""

import functools
import hashlib
import json
from contextvars import ContextVar

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from readiness.audit import merkle
from readiness.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from readiness.sql import column, insert

GENESIS = "0" * 64
INSTALLATION_CHAIN = "installation"
# The single chain every event was on before chains were split, frozen since.
LEGACY_CHAIN = "legacy"
# The client address of the request being served, set by AuditRequestMiddleware, so that
# services record it without every signature carrying the request.
current_ip: ContextVar[str | None] = ContextVar("current_ip", default=None)
# How the actor acted when not through the pages, e.g. "API token “CI” (rdy_abcd1234…)":
# written into the event's `after` so the chain itself says which credential was used.
current_via: ContextVar[str] = ContextVar("current_via", default="")
# Any constant: serializes checkpoints across PostgreSQL connections.
_CHECKPOINT_LOCK = 7_230_515


def chain_of(deployment_id: int | None) -> str:
    return f"deployment:{deployment_id}" if deployment_id is not None else INSTALLATION_CHAIN


def deployment_of(chain: str) -> int | None:
    """The deployment whose chain this is; None for the installation's (and the legacy)."""
    return int(chain.split(":", 1)[1]) if chain.startswith("deployment:") else None


def chain_order(chain: str) -> tuple:
    """Leaves sort by this in a checkpoint: legacy, installation, deployments by id."""
    if chain == LEGACY_CHAIN:
        return (0, 0)
    if chain == INSTALLATION_CHAIN:
        return (1, 0)
    return (2, deployment_of(chain))


def hashed_fields(event: AuditEvent) -> dict:
    """The fields an event's hash covers, as hashed (exports hand them to auditors).

    Events on the per-deployment chains also cover their position (`seq`); legacy events
    keep the form they were hashed in.
    """
    fields = {
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
    if event.seq is not None:
        fields["seq"] = event.seq
    return fields


def _canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(hashed_fields(event))).hexdigest()


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
    """Append an event to its chain; call it inside the transaction that makes the change."""
    if not connection.in_atomic_block:
        # Outside a transaction the chain's lock is released at once and two writers can
        # read the same head: the chain would fork. That is a bug in the caller.
        raise RuntimeError(f"audit_record({action!r}) outside a transaction")
    deployment_id = deployment.pk if deployment is not None else None
    chain = chain_of(deployment_id)
    # The chain's head row, locked: appends to one chain go one at a time, each after the
    # head the one before left. A writer to a deployment holds the deployment's row already
    # (the lock order), so this lock is the last it takes.
    head = _lock_head(chain)
    if head is None:  # the chain's first event: make its (empty) head, once
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(chain=chain, seq=0, hash=GENESIS)], ignore_conflicts=True
        )
        found = AuditChainHead.objects.select_for_update().get(chain=chain)
        head = (found.pk, found.seq, found.hash)
    head_id, seq, prev_hash = head[0], head[1] + 1, head[2]
    via = current_via.get()
    if via:
        after = {**(after or {}), "via": via}
    event = AuditEvent(
        created_at=timezone.now(),
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_type=obj._meta.label_lower if hasattr(obj, "_meta") else str(type(obj).__name__),
        object_id=str(obj.pk),
        deployment_id=deployment_id,
        before=before,
        after=after,
        reason=reason,
        ip=current_ip.get(),
        seq=seq,
        prev_hash=prev_hash,
    )
    event.hash = event_hash(event)
    # The unique (chain, seq) makes a fork impossible even past the lock: a second writer
    # after the same head fails here, and its transaction with it.
    insert(event, key=True)  # save(force_insert=True)'s INSERT, without its compile
    with connection.cursor() as cursor:
        cursor.execute(_head_sql()[1], [seq, event.hash, head_id])
    return event


@functools.cache
def _head_sql() -> tuple[str, str]:
    """The head's locked read and its update, the statements
    `AuditChainHead.objects.select_for_update().filter(chain=…).first()` and
    `.filter(pk=…).update(seq=…, hash=…)` run, in SQL: built through the ORM they took more
    CPU to compile than to run, on every audited change."""
    quote = connection.ops.quote_name
    meta = AuditChainHead._meta
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    seq, hash_ = column(meta, "seq"), column(meta, "hash")
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (
        f"SELECT {pk}, {seq}, {hash_} FROM {table} WHERE {column(meta, 'chain')} = %s"
        f" ORDER BY {pk} LIMIT 1{lock}",
        f"UPDATE {table} SET {seq} = %s, {hash_} = %s WHERE {pk} = %s",
    )


def _lock_head(chain: str) -> tuple[int, int, str] | None:
    """(id, seq, hash) of the chain's head, its row locked; None before its first event."""
    with connection.cursor() as cursor:
        cursor.execute(_head_sql()[0], [chain])
        return cursor.fetchone()


# Checkpoints.


def leaf_data(chain: str, seq: int, head: str) -> bytes:
    """A chain head as a leaf of the checkpoint's Merkle tree."""
    return f"{chain} {seq} {head}".encode()


def heads_root(heads: dict[str, tuple[int, str]]) -> str:
    """The RFC 6962 root over every chain's (seq, head), in `chain_order`."""
    chains = sorted(heads, key=chain_order)
    return merkle.root([leaf_data(chain, *heads[chain]) for chain in chains])


def checkpoint_fields(checkpoint: AuditCheckpoint) -> dict:
    return {
        "prev_hash": checkpoint.prev_hash,
        "created_at": checkpoint.created_at.isoformat(),
        "tree_size": checkpoint.tree_size,
        "root": checkpoint.root,
        "leaves": checkpoint.leaves,
        "events": checkpoint.events,
    }


def checkpoint_hash(checkpoint: AuditCheckpoint) -> str:
    return hashlib.sha256(_canonical(checkpoint_fields(checkpoint))).hexdigest()


ANCHOR_LOG_DIR = "audit-anchors"


def anchor_log_name(checkpoint: AuditCheckpoint) -> str:
    return f"{ANCHOR_LOG_DIR}/checkpoint-{checkpoint.pk:08d}.json"


def anchor_log_content(checkpoint: AuditCheckpoint) -> bytes:
    """A checkpoint as the anchor log keeps it: its hashed fields and its hash."""
    return _canonical(
        {**checkpoint_fields(checkpoint), "id": checkpoint.pk, "hash": checkpoint.hash}
    )


def _anchor_log_save(checkpoint: AuditCheckpoint) -> None:
    name = anchor_log_name(checkpoint)
    if default_storage.exists(name):
        # Left by a checkpoint whose transaction never committed (its id came back):
        # this one is the checkpoint of that id.
        default_storage.delete(name)
    default_storage.save(name, ContentFile(anchor_log_content(checkpoint)))


def anchor_log_write(*, recent: int = 50) -> int:
    """Copy the newest checkpoints the anchor log lacks into storage; returns how many.

    The anchor log keeps every checkpoint outside the database: with MEDIA on write-once
    storage (S3 with Object Lock, say), a rewrite of the database's checkpoints no longer
    matches it, and `verify_audit` says so."""
    written = 0
    for checkpoint in AuditCheckpoint.objects.order_by("-id")[:recent]:
        if not default_storage.exists(anchor_log_name(checkpoint)):
            _anchor_log_save(checkpoint)
            written += 1
    return written


@transaction.atomic
def audit_checkpoint() -> AuditCheckpoint | None:
    """Commit every chain's current head into a new checkpoint; None when no chain moved
    since the last one. Safe to run concurrently and at any time (the beat schedule runs it
    every AUDIT_CHECKPOINT_INTERVAL seconds)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHECKPOINT_LOCK])
    rows = list(AuditChainHead.objects.filter(seq__gt=0))
    changed = [row for row in rows if row.seq != row.checkpointed_seq]
    previous = AuditCheckpoint.objects.order_by("-id").first()
    if not changed and (previous is not None or not rows):
        return None
    heads = {row.chain: (row.seq, row.hash) for row in rows}
    checkpoint = AuditCheckpoint(
        created_at=timezone.now(),
        tree_size=len(heads),
        root=heads_root(heads),
        leaves=[
            [row.chain, row.seq, row.hash]
            for row in sorted(changed, key=lambda row: chain_order(row.chain))
        ],
        events=sum(seq for seq, _ in heads.values()),
        prev_hash=previous.hash if previous else GENESIS,
    )
    checkpoint.hash = checkpoint_hash(checkpoint)
    checkpoint.save(force_insert=True)
    # The seq read above, not the row's seq now: an append that commits meanwhile stays
    # "changed" for the next checkpoint.
    for row in changed:
        row.checkpointed_seq, row.checkpointed_hash = row.seq, row.hash
    AuditChainHead.objects.bulk_update(
        changed, ["checkpointed_seq", "checkpointed_hash"], batch_size=500
    )
    _anchor_log_save(checkpoint)
    return checkpoint
