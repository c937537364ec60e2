"""Everything the signed PDF record shows, read once into frozen values.

`record_snapshot()` is a selector: it only reads, in a fixed number of queries whatever the
number of items, sign-offs or probe results, and returns plain frozen dataclasses so that the
template never touches the ORM (a lazy query there would both cost one query per row and
read data newer than the snapshot).

`state_digest` is the SHA-256 of a canonical JSON of what the record holds. It leaves out
when the record was generated, its id and the audit trail (writing a record appends an audit
event itself), so two snapshots of unchanged data have the same digest: that is what lets the
record task recognise a state it already stored.

Each item says how its status was reached (`ItemLine.decision`) and what the bound probe run
says of it (`ItemLine.verification`), apart: a person can decide against a probe, and an
item a probe could cover may have no result in the run. Probe runs are named by their number
within the deployment (1st, 2nd… run), never by the server-wide id. A record names the one
it supersedes, and a renewed signature the one it replaces, with why (from the audit trail).
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from readiness.audit.models import AuditCheckpoint, AuditEvent
from readiness.audit.services import chain_of
from readiness.checklists.models import (
    ChecklistItem,
    DecisionSource,
    Deployment,
    DeploymentSection,
    DeploymentState,
    ItemChange,
    ItemStatus,
)
from readiness.evidence.selectors import latest_verdicts
from readiness.people import display_name
from readiness.probe_runs.models import ProbeResult, ProbeRun
from readiness.probe_runs.selectors import RESULT_ORDER, finished_runs
from readiness.probe_runs.verdicts import item_verdict
from readiness.probes.base import (
    ATTENTION_STATUSES,
    STATUS_TITLES,
    Status,
    is_manual,
    probes_by_item,
    supporting_keys,
)
from signoff.records.models import SignedRecord
from signoff.signatures.selectors import (
    RoleStanding,
    active_waivers,
    all_approving,
    deployment_identity,
    digest_of,
    standings,
)

# 2: items say how their status was reached and what the bound run says of them; the probe
# run is numbered within its deployment; the superseded record and replaced signatures.
# 3: the AWS accounts the deployment spans, and each probe line's account.
SNAPSHOT_FORMAT = 3
# A probe may judge thousands of resources; the record lists the first ones of each result
# and says how many more the probe run holds, so one noisy account cannot make it 500 pages.
MAX_FINDINGS_PER_RESULT = 25
FAILING_FINDINGS = ATTENTION_STATUSES
PROBE_STATUS_WORDS = STATUS_TITLES
SIGNATURE_STATUS_WORDS = {"missing": "Not signed", "revoked": "Revoked", "stale": "Stale"}


@dataclass(frozen=True)
class Finding:
    """One resource a probe judged failing, warning or unreadable."""

    resource: str
    status: str
    reason: str

    @property
    def status_label(self) -> str:
        return PROBE_STATUS_WORDS.get(self.status, self.status)


@dataclass(frozen=True)
class ProbeLine:
    """The latest finished run's result of one probe in one account and region for one item."""

    probe_key: str
    title: str
    account_id: str
    region: str
    severity: str
    status: str
    summary: str
    findings: tuple[Finding, ...]
    more_findings: int
    remediation: str

    @property
    def where(self) -> str:
        return f"{self.account_id} {self.region}" if self.account_id else self.region

    @property
    def status_label(self) -> str:
        return PROBE_STATUS_WORDS.get(self.status, self.status)

    @property
    def failing(self) -> bool:
        return self.status in FAILING_FINDINGS


@dataclass(frozen=True)
class WaiverLine:
    reason: str
    granted_by: str
    granted_at: datetime
    expires_at: datetime


# How an item's status was reached (ItemLine.decision).
DECISION_PROBE = "probe"
DECISION_PERSON = "person"
DECISION_OVERRIDE = "override"
DECISION_EVIDENCE = "evidence"
DECISION_NONE = ""
# What the bound probe run says of an item (ItemLine.verification).
VERIFIED = "probe-verified"
PROBE_FAILED = "probe-failed"
PROBE_INCONCLUSIVE = "probe-inconclusive"
NO_PROBE_RESULT = "no-probe-result"
MANUAL = "manual"
VERIFICATION_WORDS = {
    VERIFIED: "probe-verified",
    PROBE_FAILED: "probe failed",
    PROBE_INCONCLUSIVE: "probe inconclusive",
    NO_PROBE_RESULT: "no probe result",
    MANUAL: "manual check",
}
PROPOSED_WORDS = {ItemStatus.DONE: "pass", ItemStatus.FAILED: "fail"}


