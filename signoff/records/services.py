"""The signed record: render, sign and store a deployment's PDF when it is approved or
verified; the request for it is stored with the transition (an outbox row) and sent after.

A stored record is immutable (PostgreSQL triggers refuse UPDATE/DELETE on its rows). The
same content is stored once: the task may run twice, and (deployment, state digest) is
unique.
"""

import hashlib
import logging
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import get_valid_filename

from readiness.audit.services import audit_record
from readiness.checklists.models import RECORD_STATES, Deployment
from readiness.checklists.services import deployment_lock
from readiness.outbox.services import outbox_enqueue
from signoff.records.evidence import record_evidence
from signoff.records.models import SignedRecord
from signoff.records.snapshot import record_snapshot
from signoff.signatures.facts import instant
from signoff.signatures.selectors import standings

log = logging.getLogger(__name__)

# The states a stored record is made in: at approval, and when the post-deployment checks
# close the record.


def record_enqueue(deployment_id: int, *, event: str) -> None:
    """Store the request for the record in the transaction of the transition that calls for
    it (readiness.outbox), `event` naming that transition: sent after commit, or by the
    outbox sweeper when the broker was away. `manage.py make_record` makes it by hand as
    well; either way a state is stored once.
    """
    key = f"record:{deployment_id}:{event}"
    # The key lets the task report the record made (outbox_once), so that a record its own
    # retries gave up on (a time-stamping authority down for long) is asked for again.
    outbox_enqueue(
        "signoff.record_generate", key=key, args=[deployment_id], kwargs={"outbox_key": key}
    )


def record_generate(*, deployment_id: int) -> SignedRecord | None:
    """Render, sign and store the record of the deployment's current state, once per state.

    Returns None when the deployment is not in a record state (it moved on meanwhile).
    """
    deployment = (
        Deployment.objects.select_related("team", "template", "owner")
        .filter(pk=deployment_id)
        .first()
    )
    if deployment is None or deployment.state not in RECORD_STATES:
        return None
    record_id = uuid.uuid4()
    snapshot = record_snapshot(deployment, record_id=str(record_id))
    existing = SignedRecord.objects.filter(
        deployment=deployment, state_digest=snapshot.state_digest
    ).first()
    if existing:
        return existing
    # WeasyPrint and pyHanko are imported where a record is made, not with this module: every
    # worker imports it (the lifecycle's receivers), and a probe worker never renders.
    from signoff.records import pdf, signing

    data = pdf.render_record(
        snapshot,
        draft=False,
        page_size=settings.RECORD_PAGE_SIZE,
        evidence=record_evidence(snapshot),
    )
    signed = None
    if signing.signer_configured():
        signed = signing.sign_pdf(
            data,
            reason=f"Production-readiness record of {deployment}",
            location=settings.SITE_URL,
            name=f"readiness-record-{record_id}",
        )
        data = signed.data
    return _store(deployment, snapshot, record_id, data, signed)


def _store(deployment, snapshot, record_id, data: bytes, signed) -> SignedRecord | None:
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        with transaction.atomic():
            deployment = deployment_lock(deployment.pk)
            # Rendering took time: store only if the record still shows the deployment as it
            # is (otherwise the transition that changed it enqueues a record of its own).
            fresh = record_snapshot(deployment, record_id=str(record_id))
            if fresh.state_digest != snapshot.state_digest:
                log.info("deployment %s changed while its record rendered", deployment.pk)
                return None
            number = (
                SignedRecord.objects.filter(deployment=deployment).aggregate(n=Max("number"))["n"]
                or 0
            ) + 1
            record = SignedRecord(
                deployment=deployment,
                record_id=record_id,
                number=number,
                deployment_state=deployment.state,
                state_digest=snapshot.state_digest,
                sha256=sha256,
                size_bytes=len(data),
                page_size=settings.RECORD_PAGE_SIZE,
                pades_signed=signed is not None,
                certificate_subject=signed.certificate_subject if signed else "",
                certificate_sha256=signed.certificate_sha256 if signed else "",
                created_at=timezone.now(),
            )
            record.file.save(record_filename(deployment, number), ContentFile(data), save=False)
            record.save(force_insert=True)
            signoffs = [
                standing.active
                for standing in standings([deployment])[deployment.pk]
                if standing.active is not None
            ]
            record.signoffs.set(signoffs)
            audit_record(
                actor=None,
                action="record.created",
                obj=record,
                deployment=deployment,
                after=record_facts(record, signoffs, anchor=snapshot.audit),
            )
    except IntegrityError:
        # Another worker stored the same state first.
        return SignedRecord.objects.filter(
            deployment=deployment, state_digest=snapshot.state_digest
        ).first()
    return record


def record_facts(record: SignedRecord, signoffs, *, anchor=None) -> dict:
    """What a record is, as its audit event holds it: everything its pages and the record
    list show, what it supersedes, and the audit head it prints (its anchor)."""
    previous = (
        SignedRecord.objects.filter(deployment_id=record.deployment_id, number__lt=record.number)
        .order_by("-number")
        .values("number", "record_id", "sha256")
        .first()
    )
    facts = {
        "number": record.number,
        "record_id": str(record.record_id),
        "state": record.deployment_state,
        "sha256": record.sha256,
        "state_digest": record.state_digest,
        "pades_signed": record.pades_signed,
        "certificate_sha256": record.certificate_sha256,
        "created_at": instant(record.created_at),
        "signoffs": [s.pk for s in signoffs],
        "supersedes": ({**previous, "record_id": str(previous["record_id"])} if previous else None),
    }
    if anchor is not None:
        facts["anchor"] = {
            "chain": anchor.chain,
            "seq": anchor.chain_seq,
            "hash": anchor.chain_head,
        }
    return facts


def record_filename(deployment: Deployment, number: int) -> str:
    name = f"{deployment.service}-{deployment.version}-{deployment.environment}"
    return get_valid_filename(f"readiness-{name}-record-{number}.pdf")


def draft_pdf(deployment: Deployment) -> bytes:
    """The same document, rendered now in the caller and watermarked DRAFT on every page;
    never stored. For tests and tools: pages get drafts from a worker (signoff.records.drafts),
    never rendered in the request."""
    from signoff.records import pdf  # see record_generate

    snapshot = record_snapshot(deployment, record_id="DRAFT")
    return pdf.render_record(snapshot, draft=True, page_size=settings.RECORD_PAGE_SIZE)
