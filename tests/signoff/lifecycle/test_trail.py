"""Every row that carries what a signature means is held to its event on the hash chain:
rewriting one past the application (triggers off) is named by `verify_audit`."""

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.checklists.models import ChecklistItem, ItemStatus
from signoff.lifecycle import services
from signoff.lifecycle.trail import verify_signature_rows
from signoff.records.models import SignedRecord
from signoff.records.services import record_generate
from signoff.signatures.models import SignOff, Waiver
from tests.readiness.audit.test_audit import raw
from tests.signoff_helpers import approve_all, role, signers_for


@pytest.fixture
def signers(team):
    return signers_for(team)


@pytest.fixture
def approved(deployment, signers):
    approve_all(deployment, signers)
    return deployment


def tampered(sql: str, params=()) -> str:
    raw(sql, params)
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit")
    return str(failure.value)


@pytest.mark.django_db
def test_an_untouched_trail_has_no_row_problems(approved, signers):
    product = SignOff.objects.get(deployment=approved, role__slug="product")
    services.signoff_revoke(signoff=product, user=signers["product"], reason="re-check")
    record_generate(deployment_id=approved.pk)
    assert verify_signature_rows() == []


@pytest.mark.django_db
def test_a_sign_off_rewritten_in_the_database_is_named(approved):
    # The measured fault: this passed verify_audit, and verify_record then printed
    # "Product: Mallory, rejected".
    product = SignOff.objects.get(deployment=approved, role__slug="product")
    message = tampered(
        "UPDATE signoff_signoff SET meaning = 'reject', printed_name = 'Mallory', "
        "comment = 'no' WHERE id = %s",
        [product.pk],
    )
    assert f"sign-off #{product.pk}" in message
    assert "meaning is 'reject' in the database, 'approve' in the event" in message
    assert "printed_name is 'Mallory' in the database" in message


@pytest.mark.django_db
def test_a_moved_signing_time_is_named(approved):
    product = SignOff.objects.get(deployment=approved, role__slug="product")
    earlier = product.signed_at - datetime.timedelta(days=3)
    message = tampered(
        "UPDATE signoff_signoff SET signed_at = %s WHERE id = %s", [earlier, product.pk]
    )
    assert f"sign-off #{product.pk}" in message and "signed_at" in message


@pytest.mark.django_db
def test_a_rewritten_revocation_reason_is_named(approved, signers):
    product = SignOff.objects.get(deployment=approved, role__slug="product")
    services.signoff_revoke(signoff=product, user=signers["product"], reason="found a gap")
    message = tampered(
        "UPDATE signoff_revocation SET reason = 'routine' WHERE signoff_id = %s", [product.pk]
    )
    assert f"the revocation of sign-off #{product.pk}" in message
    assert "'routine' in the database, 'found a gap' in the event" in message


@pytest.mark.django_db
def test_a_waiver_whose_expiry_moved_or_whose_withdrawal_vanished_is_named(deployment, signers):
    item = ChecklistItem.objects.filter(
        section__deployment=deployment, owner_role=role("security")
    ).first()
    ChecklistItem.objects.filter(pk=item.pk).update(status=ItemStatus.OPEN)
    waiver = services.waiver_grant(
        item=item,
        user=signers["security"],
        reason="accepted",
        expires_at=timezone.now() + datetime.timedelta(days=5),
    )
    services.waiver_withdraw(waiver=waiver, user=signers["security"], reason="fixed")
    later = timezone.now() + datetime.timedelta(days=80)
    message = tampered(
        "UPDATE signoff_waiver SET expires_at = %s, withdrawn_at = NULL, withdrawn_by_id = NULL "
        "WHERE id = %s",
        [later, waiver.pk],
    )
    assert f"waiver #{waiver.pk}" in message and "expires_at" in message
    assert "is in force in the database, but audit event" in message
    assert Waiver.objects.count() == 1


@pytest.mark.django_db
def test_a_record_row_with_another_hash_is_named(approved):
    record = record_generate(deployment_id=approved.pk)
    message = tampered(
        "UPDATE signoff_signedrecord SET sha256 = %s WHERE id = %s", ["0" * 64, record.pk]
    )
    assert f"record {record.number} of deployment {approved.pk}" in message and "sha256" in message


@pytest.mark.django_db
def test_a_removed_sign_off_and_one_added_past_the_application_are_named(approved, signers):
    product = SignOff.objects.get(deployment=approved, role__slug="product")
    raw("DELETE FROM signoff_signedrecord_signoffs WHERE signoff_id = %s", [product.pk])
    message = tampered("DELETE FROM signoff_signoff WHERE id = %s", [product.pk])
    assert f"names sign-off #{product.pk}, which is not in the database" in message
    forged = SignOff.objects.get(deployment=approved, role__slug="devops")
    raw(
        "INSERT INTO signoff_signoff (deployment_id, role_id, sequence, user_id, printed_name, "
        "signed_at, meaning, comment, digest, approved_state, ip) SELECT deployment_id, "
        "role_id, sequence + 1, user_id, printed_name, signed_at, meaning, comment, digest, "
        "approved_state, ip FROM signoff_signoff WHERE id = %s",
        [forged.pk],
    )
    extra = SignOff.objects.filter(deployment=approved, role__slug="devops").latest("sequence")
    assert f"sign-off #{extra.pk} (DevOps by" in " ".join(verify_signature_rows())
    assert "has no audit event" in " ".join(verify_signature_rows())


@pytest.mark.django_db
def test_the_events_hold_every_fact_a_signature_shows(approved):
    product = SignOff.objects.get(deployment=approved, role__slug="product")
    after = AuditEvent.objects.get(action="signoff.signed", object_id=str(product.pk)).after
    assert after["signed_at"] == product.signed_at.astimezone(datetime.UTC).isoformat()
    assert after["printed_name"] == product.printed_name and after["meaning"] == "approve"
    assert after["user_id"] == product.user_id and after["digest"] == product.digest
    record = record_generate(deployment_id=approved.pk)
    made = AuditEvent.objects.get(action="record.created", object_id=str(record.pk)).after
    assert made["supersedes"] is None and made["sha256"] == record.sha256
    assert made["anchor"]["chain"] == f"deployment:{approved.pk}"
    assert SignedRecord.objects.count() == 1
