"""Evidence a pipeline uploads: stored as uploaded with its SHA-256, judged by its parser,
and allowed to settle only items nobody else decided.

An upload moves an item that is open or that earlier evidence set; a person's decision or a
probe's verdict stands, and the disagreement is kept with the verdict and shown beside the
item. Nothing is saved when the file, its kind or its items are wrong.
"""

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from readiness.audit.services import audit_record
from readiness.checklists import signals
from readiness.checklists.models import ChecklistItem, DecisionSource, Deployment, ItemStatus
from readiness.checklists.services import RecordClosed, deployment_lock, item_set_by_machine
from readiness.checklists.teams import require_member
from readiness.evidence.models import Evidence, EvidenceKind, EvidenceVerdict
from readiness.evidence.parsers import EvidenceError, Verdict, parse_evidence


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def _item_for(deployment: Deployment, verdict: Verdict) -> ChecklistItem:
    item = (
        ChecklistItem.objects.filter(
            section__deployment=deployment,
            section__title=verdict.section,
            title=verdict.item,
        )
        .select_related("section")
        .first()
    )
    if item is None:
        raise ValidationError(
            f"This deployment's checklist has no item “{verdict.item}” in “{verdict.section}”, "
            "which this evidence settles; nothing was saved."
        )
    return item


def _reason(evidence: Evidence, verdict: Verdict) -> str:
    return (
        f"CI evidence {evidence.filename} ({evidence.get_kind_display()}, "
        f"sha256 {evidence.sha256[:12]}…): {verdict.summary}"
    )[:2000]


def _conflict(item: ChecklistItem, verdict: Verdict) -> str:
    says = "passes" if verdict.passed else "fails"
    who = {
        DecisionSource.PERSON: "a person",
        DecisionSource.PROBE: "an AWS probe",
    }.get(item.source, "someone")
    return (
        f"The evidence {says} the item, but {who} marked it "
        f"{item.get_status_display().lower()}; that decision stands."
    )


def evidence_upload(
    *,
    deployment: Deployment,
    user,
    kind: str,
    upload: Upload,
    item: str | None = None,
    token=None,  # the API token used, if any (an api.ApiToken)
) -> Evidence:
    """Store, judge and apply one file; raises ValidationError (a 400) for bad input and
    RecordClosed (a 409) once the deployment is deployed."""
    require_member(team=deployment.team, user=user)
    if kind not in EvidenceKind.values:
        raise ValidationError(
            f"Unknown evidence kind {kind!r}: expected one of {', '.join(EvidenceKind.values)}."
        )
    if not upload.data:
        raise ValidationError("The file is empty.")
    if len(upload.data) > settings.EVIDENCE_MAX_BYTES:
        raise ValidationError(
            f"The file is {len(upload.data)} bytes; evidence files may be at most "
            f"{settings.EVIDENCE_MAX_BYTES} bytes (EVIDENCE_MAX_BYTES)."
        )
    try:
        verdicts = parse_evidence(
            kind,
            upload.data,
            item=item or None,
            coverage_threshold=settings.EVIDENCE_COVERAGE_THRESHOLD,
        )
    except EvidenceError as exc:
        raise ValidationError(str(exc)) from exc
    if deployment.is_closed:
        raise RecordClosed(
            f"The deployment is {deployment.get_state_display().lower()}: its checklist is "
            "part of a closed record and takes no more evidence."
        )
    targets = [(verdict, _item_for(deployment, verdict)) for verdict in verdicts]
    digest = hashlib.sha256(upload.data).hexdigest()
    filename = (upload.filename or f"{kind}.upload").replace("/", "_").replace("\\", "_")[-200:]
    now = timezone.now()
    with transaction.atomic():
        # The deployment first (the lock order): the verdicts then lock and set its items.
        deployment = deployment_lock(deployment.pk)
        if deployment.is_closed:  # closed while the upload was parsed
            raise RecordClosed(
                f"The deployment is {deployment.get_state_display().lower()}: its checklist "
                "is part of a closed record and takes no more evidence."
            )
        evidence = Evidence(
            deployment=deployment,
            kind=kind,
            filename=filename,
            sha256=digest,
            size_bytes=len(upload.data),
            uploaded_by=user,
            token=token,
            uploaded_at=now,
        )
        evidence.file.save(filename, ContentFile(upload.data), save=False)
        try:
            evidence.save()
            applied = [_apply(evidence, verdict, target, user) for verdict, target in targets]
            audit_record(
                actor=user,
                action="evidence.uploaded",
                obj=evidence,
                deployment=deployment,
                after={
                    "kind": kind,
                    "filename": filename,
                    "sha256": digest,
                    "size_bytes": evidence.size_bytes,
                    "verdicts": [
                        {
                            "item": v.item.title,
                            "passed": v.passed,
                            "applied": v.applied,
                            "summary": v.summary[:300],
                        }
                        for v in applied
                    ],
                },
            )
            signals.checklist_changed.send(sender=Deployment, deployment=deployment, actor=user)
        except BaseException:
            evidence.file.delete(save=False)
            raise
    return evidence


def _apply(evidence: Evidence, verdict: Verdict, item: ChecklistItem, user) -> EvidenceVerdict:
    item = ChecklistItem.objects.select_for_update().get(pk=item.pk)
    movable = item.source == DecisionSource.EVIDENCE or (
        item.status == ItemStatus.OPEN and item.source != DecisionSource.PERSON
    )
    target = ItemStatus.DONE if verdict.passed else ItemStatus.FAILED
    reason = _reason(evidence, verdict)
    record = EvidenceVerdict.objects.create(
        evidence=evidence,
        item=item,
        passed=verdict.passed,
        summary=verdict.summary,
        details=list(verdict.details),
        facts=dict(verdict.facts),
        applied=movable,
        conflict="" if movable else _conflict(item, verdict),
    )
    if movable and (item.status != target or item.status_reason != reason):
        item_set_by_machine(
            item=item,
            status=target,
            source=DecisionSource.EVIDENCE,
            reason=reason,
            deployment=evidence.deployment,
            actor=user,
            audit_after={"evidence": evidence.sha256},
        )
    return record
