"""The record's content in machine-readable form: embedded in the PDF before it is signed,
read back from the signed bytes, and compared with today's database.

Two JSON files ride in every record as PDF embedded files (relationship Data, the form a
PDF/A-3 associated file takes too):

- `record-snapshot.json`: the canonical JSON of everything the record holds, byte for byte
  what `record_snapshot` hashes, so its SHA-256 is the state digest printed on every page;
- `record-context.json`: what the record prints besides, left out of the digest on purpose
  (snapshot.py says why): its id, when it was generated, team and owner by name, and the
  audit chain head at generation.

A record the worker signs embeds two more (signoff.records.evidence): the deployment's audit
trail up to that head (`record-audit-trail.json`) and the bound probe run's results
(`record-probe-results.json`). All are written before the PAdES signature, which therefore
covers them. Verification reads the first two from the revision the signature covers and
shows the record's content from the file; what the database says today is a separate answer
(`database_differences`), never mixed into that content. Records made before this have no
embedded files: their content can only be shown from the database, and is marked so.

Reading never raises: a file anyone can upload may hold anything.
"""

import datetime
import hashlib
import io
import json
import logging
from dataclasses import asdict, dataclass, field

import pypdf

from readiness.checklists.models import DeploymentState, ItemStatus
from signoff.records.anchors import Anchor, anchor_problem, printed_anchor
from signoff.records.evidence import AUDIT_FILE, PROBE_FILE
from signoff.records.snapshot import canonical_json
from signoff.signatures.models import Meaning, SignOff

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "record-snapshot.json"
CONTEXT_FILE = "record-context.json"
CONTEXT_FORMAT = 1
# The relationship of both files to the document (ISO 32000-2, 7.11.3): the data the pages
# present.
RELATIONSHIP = "Data"
PREDATES = (
    "This record predates embedded content: its content is shown from the database, marked so."
)
# What the PDF's document information says (WeasyPrint drops the dashes of the <meta> names).
METADATA_RECORD_ID = "/readinessrecordid"
METADATA_STATE_DIGEST = "/readinessstatedigest"
UNSIGNED_STATUSES = ("missing", "revoked")
STATUS_WORDS = {"missing": "not signed", "revoked": "revoked", "stale": "stale"}


@dataclass(frozen=True)
class EmbeddedFile:
    name: str
    data: bytes
    description: str


def context_of(snapshot) -> dict:
    """What `record-context.json` holds for a RecordSnapshot."""
    audit = snapshot.audit
    return {
        "format": CONTEXT_FORMAT,
        "record_id": snapshot.record_id,
        "generated_at": snapshot.generated_at.isoformat(),
        "state_digest": snapshot.state_digest,
        "deployment_id": snapshot.deployment_id,
        "team": snapshot.team,
        "owner": snapshot.owner,
        "audit": {
            "chain": audit.chain,
            "seq": audit.chain_seq,
            "head": audit.chain_head,
            "deployment_events": audit.deployment_events,
            "deployment_last_id": audit.deployment_last_id,
            "deployment_last_hash": audit.deployment_last_hash,
            "checkpoint_id": audit.checkpoint_id,
            "checkpoint_root": audit.checkpoint_root,
        },
        # Why the record supersedes the one before and why renewed signatures replaced
        # theirs, as the audit trail says (the snapshot holds which record and signature).
        "supersedes": _supersession(snapshot.supersedes),
        "replaced_signatures": [
            {
                "role": row.role,
                "sequence": row.sequence,
                "replaces": row.replaces.sequence,
                "why": row.replaces.why,
                "detail": row.replaces.detail,
                "changes": list(row.replaces.changes),
            }
            for row in snapshot.signatures
            if row.replaces is not None
        ],
    }


def _supersession(superseded) -> dict | None:
    if superseded is None:
        return None
    return {
        "number": superseded.number,
        "record_id": superseded.record_id,
        "reasons": [
            {"at": reason.at.isoformat(), "text": reason.text, "changes": list(reason.changes)}
            for reason in superseded.reasons
        ],
    }


def embedded_files(snapshot, evidence=None) -> list[EmbeddedFile]:
    """The files the signed record embeds (pdf.render_record writes them); with `evidence`
    (signoff.records.evidence.RecordEvidence), its audit trail and probe results too."""
    files = [
        EmbeddedFile(
            SNAPSHOT_FILE,
            snapshot.canonical_json,
            "Everything this record holds as canonical JSON; its SHA-256 is the state digest.",
        ),
        EmbeddedFile(
            CONTEXT_FILE,
            canonical_json(context_of(snapshot)),
            "Record id, generation time, team, owner and the audit chain head it prints.",
        ),
    ]
    if evidence is not None:
        files += [
            EmbeddedFile(
                AUDIT_FILE,
                evidence.audit_trail,
                "The deployment's audit events up to the chain head the record prints, each "
                "with the fields its hash covers.",
            ),
            EmbeddedFile(
                PROBE_FILE,
                evidence.probe_results,
                "Every result of the probe run the sign-offs bind, with all its findings.",
            ),
        ]
    return files