@dataclass(frozen=True)
class ItemLine:
    number: str
    title: str
    description: str
    qualifier: str
    status: str
    status_label: str
    owner_role: str
    updated_by: str
    updated_at: datetime | None
    note: str
    evidence_url: str
    na_reason: str
    status_reason: str
    waiver: WaiverLine | None
    # VERIFIED only when the bound run's verifying results for the item all pass (or do not
    # apply, one passing at least); MANUAL when no verifying probe covers it at all.
    verification: str
    probes: tuple[ProbeLine, ...]
    # The newest CI evidence on the item, in one line: file, hash, verdict, conflict.
    ci_evidence: str = ""
    # DECISION_*: a probe run, a person, a person against the bound run's verdict, CI
    # evidence, or nobody yet.
    decision: str = DECISION_NONE
    # The person who set the status (DECISION_PERSON/OVERRIDE), and when the item last changed.
    decided_by: str = ""
    # The deployment's own number of the probe run that set the status (DECISION_PROBE), None
    # where the history does not say which run it was.
    decided_by_run: int | None = None
    # The bound run's number, and what its verifying results say of the item: the worst
    # status among them ("fail", "error", "warn", "pass", "not_applicable"; "" without any),
    # how many there are and how many fail.
    bound_run: int | None = None
    probe_verdict: str = ""
    probe_results: int = 0
    probe_failures: int = 0

    @property
    def manual(self) -> bool:
        return self.verification == MANUAL

    @property
    def verification_label(self) -> str:
        return VERIFICATION_WORDS.get(self.verification, self.verification)

    @property
    def overridden(self) -> bool:
        return self.decision == DECISION_OVERRIDE

    @property
    def probe_verdict_label(self) -> str:
        return PROBE_STATUS_WORDS.get(self.probe_verdict, self.probe_verdict)

    @property
    def decided_result(self) -> str:
        """What the deciding probe run found, in the word its status stands for."""
        return PROPOSED_WORDS.get(self.status, self.status_label.lower())

    @property
    def attention(self) -> tuple[ProbeLine, ...]:
        """Results that failed, warned or could not read: shown one by one, with findings."""
        return tuple(probe for probe in self.probes if probe.failing)

    @property
    def passed_summary(self) -> str:
        """The other results on one line: "key (account region, account region); …"."""
        regions: dict[str, list[str]] = {}
        for probe in self.probes:
            if not probe.failing:
                word = "" if probe.status == "pass" else f" {probe.status_label}"
                regions.setdefault(probe.probe_key, []).append(probe.where + word)
        return "; ".join(f"{key} ({', '.join(where)})" for key, where in regions.items())

    @property
    def passed_count(self) -> int:
        return sum(1 for probe in self.probes if not probe.failing)

    @property
    def remediations(self) -> tuple[tuple[str, str], ...]:
        """(probe key, remediation) once per failing probe, however many regions failed."""
        seen: dict[str, str] = {}
        for probe in self.attention:
            if probe.remediation:
                seen.setdefault(probe.probe_key, probe.remediation)
        return tuple(seen.items())


@dataclass(frozen=True)
class SectionLine:
    number: int
    title: str
    items: tuple[ItemLine, ...]
    total: int
    done: int
    not_applicable: int
    failed: int
    open: int
    probes_passed: int
    probes_failed: int
    # Warnings and errors: the probe could not say pass, but did not say fail either.
    probes_other: int
    # Items a person decided against the bound run's verdict, and items under a waiver.
    overridden: int = 0
    waived: int = 0

    @property
    def owner_role(self) -> str:
        """The role owning every item of the section, or "" when they differ."""
        owners = {line.owner_role for line in self.items}
        return owners.pop() if len(owners) == 1 else ""


@dataclass(frozen=True)
class Totals:
    total: int
    done: int
    not_applicable: int
    failed: int
    open: int
    probes_passed: int
    probes_failed: int
    probes_other: int
    overridden: int = 0
    waived: int = 0


@dataclass(frozen=True)
class AwsAccountLine:
    """One AWS account the deployment spans, with the regions its probes read."""

    account_id: str
    name: str
    regions: tuple[str, ...]


@dataclass(frozen=True)
class ProbeRunLine:
    id: int
    # 1 for the deployment's first probe run, 2 for its second…: `id` is the server's.
    number: int
    state: str
    regions: tuple[str, ...]
    accounts: tuple[str, ...]
    requested_by: str
    finished_at: datetime | None
    results: int


