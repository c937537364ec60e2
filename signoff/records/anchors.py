"""The audit head a record prints: read it from a PDF, and hold the trail to it.

Every record prints the head of its deployment's audit chain when it was made (its
*anchor*; records made before chains were split print the single chain's newest event by
id). A copy of the record kept anywhere — an auditor's archive, a ticket — therefore pins
the trail: `manage.py verify_audit --anchor FILE.pdf` reads the printed head and checks
that today's chain still holds that event with that hash, and plain `verify_audit` does the
same for every stored record (from its `record.created` event, or its stored file).
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO

from django.core.files.storage import default_storage
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from readiness.audit.models import AuditEvent
from readiness.audit.services import LEGACY_CHAIN, deployment_of
from signoff.records.models import SignedRecord

# The text of record.html's audit table with every space taken out (PDF text extraction
# breaks long hashes over lines): "Chain head at generation" then either the chain and
# position, or (records before per-deployment chains) "#<event id> <hash>".
_CHAINED = re.compile(
    r"Chainheadatgeneration((?:deployment:\d+)|installation),position(\d+):([0-9a-f]{64})"
)
_LEGACY = re.compile(r"Chainheadatgeneration#(\d+)([0-9a-f]{64})")
_RECORD_ID = re.compile(r"Record([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


@dataclass(frozen=True)
class Anchor:
    chain: str  # "deployment:<id>", "installation" or "legacy"
    position: int  # on its chain; for the legacy chain, the event's id
    hash: str
    record_id: str = ""

    def __str__(self) -> str:
        if self.chain == LEGACY_CHAIN:
            return f"legacy chain event #{self.position} ({self.hash})"
        return f"{self.chain} position {self.position} ({self.hash})"


class NoAnchor(Exception):
    """The file is not a record, or prints no audit head."""


def printed_anchor(data: bytes) -> Anchor:
    """The audit head a record's PDF prints (its last pages hold the audit table)."""
    try:
        reader = PdfReader(BytesIO(data))
        pages = list(reader.pages)
    except (PdfReadError, ValueError, OSError) as exc:
        raise NoAnchor(f"not a readable PDF: {exc}") from exc
    text = ""
    for page in reversed(pages):
        text = re.sub(r"\s+", "", page.extract_text() or "") + text
        record = _RECORD_ID.search(text)
        found = _CHAINED.search(text)
        if found:
            chain, position, head = found.groups()
            return Anchor(chain, int(position), head, record.group(1) if record else "")
        found = _LEGACY.search(text)
        if found:
            event_id, head = found.groups()
            return Anchor(LEGACY_CHAIN, int(event_id), head, record.group(1) if record else "")
    raise NoAnchor("it prints no audit chain head (is it a Readiness record?)")


def anchor_problem(anchor: Anchor, *, source: str) -> str:
    """Empty when today's trail holds the event the anchor names, with its hash."""
    if anchor.chain == LEGACY_CHAIN:
        event = AuditEvent.objects.filter(pk=anchor.position, seq__isnull=True).first()
        where = f"legacy chain event #{anchor.position}"
    else:
        deployment_id = deployment_of(anchor.chain)
        event = AuditEvent.objects.filter(deployment_id=deployment_id, seq=anchor.position).first()
        where = f"{anchor.chain} position {anchor.position}"
    if event is None:
        return f"{source} prints {where}, which today's audit trail no longer has"
    if event.hash != anchor.hash:
        return (
            f"{source} prints {where} as {anchor.hash}, but today's trail holds {event.hash} "
            f"there (event #{event.pk}): the trail was rewritten since the record was made"
        )
    return ""


def stored_anchors() -> Iterator[tuple[str, Anchor | None, str]]:
    """(who, anchor, why none) of every stored record: from its `record.created` event
    when that holds it, else read from the stored file."""
    events = {
        object_id: after
        for object_id, after in AuditEvent.objects.filter(action="record.created").values_list(
            "object_id", "after"
        )
    }
    for record in SignedRecord.objects.order_by("deployment_id", "number").iterator(200):
        who = f"record {record.number} of deployment {record.deployment_id}"
        written = (events.get(str(record.pk)) or {}).get("anchor")
        if written and written.get("seq"):
            yield who, Anchor(written["chain"], written["seq"], written["hash"]), ""
            continue
        try:
            with default_storage.open(record.file.name, "rb") as stored:
                yield who, printed_anchor(stored.read()), ""
        except (OSError, NoAnchor) as exc:
            yield who, None, str(exc)
