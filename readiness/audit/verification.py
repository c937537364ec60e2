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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.core.files.storage import default_storage
from django.db.models import F, Q
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
    deployment_of,
    event_hash,
    heads_root,
)

Head = tuple[int, str]  # (seq, hash) a checkpoint committed
Points = dict[int, tuple[str, str]]  # position → (hash, who committed it)


@dataclass(frozen=True)
class ChainReport:
    chain: str
    events: int
    head: str  # the hash of the last event that verified
    problem: str = ""
    checkpointed: int | None = None  # the position a checkpoint committed, when one has
    # Walked from here on: the events up to it were found intact by the full verification
    # of `verified_at` (0: every event was walked now).
    verified_from: int = 0
    verified_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def walked(self) -> int:
        return self.events - self.verified_from


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
    after: AuditEvent | None = None,
) -> ChainReport:
    """Walk one chain; `points` are the (hash, who vouches for it) that checkpoints and
    records committed at some positions, `length` what its head row says. `after`: the
    event the walk starts after (the chain's start when None)."""
    points = points or {}
    previous_hash, previous = (after.hash, after) if after else (GENESIS, None)
    count = after.seq if after else 0
    committed_seq = max(points) if points else None
    vouched = count  # the last position a committed point (or `after`) still vouches for

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
            before = f"event #{previous.pk}" if previous else "the start of the chain"
            return broken(
                f"{where} does not follow {before}: an event between them was removed, or "
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


def verify_chain(deployment_id: int | None = None, *, full: bool = False) -> ChainReport:
    """One deployment's chain (or the installation's, for None), against the head the
    latest checkpoint committed for it: what the audit page shows.

    Unless `full`, the walk starts at the position the latest full verification found intact
    (`AuditChainHead.verified_seq`), once the event there is shown to be still the one it
    verified, so the page costs the same for a chain of a thousand events as for a million;
    an event rewritten before that position, its hash left as it was, waits for the next full
    verification (hourly, AUDIT_VERIFY_INTERVAL), and the page says when that last ran.

    The deployment's events from before chains were split are on the legacy chain: a full
    walk checks each against its own hash; the legacy chain's order is checked by `verify_all`.
    """
    chain = chain_of(deployment_id)
    # The head row's copies of the committed and verified heads are only shortcuts:
    # `verify_all` checks the former against the checkpoints and walks every event.
    row = AuditChainHead.objects.filter(chain=chain).first()
    points = (
        {row.checkpointed_seq: (row.checkpointed_hash, "the latest checkpoint")}
        if row and row.checkpointed_seq
        else None
    )
    length = row.seq if row else None
    if not full and row and row.verified_seq:
        return _verify_from(row, points=points, length=length)
    # One read: the legacy events (no seq) first, then the chain in order.
    events = (
        AuditEvent.objects.filter(deployment_id=deployment_id)
        .order_by(F("seq").asc(nulls_first=True), "id")
        .iterator(chunk_size=2000)
    )

    def chained() -> Iterator[AuditEvent]:
        for event in events:
            if event.seq is None:
                if event_hash(event) != event.hash:
                    raise _LegacyEdited(event)
                continue
            yield event

    try:
        return _walk(chain, chained(), points=points, length=length)
    except _LegacyEdited as edited:
        return ChainReport(
            chain, 0, GENESIS, f"{_where(edited.event)} was edited after it was written"
        )


def _verify_from(row: AuditChainHead, *, points: Points | None, length: int | None) -> ChainReport:
    verified = row.verified_seq
    deployment_id = deployment_of(row.chain)
    # One read: the verified event, a committed head before it, and every event after it.
    positions = Q(seq__gte=verified)
    if points and min(points) < verified:
        positions |= Q(seq=min(points))
    events = iter(
        AuditEvent.objects.filter(positions, deployment_id=deployment_id, seq__isnull=False)
        .order_by("seq")
        .iterator(chunk_size=2000)
    )
    earlier = {seq: point for seq, point in (points or {}).items() if seq < verified}
    start = next(events, None)
    while start is not None and start.seq < verified:
        expected, source = earlier[start.seq]
        if start.hash != expected or event_hash(start) != start.hash:
            return ChainReport(
                row.chain,
                0,
                GENESIS,
                f"{_where(start)} is not the event {source} committed at position "
                f"{start.seq}: the chain was rewritten before it",
            )
        start = next(events, None)
    if start is None or start.seq != verified or start.hash != row.verified_hash:
        return ChainReport(
            row.chain,
            0,
            GENESIS,
            f"position {verified} no longer holds the event the full verification of "
            f"{row.verified_at:%Y-%m-%d %H:%M} UTC found there: the chain was rewritten "
            "or cut before it",
        )
    if event_hash(start) != start.hash:
        problem = f"{_where(start)} was edited after it was written"
        return ChainReport(row.chain, 0, GENESIS, problem)
    later = {seq: point for seq, point in (points or {}).items() if seq > verified}
    report = _walk(row.chain, events, points=later, length=length, after=start)
    return replace(
        report,
        checkpointed=max(points) if points else None,
        verified_from=verified,
        verified_at=row.verified_at,
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
    """Verify every chain and checkpoint (`verify_all`) and keep the outcome, and where each
    chain was found intact for the audit pages."""
    started = time.monotonic()
    report = verify_all()
    verification = verification_record(report, source=source, seconds=time.monotonic() - started)
    remember_verified(report, at=verification.checked_at)
    return verification


def remember_verified(report: AuditReport, *, at: datetime) -> None:
    """Each intact chain's verified head, for `verify_chain` to start from; a broken chain's
    is cleared, and all of them when the checkpoints themselves are in doubt."""
    intact = {c.chain: c for c in report.chains if c.ok and c.events and c.chain != LEGACY_CHAIN}
    chains_broken = sum(1 for c in report.chains if not c.ok)
    trusted = len(report.problems) == chains_broken
    rows = list(AuditChainHead.objects.only("id", "chain"))
    for row in rows:
        chain = intact.get(row.chain) if trusted else None
        row.verified_seq = chain.events if chain else None
        row.verified_hash = chain.head if chain else ""
        row.verified_at = at if chain else None
    AuditChainHead.objects.bulk_update(
        rows, ["verified_seq", "verified_hash", "verified_at"], batch_size=500
    )