@dataclass(frozen=True)
class ReplacedSignature:
    """The signature of the same role that a renewed one (sequence > 1) replaces."""

    sequence: int
    printed_name: str
    signed_at: datetime
    meaning_label: str
    # "revoked", "stale" (what it approved changed) or "replaced" (signed again while it held,
    # as after a rejection).
    why: str
    # Who revoked it, when and why; or when it went stale.
    detail: str
    # What changed, as its `signoff.stale` audit event says.
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SupersessionReason:
    """One event between the superseded record and this one that explains the new record."""

    at: datetime
    text: str
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SupersededRecord:
    """The stored record of this deployment this one supersedes, and what happened since."""

    number: int
    record_id: str
    created_at: datetime
    state: str
    reasons: tuple[SupersessionReason, ...] = ()


@dataclass(frozen=True)
class SignatureRow:
    """One row of the Final Sign-Off table: a role and its signature, if any."""

    role: str
    # missing, revoked, stale, or the meaning of a fresh signature (approve, …, reject).
    status: str
    status_label: str
    fresh: bool
    signoff_id: int | None
    sequence: int | None
    printed_name: str
    signed_at: datetime | None
    meaning: str
    meaning_label: str
    comment: str
    digest: str
    revoked_by: str
    revoked_at: datetime | None
    revocation_reason: str
    replaces: ReplacedSignature | None = None

    @property
    def signed(self) -> bool:
        return self.signoff_id is not None and self.status != "revoked"

    @property
    def digest_prefix(self) -> str:
        return self.digest[:16]


@dataclass(frozen=True)
class PostCheckLine:
    label: str
    checked: bool
    checked_by: str
    checked_at: datetime | None
    note: str


@dataclass(frozen=True)
class AuditSummary:
    """The deployment's hash chain when the record was made.

    `chain_seq`/`chain_head` are the position and hash of the chain's newest event: an
    auditor can later ask `manage.py verify_audit` whether the chain still passes through
    it. `checkpoint_root` is the newest checkpoint's Merkle root over every chain's head.
    """

    deployment_events: int
    deployment_last_id: int | None
    deployment_last_hash: str
    chain: str
    chain_seq: int | None
    chain_head: str
    checkpoint_id: int | None
    checkpoint_root: str


@dataclass(frozen=True)
class RecordSnapshot:
    record_id: str
    generated_at: datetime
    deployment_id: int
    service: str
    environment: str
    version: str
    team: str
    owner: str
    template_name: str
    template_version: int
    planned_date: date | None
    deployed_at: datetime | None
    state: str
    state_label: str
    aws_accounts: tuple[AwsAccountLine, ...]
    has_deployment_date: bool
    sections: tuple[SectionLine, ...]
    totals: Totals
    probe_run: ProbeRunLine | None
    signatures: tuple[SignatureRow, ...]
    all_approved: bool
    post_checks: tuple[PostCheckLine, ...]
    audit: AuditSummary
    state_digest: str
    supersedes: SupersededRecord | None = None
    # The canonical JSON `state_digest` is the SHA-256 of, byte for byte: the record embeds
    # it (signoff.records.content) so a verifier reads the content from the signed file.
    canonical_json: bytes = b""

    @property
    def template_label(self) -> str:
        return f"{self.template_name} v{self.template_version}"

    @property
    def signoff_ids(self) -> tuple[int, ...]:
        """The sign-offs in force that the record shows (for linking a stored record)."""
        return tuple(row.signoff_id for row in self.signatures if row.signed)


def _name(user) -> str:
    if user is None:
        return ""
    return display_name(user)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment else None


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def _probe_line(result: ProbeResult) -> ProbeLine:
    failing = [
        entry
        for entry in result.findings or []
        if isinstance(entry, dict) and entry.get("status") in FAILING_FINDINGS
    ]
    shown = failing[:MAX_FINDINGS_PER_RESULT]
    return ProbeLine(
        probe_key=result.probe_key,
        title=result.title,
        account_id=result.account_id,
        region=result.region,
        severity=result.severity,
        status=result.status,
        summary=result.summary,
        findings=tuple(
            Finding(
                resource=str(entry.get("id") or entry.get("resource") or ""),
                status=str(entry.get("status")),
                reason=str(entry.get("reason") or ""),
            )
            for entry in shown
        ),
        more_findings=len(failing) - len(shown),
        remediation=result.remediation if result.status in FAILING_FINDINGS else "",
    )


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


