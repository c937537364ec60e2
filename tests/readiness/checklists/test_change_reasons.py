"""Reasons for change (issue 15, item 6): once sign-off was requested, a change to an item
someone decided needs a reason. Decided: a status other than open, or a note, an evidence link
or an n/a reason set (ChecklistItem.is_decided)."""

import pytest
from django.core.exceptions import ValidationError

from readiness.audit.models import AuditEvent
from readiness.checklists import services
from readiness.checklists.models import (
    ChecklistItem,
    DecisionSource,
    DeploymentState,
    ItemChange,
    ItemStatus,
)
from readiness.checklists.services import CHANGE_REASON_REQUIRED
from signoff.lifecycle.services import signoff_request
from tests.signoff_helpers import complete_items

pytestmark = pytest.mark.django_db


def item_of(deployment, title="MFA") -> ChecklistItem:
    return ChecklistItem.objects.select_related("section__deployment__team").get(
        section__deployment=deployment, title=title
    )


def save(item, user, **changes) -> ChecklistItem:
    """An edit of `item` as the page shows it: its current values, then `changes`."""
    values = {
        "expected_version": item.version,
        "status": item.status,
        "note": item.note,
        "evidence_url": item.evidence_url,
        "na_reason": item.na_reason,
        **changes,
    }
    return services.item_update(item=item, user=user, **values)


@pytest.fixture
def in_review(deployment, member):
    complete_items(deployment)
    ChecklistItem.objects.filter(section__deployment=deployment, title="CloudTrail").update(
        status=ItemStatus.OPEN
    )
    signoff_request(deployment=deployment, user=member)
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.IN_REVIEW
    return deployment


def test_an_untouched_open_item_is_undecided_and_any_value_decides_it(deployment):
    item = item_of(deployment)
    assert not item.is_decided
    for values in (
        {"status": ItemStatus.DONE},
        {"status": ItemStatus.FAILED},
        {"note": "looked at it"},
        {"evidence_url": "https://ci.example/1"},
        {"status": ItemStatus.NOT_APPLICABLE, "na_reason": "no users"},
    ):
        assert ChecklistItem(**{"status": ItemStatus.OPEN, **values}).is_decided, values


def test_in_a_draft_changing_a_decided_item_needs_no_reason(deployment, member):
    item = save(item_of(deployment), member, status=ItemStatus.DONE, note="checked")
    item = save(item, member, status=ItemStatus.FAILED, note="root has no MFA")
    assert item.status == ItemStatus.FAILED
    assert ItemChange.objects.get(item=item, version=item.version).reason == ""


@pytest.mark.parametrize(
    "changes",
    [
        {"status": ItemStatus.FAILED},
        {"status": ItemStatus.OPEN},
        {"note": "re-checked"},
        {"evidence_url": "https://ci.example/2"},
        {"status": ItemStatus.NOT_APPLICABLE, "na_reason": "no console users"},
    ],
    ids=["status", "reopen", "note", "evidence", "not-applicable"],
)
def test_in_review_any_change_to_a_decided_item_needs_a_reason(in_review, member, changes):
    item = item_of(in_review)
    assert item.status == ItemStatus.DONE
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        save(item, member, **changes)
    assert refused.value.message_dict == {"reason": [CHANGE_REASON_REQUIRED]}
    with pytest.raises(ValidationError):
        save(item, member, reason="   ", **changes)
    # Nothing was saved.
    assert item_of(in_review).version == item.version
    assert item_of(in_review).status == ItemStatus.DONE
    assert not ItemChange.objects.filter(item=item).exists()
    assert AuditEvent.objects.count() == events

    saved = save(item, member, reason=" found in the IAM report ", **changes)
    change = ItemChange.objects.get(item=item)
    assert change.reason == "found in the IAM report"
    assert (change.changed_by, change.version) == (member, saved.version)
    event = AuditEvent.objects.get(action="item.updated", object_id=str(item.pk))
    assert event.reason == "found in the IAM report"
    assert event.actor == member


def test_in_review_an_open_item_holding_only_a_note_is_decided(in_review, member):
    item = save(item_of(in_review, "CloudTrail"), member, note="waiting for the trail")
    with pytest.raises(ValidationError, match="after sign-off was requested"):
        save(item, member, status=ItemStatus.DONE)


def test_in_review_a_first_decision_on_an_untouched_item_needs_no_reason(in_review, member):
    item = item_of(in_review, "CloudTrail")
    assert not item.is_decided and not item.change_needs_reason(in_review)
    item = save(item, member, status=ItemStatus.DONE, note="trail in every region")
    assert ItemChange.objects.get(item=item).reason == ""
    # Once decided, the next change says why.
    assert item.change_needs_reason(in_review)
    with pytest.raises(ValidationError, match="after sign-off was requested"):
        save(item, member, status=ItemStatus.FAILED)


def test_in_review_saving_the_values_an_item_holds_needs_no_reason(in_review, member):
    item = item_of(in_review)
    version = item.version
    saved = save(item, member, note=f"  {item.note}  ")
    assert saved.version == version + 1


def test_a_status_change_keeps_its_reason_as_the_items_status_reason(in_review, member):
    item = save(item_of(in_review), member, status=ItemStatus.FAILED, reason="MFA found off")
    assert (item.source, item.status_reason) == (DecisionSource.PERSON, "MFA found off")


def test_an_item_a_probe_decided_needs_a_reason_in_review_for_a_note_too(in_review, member):
    ChecklistItem.objects.filter(pk=item_of(in_review).pk).update(source=DecisionSource.PROBE)
    item = item_of(in_review)
    with pytest.raises(ValidationError, match="after sign-off was requested"):
        save(item, member, note="seen the report")
    with pytest.raises(ValidationError, match="override the probe"):
        save(item, member, status=ItemStatus.FAILED)


def test_review_requested_after_the_page_was_read_still_asks_for_the_reason(deployment, member):
    item = save(item_of(deployment), member, status=ItemStatus.DONE)
    # The page read the deployment as a draft; sign-off is requested before the save.
    signoff_request(deployment=deployment, user=member)
    assert item.section.deployment.state == DeploymentState.DRAFT
    with pytest.raises(ValidationError) as refused:
        save(item, member, status=ItemStatus.FAILED)
    assert refused.value.message_dict == {"reason": [CHANGE_REASON_REQUIRED]}
    assert item_of(deployment).status == ItemStatus.DONE
    assert ItemChange.objects.filter(item=item).count() == 1


def test_an_edit_made_on_an_older_version_is_stale_before_it_lacks_a_reason(in_review, member):
    shown_version = item_of(in_review).version
    save(item_of(in_review), member, note="first", reason="re-checked")
    with pytest.raises(services.StaleEdit):
        save(item_of(in_review), member, expected_version=shown_version, status="failed")
