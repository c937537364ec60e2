"""Everything the signed PDF record shows, read once into frozen values.

`record_snapshot()` is a selector: it only reads, in a fixed number of queries whatever the
number of items, sign-offs or probe results, and returns plain frozen dataclasses so that the
template never touches the ORM (a lazy query there would both cost one query per row and
read data newer than the snapshot).

`state_digest` is the SHA-256 of a canonical JSON of what the record holds. It leaves out
when the record was generated, its id and the audit trail (writing a record appends an audit
event itself), so two snapshots of unchanged data have the same digest: that is what lets the
record task recognise a state it already stored.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db.models import Count
from django.utils import timezone

from readiness.audit.models import AuditCheckpoint, AuditEvent
from readiness.audit.services import chain_of
from readiness.checklists.models import (
    ChecklistItem,
    DecisionSource,
    Deployment,
    DeploymentSection,
    ItemStatus,
)
from readiness.evidence.selectors import latest_verdicts
from readiness.people import display_name
from readiness.probe_runs.models import ProbeResult
from readiness.probe_runs.selectors import RESULT_ORDER, finished_runs
from readiness.probes.base import (
    ATTENTION_STATUSES,
    STATUS_TITLES,
    Status,
    is_manual,
    probes_by_item,
)
from signoff.signatures.selectors import (
    RoleStanding,
    active_waivers,
    all_approving,
    deployment_identity,
    digest_of,
    standings,
)

SNAPSHOT_FORMAT = 1
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
    """The latest finished run's result of one probe in one region for one item."""

    probe_key: str
    title: str
    region: str
    severity: str
    status: str
    summary: str
    findings: tuple[Finding, ...]
    more_findings: int
    remediation: str

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
    # "probe" when a probe covers the item, "manual" when only a person can judge it.
    verification: str
    probes: tuple[ProbeLine, ...]
    # The newest CI evidence on the item, in one line: file, hash, verdict, conflict.
    ci_evidence: str = ""

    @property
    def manual(self) -> bool:
        return self.verification == "manual"

    @property
    def attention(self) -> tuple[ProbeLine, ...]:
        """Results that failed, warned or could not read: shown one by one, with findings."""
        return tuple(probe for probe in self.probes if probe.failing)

    @property
    def passed_summary(self) -> str:
        """The other results on one line: "key (region, region); …"."""
        regions: dict[str, list[str]] = {}
        for probe in self.probes:
            if not probe.failing:
                word = "" if probe.status == "pass" else f" {probe.status_label}"
                regions.setdefault(probe.probe_key, []).append(probe.region + word)
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


@dataclass(frozen=True)
class ProbeRunLine:
    id: int
    state: str
    regions: tuple[str, ...]
    account_id: str
    requested_by: str
    finished_at: datetime | None
    results: int


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
    aws_account_id: str
    aws_regions: tuple[str, ...]
    has_deployment_date: bool
    sections: tuple[SectionLine, ...]
    totals: Totals
    probe_run: ProbeRunLine | None
    signatures: tuple[SignatureRow, ...]
    all_approved: bool
    post_checks: tuple[PostCheckLine, ...]
    audit: AuditSummary
    state_digest: str
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


def _signature_row(standing: RoleStanding) -> SignatureRow:
    current, active = standing.current, standing.active
    shown = active or current
    revocation = getattr(current, "revoked", None) if active is None and current else None
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


def _item_line(item, number, probes, waiver, covered, ci_evidence="") -> ItemLine:
    who = "probe run" if item.source == DecisionSource.PROBE else _name(item.updated_by)
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
        verification="probe" if covered else "manual",
        probes=tuple(probes),
        ci_evidence=ci_evidence,
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


def _canonical(deployment, sections, probe_run, signatures, post_checks) -> dict:
    """What the record holds, as plain JSON values; `state_digest` is its SHA-256."""
    return {
        "format": SNAPSHOT_FORMAT,
        "deployment": deployment_identity(deployment),
        "state": deployment.state,
        "planned_date": _iso(deployment.planned_date),
        "deployed_at": _iso(_utc(deployment.deployed_at)),
        "probe_run": probe_run.id if probe_run else None,
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


def record_snapshot(
    deployment: Deployment, *, record_id: str, now: datetime | None = None
) -> RecordSnapshot:
    """Read everything the record of `deployment` shows, as of `now`, in a fixed number of
    queries (about fifteen, independent of items, sign-offs and probe results)."""
    now = now or timezone.now()
    # Fetched again with what the cover needs: callers hand in locked or bare instances.
    deployment = Deployment.objects.select_related("team", "template", "owner").get(
        pk=deployment.pk
    )
    sections = list(DeploymentSection.objects.filter(deployment=deployment).order_by("position"))
    items = list(
        ChecklistItem.objects.filter(section__deployment=deployment)
        .select_related("updated_by", "owner_role")
        .order_by("section__position", "position")
    )
    # The same run the sign-offs bind (signoff.selectors.latest_results): the newest closed one.
    run = finished_runs().filter(deployment=deployment).select_related("requested_by").first()
    results_by_item: dict[int, list[ProbeResult]] = {}
    result_count = 0
    if run is not None:
        results = ProbeResult.objects.filter(run=run, item__isnull=False).exclude(status="")
        for result in sorted(
            results.order_by("probe_key", "region"),
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
    verdicts = latest_verdicts([deployment.pk])

    items_by_section: dict[int, list] = {}
    for item in items:
        items_by_section.setdefault(item.section_id, []).append(item)
    section_lines = []
    for number, section in enumerate(sections, start=1):
        lines = [
            _item_line(
                item,
                f"{number}.{position}",
                [_probe_line(result) for result in results_by_item.get(item.pk, [])],
                waivers.get(item.pk),
                not is_manual(covered.get((section.title, item.title), [])),
                _evidence_line(verdicts.get(item.pk)),
            )
            for position, item in enumerate(items_by_section.get(section.pk, []), start=1)
        ]
        section_lines.append(_section_line(number, section.title, lines))

    probe_run = (
        ProbeRunLine(
            id=run.pk,
            state=run.get_state_display(),
            regions=tuple(run.regions or ()),
            account_id=run.account_id,
            requested_by=_name(run.requested_by),
            finished_at=_utc(run.finished_at),
            results=result_count,
        )
        if run
        else None
    )
    signatures = [_signature_row(standing) for standing in role_standings]
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
    canonical = _canonical(deployment, section_lines, probe_run, signatures, post_checks)
    state_digest = digest_of(canonical)
    encoded = canonical_json(canonical)
    # The record embeds these bytes as what its digest hashes: a verifier hashes them again.
    if hashlib.sha256(encoded).hexdigest() != state_digest:
        raise AssertionError("canonical_json must encode the state exactly as digest_of does")
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
        aws_account_id=deployment.aws_account_id,
        aws_regions=tuple(deployment.aws_regions or ()),
        has_deployment_date=template.has_deployment_date,
        sections=tuple(section_lines),
        totals=_totals(section_lines),
        probe_run=probe_run,
        signatures=tuple(signatures),
        all_approved=all_approving(role_standings),
        post_checks=tuple(post_checks),
        audit=_audit_summary(deployment.pk),
        state_digest=state_digest,
        canonical_json=encoded,
    )