# --- What the record says -------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureLine:
    """One role's row of the record's Final Sign-Off table."""

    role: str
    # missing, revoked, stale, or the meaning of a fresh signature (approve, …, reject).
    status: str
    sequence: int | None
    printed_name: str
    meaning: str
    signed_at: datetime.datetime | None
    comment: str
    digest: str
    revoked_at: datetime.datetime | None = None

    @property
    def signed(self) -> bool:
        return self.sequence is not None and self.status not in UNSIGNED_STATUSES

    @property
    def meaning_label(self) -> str:
        try:
            return Meaning(self.meaning).label
        except ValueError:
            return self.meaning

    @property
    def status_label(self) -> str:
        return STATUS_WORDS.get(self.status) or self.meaning_label


@dataclass(frozen=True)
class AuditHead:
    """The deployment's audit chain when the record was made, as the record prints it."""

    chain: str
    seq: int | None
    head: str
    checkpoint_id: int | None = None
    checkpoint_root: str = ""


@dataclass(frozen=True)
class SupersededRecord:
    """The stored record a record says it supersedes (its snapshot's `supersedes`)."""

    number: int
    record_id: str
    created_at: datetime.datetime | None = None


@dataclass(frozen=True)
class RecordContent:
    """What a record says. `source` is "file" (read from the record's embedded files) or
    "database" (a record that predates them: the stored row and its sign-offs, today)."""

    source: str
    record_id: str
    state_digest: str
    deployment_id: int | None
    service: str
    environment: str
    version: str
    team: str
    state: str
    signatures: tuple[SignatureLine, ...]
    generated_at: datetime.datetime | None = None
    team_slug: str = ""
    owner: str = ""
    template: str = ""
    items: dict[str, int] = field(default_factory=dict)
    audit: AuditHead | None = None
    supersedes: SupersededRecord | None = None

    @property
    def from_file(self) -> bool:
        return self.source == "file"

    @property
    def deployment(self) -> str:
        return f"{self.service} {self.version} → {self.environment}"

    @property
    def state_label(self) -> str:
        try:
            return DeploymentState(self.state).label
        except ValueError:
            return self.state

    @property
    def item_total(self) -> int:
        return sum(self.items.values())

    @property
    def item_summary(self) -> str:
        """ "56 items: 54 done, 2 not applicable" (statuses in the checklist's order)."""
        labels = dict(ItemStatus.choices)
        parts = [
            f"{count} {labels.get(status, status).lower()}"
            for status, count in sorted(self.items.items(), key=lambda pair: _order(pair[0]))
        ]
        return f"{self.item_total} items: {', '.join(parts)}" if parts else "no items"

    def as_dict(self) -> dict:
        data = asdict(self)
        data["deployment"] = self.deployment
        data["generated_at"] = _iso(self.generated_at)
        for line in data["signatures"]:
            line["signed_at"] = _iso(line["signed_at"])
            line["revoked_at"] = _iso(line["revoked_at"])
        if data["supersedes"]:
            data["supersedes"]["created_at"] = _iso(data["supersedes"]["created_at"])
        return data


def _order(status: str) -> int:
    values = list(ItemStatus.values)
    return values.index(status) if status in values else len(values)


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _moment(value) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


@dataclass
class EmbeddedContent:
    """What reading a PDF's embedded content found: `present` says whether it embeds any."""

    present: bool = False
    content: RecordContent | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _one(attachments, name: str) -> bytes | None:
    copies = attachments.get(name) or []
    if len(copies) > 1:
        raise ValueError(f"it holds {len(copies)} files named {name}")
    return copies[0] if copies else None


def _content(snapshot: dict, context: dict) -> RecordContent:
    deployment = snapshot["deployment"]
    audit = context.get("audit") or {}
    items: dict[str, int] = {}
    for item in snapshot.get("items") or []:
        items[item["status"]] = items.get(item["status"], 0) + 1
    superseded = snapshot.get("supersedes")
    return RecordContent(
        source="file",
        record_id=str(context["record_id"]),
        state_digest=str(context["state_digest"]),
        deployment_id=deployment["id"],
        service=deployment["service"],
        environment=deployment["environment"],
        version=deployment["version"],
        team=context.get("team") or deployment["team"],
        team_slug=deployment["team"],
        template=deployment.get("template", ""),
        owner=context.get("owner", ""),
        state=snapshot["state"],
        generated_at=_moment(context.get("generated_at")),
        items=items,
        signatures=tuple(
            SignatureLine(
                role=line["role"],
                status=line["status"],
                sequence=line["sequence"],
                printed_name=line["printed_name"],
                meaning=line["meaning"],
                signed_at=_moment(line["signed_at"]),
                comment=line["comment"],
                digest=line["digest"],
                revoked_at=_moment(line.get("revoked_at")),
            )
            for line in snapshot["signoffs"]
        ),
        audit=AuditHead(
            chain=audit.get("chain", ""),
            seq=audit.get("seq"),
            head=audit.get("head", ""),
            checkpoint_id=audit.get("checkpoint_id"),
            checkpoint_root=audit.get("checkpoint_root", ""),
        )
        if audit
        else None,
        supersedes=SupersededRecord(
            number=superseded["number"],
            record_id=str(superseded["record_id"]),
            created_at=_moment(superseded.get("created_at")),
        )
        if superseded
        else None,
    )