def _replaced(previous, stale_events: dict[str, dict]) -> ReplacedSignature:
    """The signature `previous` as the one its role's next signature replaces, and why."""
    revocation = getattr(previous, "revoked", None)
    changes: tuple[str, ...] = ()
    if revocation is not None:
        why = "revoked"
        detail = (
            f"revoked by {_name(revocation.revoked_by)} {_when(_utc(revocation.revoked_at))}: "
            f"{revocation.reason}"
        )
    elif str(previous.pk) in stale_events:
        event = stale_events[str(previous.pk)]
        why = "stale"
        detail = f"went stale {_when(_utc(event['created_at']))}"
        changes = tuple(str(change) for change in (event["after"] or {}).get("changes") or ())
    else:
        # Neither revoked nor stale: a rejection (or an approval with conditions) that its
        # role signed again while it still held.
        why = "replaced"
        detail = f"signed again while it held ({previous.get_meaning_display()})"
    return ReplacedSignature(
        sequence=previous.sequence,
        printed_name=previous.printed_name,
        signed_at=_utc(previous.signed_at),
        meaning_label=previous.get_meaning_display(),
        why=why,
        detail=detail,
        changes=changes,
    )


def _signature_row(standing: RoleStanding, stale_events: dict[str, dict]) -> SignatureRow:
    current, active = standing.current, standing.active
    shown = active or current
    revocation = getattr(current, "revoked", None) if active is None and current else None
    earlier = standing.signoffs.index(shown) if shown is not None else 0
    return SignatureRow(
        role=standing.role.name,
        status=standing.status,
        status_label=SIGNATURE_STATUS_WORDS.get(standing.status)
        or shown.get_meaning_display().capitalize(),
        fresh=standing.fresh,
        signoff_id=shown.pk if shown else None,
        sequence=shown.sequence if shown else None,
        printed_name=shown.printed_name if shown else "",
        signed_at=_utc(shown.signed_at) if shown else None,
        meaning=shown.meaning if shown else "",
        meaning_label=shown.get_meaning_display() if shown else "",
        comment=shown.comment if shown else "",
        digest=shown.digest if shown else "",
        revoked_by=_name(revocation.revoked_by) if revocation else "",
        revoked_at=_utc(revocation.revoked_at) if revocation else None,
        revocation_reason=revocation.reason if revocation else "",
        replaces=_replaced(standing.signoffs[earlier - 1], stale_events) if earlier else None,
    )


def _evidence_line(verdict) -> str:
    if verdict is None:
        return ""
    evidence = verdict.evidence
    line = (
        f"{evidence.filename} ({evidence.get_kind_display()}, sha256 {evidence.sha256[:16]}, "
        f"uploaded by {_name(evidence.uploaded_by)} {evidence.uploaded_at:%Y-%m-%d %H:%M} UTC): "
        f"{'pass' if verdict.passed else 'fail'} — {verdict.summary}"
    )
    if verdict.conflict:
        line += f" {verdict.conflict}"
    return line


@dataclass(frozen=True)
class BoundVerdict:
    """What the bound run's verifying results (supporting evidence left out) say of one
    item: the status they propose (item_verdict: None leaves it to people), the worst
    status among them, how many there are and how many fail."""

    proposed: str | None = None
    worst: str = ""
    results: int = 0
    failures: int = 0


def _bound_verdict(results: list[ProbeResult], supporting: set[str]) -> BoundVerdict:
    # `results` come worst first (RESULT_ORDER), so the first verifying one is the worst.
    statuses = [result.status for result in results if result.probe_key not in supporting]
    if not statuses:
        return BoundVerdict()
    return BoundVerdict(
        proposed=item_verdict(statuses),
        worst=statuses[0],
        results=len(statuses),
        failures=statuses.count(Status.FAIL),
    )


def _verification(covered: bool, verdict: BoundVerdict) -> str:
    if not verdict.results:
        return NO_PROBE_RESULT if covered else MANUAL
    if verdict.proposed == ItemStatus.DONE:
        return VERIFIED
    if verdict.proposed == ItemStatus.FAILED:
        return PROBE_FAILED
    return PROBE_INCONCLUSIVE


