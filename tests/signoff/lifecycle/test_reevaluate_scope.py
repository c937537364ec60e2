"""An item edit re-reads only the roles whose approval covers the item, and still ends where
reading every role would: the same deployment state and a stale event for each signature
that no longer holds."""

import contextlib
import random

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readiness.audit.models import AuditEvent
from readiness.checklists import services as checklist
from readiness.checklists.models import (
    ChecklistItem,
    ChecklistTemplate,
    DeploymentState,
    ItemStatus,
)
from signoff.lifecycle import services
from signoff.signatures.models import SignOff
from signoff.signatures.selectors import all_approving, standings
from tests.signoff_helpers import approve_all, give_role, sign, signers_for


@pytest.fixture
def signers(team):
    return signers_for(team)


@pytest.fixture(autouse=True)
def _member_holds_the_item_owning_roles(member, team):
    """Lee edits items of every role: only holders of an item's owning role change it. He
    signs nothing; the signers do."""
    for slug in ("tech-lead", "security", "devops"):
        give_role(member, team, slug)


@pytest.fixture
def approved(deployment, signers):
    approve_all(deployment, signers)
    assert deployment.state == DeploymentState.APPROVED
    return deployment


def edit(item, user, *, note=None, status=None, reason="re-checked"):
    item.refresh_from_db()
    return checklist.item_update(
        item=item,
        user=user,
        expected_version=item.version,
        status=status or item.status,
        note=item.note if note is None else note,
        evidence_url=item.evidence_url,
        na_reason=item.na_reason,
        reason=reason,
    )


def stale_roles(deployment) -> list[str]:
    ids = AuditEvent.objects.filter(deployment=deployment, action="signoff.stale").values_list(
        "object_id", flat=True
    )
    return sorted(SignOff.objects.filter(pk__in=list(ids)).values_list("role__slug", flat=True))


def owned(deployment, slug):
    return (
        ChecklistItem.objects.filter(section__deployment=deployment, owner_role__slug=slug)
        .order_by("pk")
        .first()
    )


def assert_as_if_every_role_was_read(deployment):
    """The state and the stale events agree with the standings of every role, read now."""
    deployment.refresh_from_db()
    everyone = standings([deployment])[deployment.pk]
    expected = DeploymentState.APPROVED if all_approving(everyone) else DeploymentState.IN_REVIEW
    assert deployment.state == expected
    recorded = set(
        AuditEvent.objects.filter(deployment=deployment, action="signoff.stale").values_list(
            "object_id", flat=True
        )
    )
    for standing in everyone:
        if standing.active is not None and not standing.fresh:
            assert str(standing.active.pk) in recorded, standing.role.name


def test_a_note_edit_reads_the_owning_role_only(approved, member):
    item = owned(approved, "security")
    with CaptureQueriesContext(connection) as captured:
        edit(item, member, note="rotated again")
    # The items read for the standing are Security's own, not the checklist.
    reads = [q["sql"] for q in captured if 'FROM "readiness_checklistitem"' in q["sql"]]
    assert any('"owner_role_id" IN' in sql for sql in reads)
    assert stale_roles(approved) == ["security"]
    assert_as_if_every_role_was_read(approved)


def test_a_status_edit_also_reads_the_roles_that_approve_every_status(approved, member):
    item = owned(approved, "devops")
    edit(item, member, status=ItemStatus.FAILED, reason="the alarm never fired")
    # DevOps owns the item; Product owns none and approves every item's status.
    assert stale_roles(approved) == ["devops", "product"]
    assert_as_if_every_role_was_read(approved)


def test_undoing_the_edit_approves_again(approved, member):
    item = owned(approved, "security")
    before = item.note
    edit(item, member, note="a note that will be taken back")
    approved.refresh_from_db()
    assert approved.state == DeploymentState.IN_REVIEW
    edit(item, member, note=before)
    approved.refresh_from_db()
    # Every role's signature holds again: the in-review branch read them all and approved.
    assert approved.state == DeploymentState.APPROVED
    assert_as_if_every_role_was_read(approved)


def test_an_unowned_item_note_changes_no_approval(approved, member):
    item = owned(approved, "security")
    ChecklistItem.objects.filter(pk=item.pk).update(owner_role=None)
    services.deployment_reevaluate(deployment=approved)  # the ownership change itself
    approved.refresh_from_db()
    state = approved.state
    edit(item, member, note="nobody signs this note")
    approved.refresh_from_db()
    assert approved.state == state
    assert_as_if_every_role_was_read(approved)


def test_random_edits_end_where_reading_every_role_ends(approved, member, signers):
    chooser = random.Random(14)
    items = list(ChecklistItem.objects.filter(section__deployment=approved).order_by("pk"))
    notes = ("", "checked", "re-checked")
    for step in range(40):
        item = chooser.choice(items)
        if chooser.random() < 0.3:
            status = chooser.choice([ItemStatus.DONE, ItemStatus.FAILED])
            edit(item, member, status=status, reason=f"step {step}")
        else:
            edit(item, member, note=chooser.choice(notes))
        if chooser.random() < 0.2:
            # A role re-signs what it sees now, as a signer would.
            slug = chooser.choice(["tech-lead", "security", "devops", "product"])
            # A failed item of the role blocks approval: then nothing is signed.
            with contextlib.suppress(ValidationError, services.SignOffConflict):
                sign(approved, signers[slug], slug)
        assert_as_if_every_role_was_read(approved)


def test_a_role_the_sign_off_table_leaves_out_is_not_made_stale(approved, member):
    # The owning role comes with the item; one the table does not name signs only where
    # the table names no role that exists, which takes reading them all.
    ChecklistTemplate.objects.filter(pk=approved.template_id).update(sign_off_roles=["Security"])
    approved.refresh_from_db()
    edit(owned(approved, "devops"), member, note="DevOps does not sign here")
    edit(owned(approved, "security"), member, note="Security does")
    assert stale_roles(approved) == ["security"]


def test_where_the_table_names_no_role_that_exists_every_role_signs(approved, member):
    ChecklistTemplate.objects.filter(pk=approved.template_id).update(sign_off_roles=["Nobody"])
    approved.refresh_from_db()
    edit(owned(approved, "devops"), member, note="every role signs here")
    assert stale_roles(approved) == ["devops"]
    assert_as_if_every_role_was_read(approved)
