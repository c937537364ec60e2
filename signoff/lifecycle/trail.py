"""Hold the rows that carry a signature's meaning to their audit events.

Sign-offs, revocations, waivers and records are append-only at the database, but whoever
can switch its triggers off can still rewrite a row. Their audit events are on the hash
chain, so `verify_audit` checks each row against its event: a sign-off whose signer or
meaning was edited, a waiver whose expiry moved, a record whose hash changed, a row with no
event or an event whose row is gone is each named. Only the facts a row stores itself are
compared (`facts.COMPARED`), and only those the event holds, so events written before a
fact was added are held to what they say.
"""

from collections import defaultdict
from datetime import datetime

from readiness.audit.models import AuditEvent
from signoff.records.models import SignedRecord
from signoff.records.services import record_facts
from signoff.signatures import facts
from signoff.signatures.models import Revocation, SignOff, Waiver

ACTIONS = ("signoff.signed", "signoff.revoked", "waiver.granted", "waiver.withdrawn")
RECORD_COMPARED = (
    "number",
    "record_id",
    "state",
    "sha256",
    "state_digest",
    "pades_signed",
    "certificate_sha256",
    "created_at",
    "signoffs",
)


def _same(stored, written) -> bool:
    if stored == written:
        return True
    if isinstance(stored, list) and isinstance(written, list):  # ids, in any order
        return sorted(map(str, stored)) == sorted(map(str, written))
    # Times written before they were normalized to UTC: the same instant either way.
    if isinstance(stored, str) and isinstance(written, str):
        try:
            return datetime.fromisoformat(stored) == datetime.fromisoformat(written)
        except ValueError:
            return False
    return False


class _Events:
    def __init__(self, actions: tuple[str, ...], object_type: str):
        self.by_object: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for event in (
            AuditEvent.objects.filter(action__in=actions, object_type=object_type)
            .order_by("id")
            .values("id", "action", "object_id", "after", "reason")
            .iterator(chunk_size=2000)
        ):
            self.by_object[(event["action"], event["object_id"])].append(event)

    def take(self, action: str, pk) -> list[dict]:
        return self.by_object.pop((action, str(pk)), [])

    def left(self):
        for (action, object_id), events in sorted(self.by_object.items()):
            for event in events:
                yield action, object_id, event


def _compare(label: str, row: dict, reason: str | None, events: list[dict], keys) -> list[str]:
    if not events:
        return [f"{label} has no audit event: it was written past the application"]
    if len(events) > 1:
        ids = ", ".join(f"#{event['id']}" for event in events)
        return [f"{label} has {len(events)} audit events ({ids}) where one was written"]
    event = events[0]
    written = event["after"] or {}
    problems = [
        f"{label} differs from its audit event #{event['id']}: {key} is {row[key]!r} in the "
        f"database, {written[key]!r} in the event"
        for key in keys
        if key in written and not _same(row[key], written[key])
    ]
    if reason is not None and reason != event["reason"]:
        problems.append(
            f"{label} differs from its audit event #{event['id']}: its reason is {reason!r} "
            f"in the database, {event['reason']!r} in the event"
        )
    return problems


def verify_signature_rows() -> list[str]:
    """Every sign-off, revocation, waiver (and withdrawal) and record against its event."""
    problems: list[str] = []
    signed = _Events(("signoff.signed", "signoff.revoked"), "signoff.signoff")
    for signoff in SignOff.objects.select_related("role", "user").iterator(chunk_size=500):
        label = f"sign-off #{signoff.pk} ({signoff.role.name} by {signoff.printed_name})"
        row = facts.signoff_facts(signoff)
        problems += _compare(
            label, row, None, signed.take("signoff.signed", signoff.pk), facts.COMPARED["signoff"]
        )
    for revocation in Revocation.objects.select_related(
        "signoff__role", "signoff__user", "revoked_by"
    ).iterator(chunk_size=500):
        label = f"the revocation of sign-off #{revocation.signoff_id}"
        problems += _compare(
            label,
            facts.revocation_facts(revocation),
            revocation.reason,
            signed.take("signoff.revoked", revocation.signoff_id),
            facts.COMPARED["revocation"],
        )
    waived = _Events(("waiver.granted", "waiver.withdrawn"), "signoff.waiver")
    for waiver in Waiver.objects.select_related("item", "granted_by", "withdrawn_by").iterator(
        chunk_size=500
    ):
        label = f"waiver #{waiver.pk} ({waiver.item.title})"
        problems += _compare(
            label,
            facts.waiver_facts(waiver),
            None,
            waived.take("waiver.granted", waiver.pk),
            facts.COMPARED["waiver"],
        )
        withdrawals = waived.take("waiver.withdrawn", waiver.pk)
        if waiver.withdrawn_at is None:
            if withdrawals:
                problems.append(
                    f"{label} is in force in the database, but audit event "
                    f"#{withdrawals[0]['id']} withdrew it"
                )
            continue
        problems += _compare(
            f"the withdrawal of {label}",
            facts.withdrawal_facts(waiver),
            waiver.withdrawal_reason,
            withdrawals,
            facts.COMPARED["withdrawal"],
        )
    made = _Events(("record.created",), "signoff.signedrecord")
    for record in SignedRecord.objects.prefetch_related("signoffs").iterator(chunk_size=200):
        label = f"record {record.number} of deployment {record.deployment_id}"
        row = record_facts(record, list(record.signoffs.all()))
        problems += _compare(
            label, row, None, made.take("record.created", record.pk), RECORD_COMPARED
        )
    for events, noun in ((signed, "sign-off"), (waived, "waiver"), (made, "record")):
        for action, object_id, event in events.left():
            problems.append(
                f"audit event #{event['id']} ({action}) names {noun} #{object_id}, which is "
                "not in the database: the row was removed"
            )
    return problems