def _against(status: str, proposed: str | None) -> bool:
    """A person's status that the bound run's verdict contradicts (the rule the checklist
    page shows as a conflict: readiness.probe_runs.selectors.probe_conflict)."""
    if proposed == ItemStatus.FAILED:
        return status in (ItemStatus.DONE, ItemStatus.NOT_APPLICABLE)
    return proposed == ItemStatus.DONE and status == ItemStatus.FAILED


def _decision(item, verdict: BoundVerdict) -> str:
    if item.source == DecisionSource.PROBE:
        return DECISION_PROBE
    if item.source == DecisionSource.EVIDENCE:
        return DECISION_EVIDENCE
    if item.source == DecisionSource.NONE and item.status == ItemStatus.OPEN:
        return DECISION_NONE
    # A person, or a status written around the services (no source): either way not a probe.
    return DECISION_OVERRIDE if _against(item.status, verdict.proposed) else DECISION_PERSON


def _item_line(
    item,
    number,
    probes,
    waiver,
    covered,
    ci_evidence="",
    *,
    verdict: BoundVerdict | None = None,
    run_numbers: dict[int, int] | None = None,
    bound_run: int | None = None,
) -> ItemLine:
    verdict = verdict or BoundVerdict()
    run_numbers = run_numbers or {}
    who = "probe run" if item.source == DecisionSource.PROBE else _name(item.updated_by)
    decision = _decision(item, verdict)
    decided_by_run = None
    if decision == DECISION_PROBE:
        decided_by_run = run_numbers.get(getattr(item, "decided_run_id", None))
        if decided_by_run is None and verdict.proposed == item.status:
            decided_by_run = bound_run
    return ItemLine(
        number=number,
        title=item.title,
        description=item.description,
        qualifier=item.qualifier,
        status=item.status,
        status_label=item.get_status_display(),
        owner_role=item.owner_role.name if item.owner_role else "",
        updated_by=who,
        updated_at=_utc(item.updated_at),
        note=item.note,
        evidence_url=item.evidence_url,
        na_reason=item.na_reason if item.status == ItemStatus.NOT_APPLICABLE else "",
        status_reason=item.status_reason,
        waiver=(
            WaiverLine(
                reason=waiver.reason,
                granted_by=_name(waiver.granted_by),
                granted_at=_utc(waiver.granted_at),
                expires_at=_utc(waiver.expires_at),
            )
            if waiver
            else None
        ),
        verification=_verification(covered, verdict),
        probes=tuple(probes),
        ci_evidence=ci_evidence,
        decision=decision,
        decided_by="" if decision == DECISION_PROBE else _name(item.updated_by),
        decided_by_run=decided_by_run,
        bound_run=bound_run if verdict.results else None,
        probe_verdict=verdict.worst,
        probe_results=verdict.results,
        probe_failures=verdict.failures,
    )


def _probe_counts(lines) -> tuple[int, int, int]:
    statuses = [probe.status for line in lines for probe in line.probes]
    passed = statuses.count(Status.PASS)
    failed = statuses.count(Status.FAIL)
    other = statuses.count(Status.WARN) + statuses.count(Status.ERROR)
    return passed, failed, other


def _section_line(number: int, title: str, lines: list[ItemLine]) -> SectionLine:
    statuses = [line.status for line in lines]
    done = statuses.count(ItemStatus.DONE)
    not_applicable = statuses.count(ItemStatus.NOT_APPLICABLE)
    failed = statuses.count(ItemStatus.FAILED)
    passed, probes_failed, other = _probe_counts(lines)
    return SectionLine(
        number=number,
        title=title,
        items=tuple(lines),
        total=len(lines),
        done=done,
        not_applicable=not_applicable,
        failed=failed,
        open=len(lines) - done - not_applicable - failed,
        probes_passed=passed,
        probes_failed=probes_failed,
        probes_other=other,
        overridden=sum(1 for line in lines if line.overridden),
        waived=sum(1 for line in lines if line.waiver is not None),
    )


def _totals(sections: list[SectionLine]) -> Totals:
    def total(name):
        return sum(getattr(section, name) for section in sections)

    return Totals(
        **{
            name: total(name)
            for name in (
                "total",
                "done",
                "not_applicable",
                "failed",
                "open",
                "probes_passed",
                "probes_failed",
                "probes_other",
                "overridden",
                "waived",
            )
        }
    )