def read_content(data: bytes, *, signed_length: int | None = None) -> EmbeddedContent:
    """The record's content from its embedded files, read from the first `signed_length`
    bytes (the revision a signature covers) when given, else from the whole file.

    The snapshot's SHA-256 must be the state digest the record states (in its context file
    and its document information); otherwise the content is still returned, with a problem.
    """
    if signed_length:
        try:
            reader = pypdf.PdfReader(io.BytesIO(data[:signed_length]))
            reader.attachments.keys()
        except Exception:  # a byte range that ends nowhere sensible: the signature fails too
            log.debug("could not read the signed revision", exc_info=True)
        else:
            return _read(reader)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
    except Exception:  # an unreadable file is verify_pdf's to report
        return EmbeddedContent()
    return _read(reader)


def _read(reader: pypdf.PdfReader) -> EmbeddedContent:
    found = EmbeddedContent()
    try:
        info = reader.metadata or {}
        found.metadata = {
            key: str(info[key])
            for key in (METADATA_RECORD_ID, METADATA_STATE_DIGEST)
            if info.get(key) is not None
        }
        attachments = reader.attachments
        if SNAPSHOT_FILE not in attachments and CONTEXT_FILE not in attachments:
            return found
        found.present = True
        snapshot_bytes = _one(attachments, SNAPSHOT_FILE)
        context_bytes = _one(attachments, CONTEXT_FILE)
        if snapshot_bytes is None or context_bytes is None:
            missing = SNAPSHOT_FILE if snapshot_bytes is None else CONTEXT_FILE
            raise ValueError(f"{missing} is missing")
        snapshot, context = json.loads(snapshot_bytes), json.loads(context_bytes)
        found.content = _content(snapshot, context)
    except Exception as error:  # anything in an uploaded file: a problem, never a crash
        log.debug("could not read the record's embedded content", exc_info=True)
        if found.present:  # an unreadable file as a whole is verify_pdf's to report
            found.problems.append(f"The record's embedded content cannot be read ({error}).")
        return found
    actual = hashlib.sha256(snapshot_bytes).hexdigest()
    stated = {found.content.state_digest, found.metadata.get(METADATA_STATE_DIGEST, actual)}
    if stated != {actual}:
        found.problems.append(
            f"The embedded snapshot's SHA-256 ({actual}) is not the state digest the record "
            f"states ({', '.join(sorted(stated - {actual}))}): its content does not match it."
        )
    claimed = found.metadata.get(METADATA_RECORD_ID)
    if claimed and claimed != found.content.record_id:
        found.problems.append(
            f"The embedded content names record {found.content.record_id}, the document "
            f"information record {claimed}."
        )
    return found


# --- Today's database ---------------------------------------------------------------------


def _signoffs(deployment_id: int) -> list[SignOff]:
    return list(
        SignOff.objects.filter(deployment_id=deployment_id)
        .select_related("role", "revocation")
        .order_by("role__position", "sequence")
    )


def _line(signoff: SignOff) -> SignatureLine:
    return SignatureLine(
        role=signoff.role.name,
        status=signoff.meaning,
        sequence=signoff.sequence,
        printed_name=signoff.printed_name,
        meaning=signoff.meaning,
        signed_at=signoff.signed_at.astimezone(datetime.UTC),
        comment=signoff.comment,
        digest=signoff.digest,
    )


def content_from_database(stored) -> RecordContent:
    """A record that embeds no content, as today's database describes it: the stored row and
    the sign-offs linked to it (shown marked as coming from the database)."""
    deployment = stored.deployment
    linked = set(stored.signoffs.values_list("pk", flat=True))
    return RecordContent(
        source="database",
        record_id=str(stored.record_id),
        state_digest=stored.state_digest,
        deployment_id=deployment.pk,
        service=deployment.service,
        environment=deployment.environment,
        version=deployment.version,
        team=deployment.team.name,
        team_slug=deployment.team.slug,
        state=stored.deployment_state,
        signatures=tuple(
            _line(signoff) for signoff in _signoffs(deployment.pk) if signoff.pk in linked
        ),
    )


