"""Verify the audit trail: each chain, the legacy chain, and the checkpoints over them.

A chain is intact when its events follow each other from position 1 with no gap, each
stores the hash of the one before, each hash is its content's, and time never runs
backwards. The checkpoints add what a chain alone cannot show: a chain rewritten from some
event on (every later hash recomputed), or cut short, no longer passes through the head a
checkpoint committed — each hash covers the one before, so a committed head still in
place vouches for every event before it, and the first committed head that no longer
matches bounds where a rewrite began. Records print their chain's head too: those are
checked the same way (`anchors`). Replaying the heads from the first checkpoint on must
give each checkpoint's root.
"""

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.files.storage import default_storage
from django.db.models import F
from django.utils import timezone

from readiness.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent, AuditVerification
from readiness.audit.services import (
    GENESIS,
    LEGACY_CHAIN,
    anchor_log_content,
    anchor_log_name,
    chain_of,
    chain_order,
    checkpoint_hash,
    event_hash,
    heads_root,
)

Head = tuple[int, str]  # (seq, hash) a checkpoint committed


@dataclass(frozen=True)
class ChainReport:
    chain: str
    events: int
    head: str  # the hash of the last event that verified
    problem: str = ""
    checkpointed: int | None = None  # the position a checkpoint committed, when one has

    @property
    def ok(self) -> bool:
        return not self.problem


@dataclass
class AuditReport:
    """Every chain and every checkpoint."""

    chains: list[ChainReport] = field(default_factory=list)
    checkpoints: int = 0
    root: str = ""  # the newest checkpoint's root
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def events(self) -> int:
        return sum(chain.events for chain in self.chains)

    @property
    def problem(self) -> str:
        return self.problems[0] if self.problems else ""


def _where(event: AuditEvent) -> str:
    return f"event #{event.pk} ({event.action} {event.object_type}:{event.object_id})"


def _walk(
    chain: str,
    events: Iterable[AuditEvent],
    *,
    points: dict[int, tuple[str, str]] | None = None,
    length: int | None = None,
    seq_chain: bool = True,
) -> ChainReport:
    """Walk one chain; `points` are the (hash, who vouches for it) that checkpoints and
    records committed at some positions, `length` what its head row says."""
    points = points or {}
    previous_hash, previous = GENESIS, None
    count = 0
    committed_seq = max(points) if points else None
    vouched = 0  # the last position a committed point still vouches for

    def broken(problem: str) -> ChainReport:
        return ChainReport(chain, count - 1, previous_hash, problem, committed_seq)

    for event in events:
        count += 1
        where = _where(event)
        if seq_chain and event.seq != count:
            return broken(
                f"{where} is at position {event.seq} of its chain where {count} was expected: "
                "an event before it was removed"
            )
        if event.prev_hash != previous_hash:
            after = f"event #{previous.pk}" if previous else "the start of the chain"
            return broken(
                f"{where} does not follow {after}: an event between them was removed, or "
                "this one was inserted out of order"
            )
        if event_hash(event) != event.hash:
            return broken(f"{where} was edited after it was written")
        if previous is not None and event.created_at < previous.created_at:
            return broken(f"{where} is dated before event #{previous.pk}")
        if count in points:
            expected, source = points[count]
            if event.hash != expected:
                return broken(
                    f"{where} is not the event {source} committed at position {count} (hash "
                    f"{expected}): the chain was rewritten from position {vouched + 1} (the "
                    f"first after the last one still vouched for) up to this event"
                )
            vouched = count
        previous_hash, previous = event.hash, event
    last = f"#{previous.pk}" if previous else "the start of the chain"
    if points and count < committed_seq:
        expected, source = points[committed_seq]
        return ChainReport(
            chain,
            count,
            previous_hash,
            f"{source} committed {committed_seq} events on this chain, ending in {expected}, "
            f"but it ends at event {last}, position {count}: the events after it were removed",
            committed_seq,
        )
    if length is not None and count != length:
        return ChainReport(
            chain,
            count,
            previous_hash,
            f"the chain's head was written at position {length}, but the chain ends at event "
            f"{last}, position {count}: events at its end were "
            + ("removed" if count < length else "added past the application"),
            committed_seq,
        )
    return ChainReport(chain, count, previous_hash, "", committed_seq)


def verify_chain(deployment_id: int | None = None) -> ChainReport:
    """One deployment's chain (or the installation's, for None), against the head the
    latest checkpoint committed for it: what the audit page shows, in time proportional to
    the deployment's own events.

    The deployment's events from before chains were split are on the legacy chain: here each
    is checked against its own hash; the legacy chain's order is checked by `verify_all`.
    """
    chain = chain_of(deployment_id)
    # One read: the legacy events (no seq) first, then the chain in order.
    events = (
        AuditEvent.objects.filter(deployment_id=deployment_id)
        .order_by(F("seq").asc(nulls_first=True), "id")
        .iterator(chunk_size=2000)
    )
    # The head row's copy of the committed head is only a shortcut: `verify_all` checks it
    # against the checkpoints themselves.
    row = AuditChainHead.objects.filter(chain=chain).first()
    points = (
        {row.checkpointed_seq: (row.checkpointed_hash, "the latest checkpoint")}
        if row and row.checkpointed_seq
        else None
    )

    def chained() -> Iterator[AuditEvent]:
        for event in events:
            if event.seq is None:
                if event_hash(event) != event.hash:
                    raise _LegacyEdited(event)
                continue
            yield event

    try:
        return _walk(chain, chained(), points=points, length=row.seq if row else None)
    except _LegacyEdited as edited:
        return ChainReport(
            chain, 0, GENESIS, f"{_where(edited.event)} was edited after it was written"
        )