def _audit_summary(deployment_id: int) -> AuditSummary:
    events = AuditEvent.objects.filter(deployment_id=deployment_id)
    count = events.aggregate(n=Count("id"))["n"]
    last = events.order_by("-id").values("id", "hash").first() or {}
    head = events.filter(seq__isnull=False).order_by("-seq").values("seq", "hash").first() or {}
    checkpoint = AuditCheckpoint.objects.order_by("-id").values("id", "root").first() or {}
    return AuditSummary(
        deployment_events=count,
        deployment_last_id=last.get("id"),
        deployment_last_hash=last.get("hash", ""),
        chain=chain_of(deployment_id),
        chain_seq=head.get("seq"),
        chain_head=head.get("hash", ""),
        checkpoint_id=checkpoint.get("id"),
        checkpoint_root=checkpoint.get("root", ""),
    )


def canonical_json(state: dict) -> bytes:
    """`state` as the bytes `digest_of` hashes (sorted, compact UTF-8 JSON): what the record
    embeds as record-snapshot.json, so that its SHA-256 is the state digest."""
    return json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _superseded_state(record: dict | None) -> dict | None:
    if record is None:
        return None
    return {
        "number": record["number"],
        "record_id": str(record["record_id"]),
        "created_at": _iso(_utc(record["created_at"])),
    }


def _canonical(
    deployment, accounts, sections, probe_run, signatures, post_checks, superseded=None
) -> dict:
    """What the record holds, as plain JSON values; `state_digest` is its SHA-256.

    `superseded` is the stored record this one supersedes (its row's values): a stored
    record never changes, so it keeps the digest of unchanged data the same.
    """
    return {
        "format": SNAPSHOT_FORMAT,
        "deployment": deployment_identity(
            deployment,
            [{"account_id": a.account_id, "regions": sorted(a.regions)} for a in accounts],
        ),
        "state": deployment.state,
        "planned_date": _iso(deployment.planned_date),
        "deployed_at": _iso(_utc(deployment.deployed_at)),
        "probe_run": probe_run.id if probe_run else None,
        "probe_run_number": probe_run.number if probe_run else None,
        "supersedes": _superseded_state(superseded),
        "items": [
            {
                "number": line.number,
                "section": section.title,
                "title": line.title,
                "status": line.status,
                "owner_role": line.owner_role,
                "updated_by": line.updated_by,
                "updated_at": _iso(line.updated_at),
                "note": line.note,
                "evidence_url": line.evidence_url,
                "na_reason": line.na_reason,
                "status_reason": line.status_reason,
                "decision": line.decision,
                "decided_by": line.decided_by,
                "decided_by_run": line.decided_by_run,
                "verification": line.verification,
                "waiver": (
                    {
                        "reason": line.waiver.reason,
                        "granted_by": line.waiver.granted_by,
                        "expires_at": _iso(line.waiver.expires_at),
                    }
                    if line.waiver
                    else None
                ),
                "probes": [
                    {
                        "account": probe.account_id,
                        "probe": probe.probe_key,
                        "region": probe.region,
                        "status": probe.status,
                        "summary": probe.summary,
                        "findings": [
                            [finding.resource, finding.status, finding.reason]
                            for finding in probe.findings
                        ],
                        "more_findings": probe.more_findings,
                    }
                    for probe in line.probes
                ],
            }
            for section in sections
            for line in section.items
        ],
        "signoffs": [
            {
                "role": row.role,
                "status": row.status,
                "sequence": row.sequence,
                "meaning": row.meaning,
                "digest": row.digest,
                "printed_name": row.printed_name,
                "signed_at": _iso(row.signed_at),
                "comment": row.comment,
                "revoked_at": _iso(row.revoked_at),
                "replaces": (
                    {
                        "sequence": row.replaces.sequence,
                        "printed_name": row.replaces.printed_name,
                        "signed_at": _iso(row.replaces.signed_at),
                        "why": row.replaces.why,
                    }
                    if row.replaces
                    else None
                ),
            }
            for row in signatures
        ],
        "post_checks": [
            {
                "label": check.label,
                "checked": check.checked,
                "checked_by": check.checked_by,
                "checked_at": _iso(check.checked_at),
                "note": check.note,
            }
            for check in post_checks
        ],
    }


def _choose_superseded(
    records: list[dict], canonical_with
) -> tuple[dict | None, dict | None, dict]:
    """(the stored record this state supersedes, the stored record that is this very state or
    None, the canonical state).

    `records` are the deployment's two newest stored records, newest first. The newest is
    superseded, unless it holds this very state: then this snapshot is that record again
    (a task run twice, a draft of the approved state) and supersedes what it superseded.
    Without that test, storing a record would change the digest of the state it stored.
    """
    if not records:
        return None, None, canonical_with(None)
    newest = records[0]
    before = records[1] if len(records) > 1 else None
    as_newest = canonical_with(before)
    if digest_of(as_newest) == newest["state_digest"]:
        return before, newest, as_newest
    return newest, None, canonical_with(newest)


