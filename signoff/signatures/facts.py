"""What a signature, a revocation and a waiver mean, as their audit events hold it.

`COMPARED` names the facts a row stores itself and keeps for ever (ids, not names a
person may change later): the ones `signoff.lifecycle.trail` holds the row to.

Every field a person reads on a page, a role panel or a record is here, so the hash chain
vouches for all of it: the services write these dicts into the events (21 CFR 11.70: a
signature is linked to its record so it cannot be excised or altered unnoticed), and
`signoff.lifecycle.trail` compares the rows with them.
"""

from datetime import UTC, datetime

from readiness.people import display_name
from signoff.signatures.models import Revocation, SignOff, Waiver

COMPARED = {
    "signoff": (
        "role_id",
        "sequence",
        "user_id",
        "printed_name",
        "meaning",
        "comment",
        "signed_at",
        "digest",
    ),
    "revocation": ("signoff_sequence", "revoked_by_id", "revoked_at"),
    "waiver": ("item_id", "reason", "granted_by_id", "granted_at", "expires_at"),
    "withdrawal": ("item_id", "withdrawn_by_id", "withdrawn_at"),
}


def instant(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def signoff_facts(signoff: SignOff) -> dict:
    return {
        "role": signoff.role.name,
        "role_id": signoff.role_id,
        "sequence": signoff.sequence,
        "user": signoff.user.get_username(),
        "user_id": signoff.user_id,
        "printed_name": signoff.printed_name,
        "meaning": signoff.meaning,
        "comment": signoff.comment,
        "signed_at": instant(signoff.signed_at),
        "digest": signoff.digest,
    }


def revocation_facts(revocation: Revocation) -> dict:
    signoff = revocation.signoff
    return {
        "signoff_sequence": signoff.sequence,
        "role": signoff.role.name,
        "revoked_by": display_name(revocation.revoked_by),
        "revoked_by_user": revocation.revoked_by.get_username(),
        "revoked_by_id": revocation.revoked_by_id,
        "revoked_at": instant(revocation.revoked_at),
    }


def waiver_facts(waiver: Waiver) -> dict:
    return {
        "item": waiver.item.title,
        "item_id": waiver.item_id,
        "reason": waiver.reason,
        "granted_by": display_name(waiver.granted_by),
        "granted_by_user": waiver.granted_by.get_username(),
        "granted_by_id": waiver.granted_by_id,
        "granted_at": instant(waiver.granted_at),
        "expires_at": instant(waiver.expires_at),
    }


def withdrawal_facts(waiver: Waiver) -> dict:
    return {
        "item": waiver.item.title,
        "item_id": waiver.item_id,
        "withdrawn_by": display_name(waiver.withdrawn_by) if waiver.withdrawn_by_id else None,
        "withdrawn_by_user": waiver.withdrawn_by.get_username() if waiver.withdrawn_by_id else None,
        "withdrawn_by_id": waiver.withdrawn_by_id,
        "withdrawn_at": instant(waiver.withdrawn_at),
    }