class _LegacyEdited(Exception):
    def __init__(self, event: AuditEvent):
        self.event = event


def _grouped(events: Iterator[AuditEvent]) -> Iterator[tuple[str, list[AuditEvent]]]:
    current, batch = None, []
    for event in events:
        chain = chain_of(event.deployment_id)
        if chain != current and batch:
            yield current, batch
            batch = []
        current = chain
        batch.append(event)
    if batch:
        yield current, batch


Points = dict[int, tuple[str, str]]  # position → (hash, who committed it)


def verify_all(anchors: Iterable[tuple[str, int, str, str]] = ()) -> AuditReport:
    """The checkpoints, then the legacy chain and every deployment's and the installation's
    chain against every head the checkpoints committed for it and every `anchors` entry
    (chain, position, hash, who printed it — a record's printed head, say)."""
    report = AuditReport()
    points = _replay_checkpoints(report)
    for chain, seq, head, source in anchors:
        known = points.setdefault(chain, {}).get(seq)
        if known is None or known[0] == head:
            points[chain][seq] = (head, source)
        else:
            report.problems.append(
                f"{chain}: {source} says position {seq} is {head}, {known[1]} says {known[0]}"
            )
    lengths = dict(AuditChainHead.objects.filter(seq__gt=0).values_list("chain", "seq"))
    legacy = AuditEvent.objects.filter(seq__isnull=True).order_by("id")
    if legacy.exists() or LEGACY_CHAIN in points:
        report.chains.append(
            _walk(
                LEGACY_CHAIN,
                legacy.iterator(chunk_size=2000),
                points=points.pop(LEGACY_CHAIN, None),
                length=lengths.pop(LEGACY_CHAIN, None),
                seq_chain=False,
            )
        )
    events = (
        AuditEvent.objects.filter(seq__isnull=False)
        .order_by("deployment_id", "seq")
        .iterator(chunk_size=5000)
    )
    for chain, batch in _grouped(events):
        report.chains.append(
            _walk(chain, batch, points=points.pop(chain, None), length=lengths.pop(chain, None))
        )
    # Chains a checkpoint, a record or a head row knows that have no event left at all.
    for chain in sorted(points.keys() | lengths.keys(), key=chain_order):
        report.chains.append(_walk(chain, [], points=points.get(chain), length=lengths.get(chain)))
    report.problems.extend(f"{c.chain}: {c.problem}" for c in report.chains if not c.ok)
    return report


def _against_anchor_log(checkpoint: AuditCheckpoint, name: str) -> list[str]:
    path = anchor_log_name(checkpoint)
    try:
        with default_storage.open(path, "rb") as stored:
            kept = stored.read()
    except (FileNotFoundError, OSError):
        return [f"{name} is missing from the anchor log ({path} in storage)"]
    if kept != anchor_log_content(checkpoint):
        return [f"{name} differs from its copy in the anchor log ({path}): one was rewritten"]
    return []


def _replay_checkpoints(report: AuditReport) -> dict[str, Points]:
    """Check each checkpoint's own chain and root; return every head any checkpoint
    committed, by chain and position. The head rows must agree with the newest (they are
    the audit page's shortcut)."""
    heads: dict[str, Head] = {}
    points: dict[str, Points] = {}
    previous_hash = GENESIS
    for checkpoint in AuditCheckpoint.objects.order_by("id").iterator(chunk_size=500):
        report.checkpoints += 1
        name = f"checkpoint #{checkpoint.pk}"
        if checkpoint.prev_hash != previous_hash:
            report.problems.append(f"{name} does not follow the checkpoint before it")
        if checkpoint_hash(checkpoint) != checkpoint.hash:
            report.problems.append(f"{name} was edited after it was written")
        for chain, seq, head in checkpoint.leaves:
            if chain in heads and seq < heads[chain][0]:
                report.problems.append(
                    f"{name} takes {chain} back from position {heads[chain][0]} to {seq}"
                )
            heads[chain] = (seq, head)
            points.setdefault(chain, {})[seq] = (head, name)
        if len(heads) != checkpoint.tree_size or heads_root(heads) != checkpoint.root:
            report.problems.append(f"{name}'s root is not the root of the heads it commits")
        previous_hash, report.root = checkpoint.hash, checkpoint.root
        report.problems.extend(_against_anchor_log(checkpoint, name))
    for row in AuditChainHead.objects.exclude(checkpointed_seq=None):
        if heads.get(row.chain) != (row.checkpointed_seq, row.checkpointed_hash):
            report.problems.append(
                f"{row.chain}: the head kept for the audit page is not the one the "
                "checkpoints committed"
            )
    return points


# Verification outcomes kept (one per run); the newest is what /metrics reports.
KEEP_VERIFICATIONS = timedelta(days=90)


def verification_record(report: AuditReport, *, source: str, seconds: float) -> AuditVerification:
    """Keep the outcome of a verification just run, and forget those past KEEP_VERIFICATIONS."""
    now = timezone.now()
    verification = AuditVerification.objects.create(
        checked_at=now,
        source=source,
        ok=report.ok,
        events=report.events,
        chains=len(report.chains),
        checkpoints=report.checkpoints,
        duration_seconds=seconds,
        problem=report.problem[:2000],
    )
    AuditVerification.objects.filter(checked_at__lt=now - KEEP_VERIFICATIONS).delete()
    return verification


def audit_verify(*, source: str = "schedule") -> AuditVerification:
    """Verify every chain and checkpoint (`verify_all`) and keep the outcome."""
    started = time.monotonic()
    report = verify_all()
    return verification_record(report, source=source, seconds=time.monotonic() - started)