# The audit events that say why a record was superseded and a signature replaced.
TRAIL_ACTIONS = ("signoff.stale", "deployment.state_changed")


def _state_word(state: str) -> str:
    try:
        return DeploymentState(state).label
    except ValueError:
        return state


def _supersession_reasons(trail, signoffs, *, after: datetime, before: datetime | None):
    """What happened between the superseded record and this one: state changes (with their
    reasons), signatures that went stale (with what changed) and revocations."""
    by_id = {str(signoff.pk): signoff for signoff in signoffs}

    def within(moment) -> bool:
        return moment > after and (before is None or moment < before)

    def signature(signoff) -> str:
        return f"{signoff.role.name} signature {signoff.sequence} ({signoff.printed_name})"

    reasons = []
    for event in trail:
        if not within(event["created_at"]):
            continue
        at = _utc(event["created_at"])
        if event["action"] == "deployment.state_changed":
            was = (event["before"] or {}).get("state", "")
            now = (event["after"] or {}).get("state", "")
            text = f"{_state_word(was)} → {_state_word(now)}"
            reasons.append(
                SupersessionReason(at, f"{text}: {event['reason']}" if event["reason"] else text)
            )
        else:
            signoff = by_id.get(event["object_id"])
            who = signature(signoff) if signoff else f"Sign-off #{event['object_id']}"
            changes = (event["after"] or {}).get("changes") or ()
            reasons.append(
                SupersessionReason(at, f"{who} went stale", tuple(str(c) for c in changes))
            )
    for signoff in signoffs:
        revocation = getattr(signoff, "revoked", None)
        if revocation is not None and within(revocation.revoked_at):
            reasons.append(
                SupersessionReason(
                    _utc(revocation.revoked_at),
                    f"{signature(signoff)} revoked by {_name(revocation.revoked_by)}: "
                    f"{revocation.reason}",
                )
            )
    return tuple(sorted(reasons, key=lambda reason: reason.at))


