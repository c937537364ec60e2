"""The machine-readable evidence a signed record carries beside its snapshot: the
deployment's audit trail up to the head the record prints, and the results of the probe run
its sign-offs bind. Both are embedded as PDF/A-3 associated files before the signature, so
an auditor holding only the PDF can recompute every event's hash, follow the chain to the
printed head, and read every finding, not only the first ones the pages list.

`record_evidence` is read once per record, after the snapshot and before rendering (the PDF
renderer reads no database). It depends only on what the snapshot fixes (its deployment, its
audit head, its probe run) and on rows that never change once written (audit events are
append-only; a finished run's results are final), so the same snapshot always gives the
same bytes. It costs four queries whatever the number of events or results.

`extractable_files` and `unsafe_name` serve `verify_record --extract`: which embedded files a
PDF holds, and which names must never become a path.
"""

import io
import logging
from dataclasses import dataclass

from django.db.models import F, Q

from readiness.audit.models import AuditEvent
from readiness.audit.services import hashed_fields
from readiness.people import display_name
from readiness.probe_runs.models import ProbeResult, ProbeRun
from signoff.records.snapshot import RecordSnapshot, canonical_json

log = logging.getLogger(__name__)

AUDIT_FILE = "record-audit-trail.json"
PROBE_FILE = "record-probe-results.json"
EVIDENCE_FORMAT = 1
HASHING = (
    "hash = SHA-256 hex of the JSON object of prev_hash, created_at, actor_id, action, "
    "object_type, object_id, deployment_id, before, after, reason, ip and seq (when the event "
    'has one), with sorted keys and separators (",", ":"). Events with a seq are on this '
    "deployment's own chain: seq counts from 1, prev_hash is the hash of the event at seq - 1 "
    "(64 zeros for the first), and the last one's hash is the head. Events without a seq were "
    "written before chains were split per deployment, on the one installation-wide chain."
)
# Longest file name most file systems take (bytes of UTF-8).
MAX_NAME_BYTES = 255


@dataclass(frozen=True)
class RecordEvidence:
    """The two evidence files' bytes (canonical JSON, like the snapshot)."""

    audit_trail: bytes
    probe_results: bytes


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def audit_trail(snapshot: RecordSnapshot) -> dict:
    """The deployment's events up to the chain head the record prints, in chain order, each
    with every field its hash covers. One query."""
    audit = snapshot.audit
    # Legacy events (no seq) are frozen; chain events past the printed head came after the
    # snapshot (the record's own record.created among them) and are not the record's.
    upto = Q(seq__isnull=True)
    if audit.chain_seq is not None:
        upto |= Q(seq__lte=audit.chain_seq)
    events = (
        AuditEvent.objects.filter(upto, deployment_id=snapshot.deployment_id)
        .select_related("actor")
        .order_by(F("seq").asc(nulls_first=True), "id")
    )
    return {
        "format": EVIDENCE_FORMAT,
        "deployment_id": snapshot.deployment_id,
        "head": {"chain": audit.chain, "seq": audit.chain_seq, "hash": audit.chain_head},
        "hashing": HASHING,
        "events": [
            {
                "id": event.pk,
                **hashed_fields(event),
                "actor": event.actor.get_username() if event.actor_id else None,
                "actor_name": display_name(event.actor) if event.actor_id else "system",
                "hash": event.hash,
            }
            for event in events
        ],
    }


def probe_results(snapshot: RecordSnapshot) -> dict:
    """Every result of the probe run the record binds, findings in full (the pages list the
    first ones only). At most three queries; none without a run."""
    document = {"format": EVIDENCE_FORMAT, "deployment_id": snapshot.deployment_id, "run": None}
    if snapshot.probe_run is None:
        return {**document, "accounts": []}
    run = ProbeRun.objects.select_related("requested_by").get(pk=snapshot.probe_run.id)
    # The deployment's own numbering, in the order the record's pages number runs (by
    # creation): its first run is 1, whatever other deployments ran.
    number = (
        ProbeRun.objects.filter(deployment_id=run.deployment_id)
        .filter(Q(created_at__lt=run.created_at) | Q(created_at=run.created_at, pk__lte=run.pk))
        .count()
    )
    results = ProbeResult.objects.filter(run=run).order_by("account_id", "probe_key", "region")
    document["run"] = {
        "id": run.pk,
        "number": number,
        "state": run.state,
        "trigger": run.trigger,
        "requested_by": display_name(run.requested_by) if run.requested_by_id else None,
        "accounts": list(run.accounts or ()),
        "regions": list(run.regions or ()),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
    }
    names = {account["account_id"]: account.get("name", "") for account in run.accounts or ()}
    # Grouped by account: a finding is read where it was found, and one account's denied
    # role or failing resource is told from the others'.
    groups: dict[str, list[dict]] = {}
    for result in results:
        groups.setdefault(result.account_id, []).append(_result_json(result))
    document["accounts"] = [
        {"account_id": account_id, "name": names.get(account_id, ""), "results": entries}
        for account_id, entries in groups.items()
    ]
    return document


def _result_json(result: ProbeResult) -> dict:
    return {
        "account": result.account_id,
        "probe": result.probe_key,
        "region": result.region,
        "title": result.title,
        "section": result.section_title,
        "item": result.item_title,
        "severity": result.severity,
        "state": result.state,
        "status": result.status,
        "summary": result.summary,
        "findings": result.findings,
        "remediation": result.remediation,
        "finished_at": _iso(result.finished_at),
    }


def record_evidence(snapshot: RecordSnapshot) -> RecordEvidence:
    """What the signed record of `snapshot` embeds besides the snapshot and its context."""
    return RecordEvidence(
        audit_trail=canonical_json(audit_trail(snapshot)),
        probe_results=canonical_json(probe_results(snapshot)),
    )


# --- Extracting a PDF's embedded files -----------------------------------------------------


def unsafe_name(name: str) -> str:
    """Why `name` cannot be written as a file inside a chosen folder; "" when it can.

    An embedded file's name is whatever the PDF says: only a plain name stays in the folder.
    """
    if not name or name.strip() != name:
        return "it is empty or starts or ends with a space"
    if name in (".", "..") or name.startswith("."):
        return "it is hidden or names a folder"
    if any(char in name for char in "/\\:") or any(ord(char) < 0x20 for char in name):
        return "it holds a path separator, a drive colon or a control character"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    return ""


@dataclass(frozen=True)
class EmbeddedFileCopy:
    name: str
    data: bytes


def _attachments(data: bytes) -> list[EmbeddedFileCopy]:
    import pypdf  # here, not with the module: every worker imports this one (services)

    reader = pypdf.PdfReader(io.BytesIO(data))
    return [EmbeddedFileCopy(entry.name, entry.content) for entry in reader.attachment_list]


def extractable_files(data: bytes, *, signed_length: int = 0) -> tuple[list[EmbeddedFileCopy], str]:
    """The embedded files of a PDF, and where they were read: from the revision a signature
    covers (its first `signed_length` bytes) when there is one, since files added after it
    are not the signer's; else, or when that revision cannot be read, from the whole file.
    Raises ValueError on a PDF whose embedded files cannot be read."""
    if signed_length:
        try:
            return _attachments(data[:signed_length]), "the revision the signature covers"
        except Exception:  # a byte range that ends nowhere sensible: the signature fails too
            log.debug("could not read the signed revision's embedded files", exc_info=True)
    try:
        return _attachments(data), "the whole file"
    except Exception as error:  # an uploaded file may hold anything
        log.debug("could not read the embedded files", exc_info=True)
        raise ValueError(f"its embedded files cannot be read ({error})") from error