def _shown(value) -> str:
    if isinstance(value, datetime.datetime):
        return f"{value.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S.%f} UTC"
    return repr(value) if value not in (None, "") else "nothing"


def _differs(what: str, in_record, in_database) -> str:
    return (
        f"{what}: the signed record says {_shown(in_record)}, "
        f"the database says {_shown(in_database)}"
    )


def _signature_differences(content: RecordContent, stored) -> list[str]:
    rows = _signoffs(stored.deployment_id)
    by_turn = {(row.role.name, row.sequence): row for row in rows}
    differences = []
    for line in content.signatures:
        if line.sequence is None:
            continue
        where = f"{line.role}, signature {line.sequence}"
        row = by_turn.get((line.role, line.sequence))
        if row is None:
            differences.append(
                f"{where}: the signed record holds it, the database has no such sign-off "
                "(it was removed, or its role renamed)"
            )
            continue
        for label, in_record, in_database in (
            ("printed name", line.printed_name, row.printed_name),
            ("meaning", line.meaning, row.meaning),
            ("signed at", line.signed_at, row.signed_at),
            ("comment", line.comment, row.comment),
            ("digest", line.digest, row.digest),
        ):
            if in_record != in_database:
                differences.append(_differs(f"{where}, {label}", in_record, in_database))
        revocation = getattr(row, "revocation", None)
        if (line.status == "revoked") != (revocation is not None):
            differences.append(
                _differs(
                    f"{where}, revoked",
                    "yes" if line.status == "revoked" else "no",
                    "yes" if revocation is not None else "no",
                )
            )
        elif revocation is not None and line.revoked_at != revocation.revoked_at:
            differences.append(
                _differs(f"{where}, revoked at", line.revoked_at, revocation.revoked_at)
            )
    # In the record's order (by role), and the database's rows in theirs.
    held = [(line.role, line.sequence) for line in content.signatures if line.signed]
    linked_ids = set(stored.signoffs.values_list("pk", flat=True))
    linked = [(row.role.name, row.sequence) for row in rows if row.pk in linked_ids]
    if set(held) != set(linked):
        differences.append(
            _differs(
                "sign-offs the record holds",
                ", ".join(f"{role} {sequence}" for role, sequence in held) or "none",
                ", ".join(f"{role} {sequence}" for role, sequence in linked) or "none",
            )
        )
    return differences


def _audit_difference(head: AuditHead | None) -> list[str]:
    if head is None or head.seq is None:
        return []
    # One rule for "does today's trail still hold the head a record prints" (verify_audit's).
    problem = anchor_problem(Anchor(head.chain, head.seq, head.head), source="the signed record")
    return [problem] if problem else []


def database_differences(content: RecordContent, stored, *, metadata: dict[str, str]) -> list[str]:
    """Where today's database disagrees with what the record says; [] when it agrees.

    `stored` is the SignedRecord the file is (by SHA-256) or names (by record id), with its
    deployment, team and template selected; whether the file is byte for byte its stored
    copy is the verdict's question, not this one. For content from the file, every fact it holds
    that the database keeps too is compared: the stored row, the deployment's identity, each
    sign-off (and revocation) the record shows and the audit chain head it prints. A record
    that predates embedded content is compared by the state digest its metadata states.
    """
    differences = []
    if not content.from_file:
        stated = metadata.get(METADATA_STATE_DIGEST)
        if stated and stated != stored.state_digest:
            differences.append(_differs("state digest", stated, stored.state_digest))
        return differences
    deployment = stored.deployment
    for label, in_record, in_database in (
        ("record id", content.record_id, str(stored.record_id)),
        ("state digest", content.state_digest, stored.state_digest),
        ("state", content.state, stored.deployment_state),
        ("deployment", content.deployment_id, stored.deployment_id),
        ("service", content.service, deployment.service),
        ("environment", content.environment, deployment.environment),
        ("version", content.version, deployment.version),
        ("team", content.team_slug, deployment.team.slug),
        ("template", content.template, str(deployment.template)),
    ):
        if in_record != in_database:
            differences.append(_differs(label, in_record, in_database))
    return [
        *differences,
        *_signature_differences(content, stored),
        *_audit_difference(content.audit),
    ]


def stated_anchor(data: bytes) -> Anchor:
    """The audit head a record states: from its embedded context when it has one (records
    since content was embedded), else read off its pages (`anchors.printed_anchor`)."""
    content = read_content(data).content
    head = content.audit if content is not None else None
    if head is not None and head.seq and head.head:
        return Anchor(head.chain, head.seq, head.head, content.record_id)
    return printed_anchor(data)