def record_snapshot(
    deployment: Deployment, *, record_id: str, now: datetime | None = None
) -> RecordSnapshot:
    """Read everything the record of `deployment` shows, as of `now`, in a fixed number of
    queries (about twenty, independent of items, sign-offs and probe results)."""
    now = now or timezone.now()
    # Fetched again with what the cover needs: callers hand in locked or bare instances.
    deployment = Deployment.objects.select_related("team", "template", "owner").get(
        pk=deployment.pk
    )
    sections = list(DeploymentSection.objects.filter(deployment=deployment).order_by("position"))
    # The probe run whose change set each item last: the status of an item a probe decided
    # may come from an earlier run than the bound one (a later run that errored leaves it).
    deciding_run = (
        ItemChange.objects.filter(item=OuterRef("pk"), source=DecisionSource.PROBE)
        .order_by("-version")
        .values("probe_run_id")[:1]
    )
    items = list(
        ChecklistItem.objects.filter(section__deployment=deployment)
        .select_related("updated_by", "owner_role")
        .annotate(decided_run_id=Subquery(deciding_run))
        .order_by("section__position", "position")
    )
    # The same run the sign-offs bind (signoff.selectors.latest_results): the newest closed one.
    run = finished_runs().filter(deployment=deployment).select_related("requested_by").first()
    # Runs are named by their place among the deployment's own runs: ids are the server's.
    run_numbers = {
        pk: number
        for number, pk in enumerate(
            ProbeRun.objects.filter(deployment=deployment)
            .order_by("created_at", "pk")
            .values_list("pk", flat=True),
            start=1,
        )
    }
    bound_run = run_numbers.get(run.pk) if run is not None else None
    results_by_item: dict[int, list[ProbeResult]] = {}
    result_count = 0
    if run is not None:
        results = ProbeResult.objects.filter(run=run, item__isnull=False).exclude(status="")
        for result in sorted(
            results.order_by("probe_key", "account_id", "region"),
            key=lambda r: RESULT_ORDER.get(r.status, 5),
        ):
            results_by_item.setdefault(result.item_id, []).append(result)
            result_count += 1
    waivers = active_waivers([deployment.pk], now=now)
    role_standings = standings([deployment], now=now)[deployment.pk]
    checks = list(
        deployment.post_deployment_checks.select_related("checked_by").order_by("position")
    )
    covered = probes_by_item()
    supporting = set(supporting_keys())
    verdicts = latest_verdicts([deployment.pk])
    records = list(
        SignedRecord.objects.filter(deployment=deployment)
        .order_by("-number")
        .values("number", "record_id", "created_at", "state_digest", "deployment_state")[:2]
    )
    trail = list(
        AuditEvent.objects.filter(deployment_id=deployment.pk, action__in=TRAIL_ACTIONS)
        .order_by("id")
        .values("action", "object_id", "before", "after", "reason", "created_at")
    )
    stale_events = {
        event["object_id"]: event for event in trail if event["action"] == "signoff.stale"
    }

    items_by_section: dict[int, list] = {}
    for item in items:
        items_by_section.setdefault(item.section_id, []).append(item)
    section_lines = []
    for number, section in enumerate(sections, start=1):
        lines = []
        for position, item in enumerate(items_by_section.get(section.pk, []), start=1):
            item_results = results_by_item.get(item.pk, [])
            lines.append(
                _item_line(
                    item,
                    f"{number}.{position}",
                    [_probe_line(result) for result in item_results],
                    waivers.get(item.pk),
                    not is_manual(covered.get((section.title, item.title), [])),
                    _evidence_line(verdicts.get(item.pk)),
                    verdict=_bound_verdict(item_results, supporting),
                    run_numbers=run_numbers,
                    bound_run=bound_run,
                )
            )
        section_lines.append(_section_line(number, section.title, lines))

    probe_run = (
        ProbeRunLine(
            id=run.pk,
            number=bound_run,
            state=run.get_state_display(),
            regions=tuple(run.regions or ()),
            accounts=tuple(account["account_id"] for account in run.accounts or ()),
            requested_by=_name(run.requested_by),
            finished_at=_utc(run.finished_at),
            results=result_count,
        )
        if run
        else None
    )
    signatures = [_signature_row(standing, stale_events) for standing in role_standings]
    aws_accounts = tuple(
        AwsAccountLine(account.account_id, account.name, tuple(account.regions))
        for account in deployment.aws_accounts.order_by("account_id")
    )
    post_checks = [
        PostCheckLine(
            label=check.label,
            checked=check.checked,
            checked_by=_name(check.checked_by),
            checked_at=_utc(check.checked_at),
            note=check.note,
        )
        for check in checks
    ]
    superseded, holding, canonical = _choose_superseded(
        records,
        lambda superseded: _canonical(
            deployment, aws_accounts, section_lines, probe_run, signatures, post_checks, superseded
        ),
    )
    state_digest = digest_of(canonical)
    encoded = canonical_json(canonical)
    # The record embeds these bytes as what its digest hashes: a verifier hashes them again.
    if hashlib.sha256(encoded).hexdigest() != state_digest:
        raise AssertionError("canonical_json must encode the state exactly as digest_of does")
    supersedes = None
    if superseded is not None:
        supersedes = SupersededRecord(
            number=superseded["number"],
            record_id=str(superseded["record_id"]),
            created_at=_utc(superseded["created_at"]),
            state=superseded["deployment_state"],
            reasons=_supersession_reasons(
                trail,
                [signoff for standing in role_standings for signoff in standing.signoffs],
                after=superseded["created_at"],
                before=holding["created_at"] if holding else None,
            ),
        )
    template = deployment.template
    return RecordSnapshot(
        record_id=str(record_id),
        generated_at=_utc(now),
        deployment_id=deployment.pk,
        service=deployment.service,
        environment=deployment.environment,
        version=deployment.version,
        team=deployment.team.name,
        owner=_name(deployment.owner),
        template_name=template.name,
        template_version=template.version,
        planned_date=deployment.planned_date,
        deployed_at=_utc(deployment.deployed_at),
        state=deployment.state,
        state_label=deployment.get_state_display(),
        aws_accounts=aws_accounts,
        has_deployment_date=template.has_deployment_date,
        sections=tuple(section_lines),
        totals=_totals(section_lines),
        probe_run=probe_run,
        signatures=tuple(signatures),
        all_approved=all_approving(role_standings),
        post_checks=tuple(post_checks),
        audit=_audit_summary(deployment.pk),
        state_digest=state_digest,
        supersedes=supersedes,
        canonical_json=encoded,
    )
