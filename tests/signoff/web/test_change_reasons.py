"""Reasons for change on the pages (issue 15, item 6). Measured: 154 `item.updated` events
carried no reason, done → failed on a signed item among them. Now such a change is refused
without a reason (400, shown on the item, nothing saved) and, with one, the reason is in the
item's history, its audit event and the stale notice of the sign-off it stales."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from readiness.audit.models import AuditEvent
from readiness.checklists.forms import CHANGE_REASON_LABEL
from readiness.checklists.models import DeploymentState, ItemChange, ItemStatus
from readiness.checklists.services import CHANGE_REASON_REQUIRED
from readiness.people import display_name
from signoff.signatures.models import SignOff
from signoff.signatures.selectors import standings
from tests.signoff.web.conftest import (
    client_for,
    item_form,
    item_of,
    role_url,
    set_status,
    text,
)
from tests.signoff_helpers import give_role

pytestmark = pytest.mark.django_db

ITEM_HTMX = {"HX-Request": "true"}
PLAIN_AND_HTMX_SAVE = pytest.mark.parametrize(
    "headers", [pytest.param({}, id="plain"), pytest.param(ITEM_HTMX, id="htmx")]
)
REASON = "ci-admin lost its MFA device; the key was removed"


@pytest.fixture(autouse=True)
def _member_holds_security(member, team):
    """Lee edits MFA, Security's item: only its holders change it (he did not sign)."""
    give_role(member, team, "security")


def item_url(deployment, item) -> str:
    return reverse("item_update", args=[deployment.pk, item.pk])


def card(page: str, item) -> str:
    """The item's card on a page."""
    return re.search(rf'<article [^>]*id="item-{item.pk}".*?</article>', page, re.S).group(0)


def when(change: ItemChange) -> str:
    return f"{change.changed_at.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC"


@PLAIN_AND_HTMX_SAVE
def test_failing_a_signed_item_without_a_reason_is_refused_and_saves_nothing(
    member, approved, headers
):
    mfa = item_of(approved, "MFA")
    client = client_for(member)
    events = AuditEvent.objects.count()
    response = client.post(
        item_url(approved, mfa),
        item_form(mfa, status=ItemStatus.FAILED, note="ci-admin has no MFA"),
        headers=headers,
    )
    assert response.status_code == 400
    shown = card(text(response), mfa)
    assert 'class="field change-reason has-error"' in shown
    assert escape(CHANGE_REASON_REQUIRED) in shown
    assert CHANGE_REASON_LABEL in shown
    mfa.refresh_from_db()
    assert (mfa.status, mfa.note) == (ItemStatus.DONE, "")
    assert not ItemChange.objects.filter(item=mfa).exists()
    assert AuditEvent.objects.count() == events
    approved.refresh_from_db()
    assert approved.state == DeploymentState.APPROVED
    assert all(standing.fresh for standing in standings([approved])[approved.pk])


@PLAIN_AND_HTMX_SAVE
def test_failing_a_signed_item_with_a_reason_keeps_it_in_history_audit_and_stale_notice(
    member, signers, approved, headers
):
    mfa = item_of(approved, "MFA")
    client = client_for(member)
    response = client.post(
        item_url(approved, mfa),
        item_form(mfa, status=ItemStatus.FAILED, note="ci-admin has no MFA", reason=REASON),
        headers=headers,
    )
    assert response.status_code == (200 if headers else 302)

    change = ItemChange.objects.get(item=mfa)
    assert (change.previous_status, change.status) == (ItemStatus.DONE, ItemStatus.FAILED)
    assert (change.changed_by, change.reason) == (member, REASON)
    updated = AuditEvent.objects.get(action="item.updated", object_id=str(mfa.pk))
    assert (updated.actor, updated.reason) == (member, REASON)
    assert (updated.before["status"], updated.after["status"]) == ("done", "failed")

    # The stale notice says who changed what, when and why: on the chain ...
    security = SignOff.objects.get(deployment=approved, role__slug="security")
    stale = AuditEvent.objects.get(action="signoff.stale", object_id=str(security.pk))
    attribution = f"{display_name(member)}, {when(change)}: “{REASON}”"
    note = "note changed: (none) → “ci-admin has no MFA”"
    assert stale.after["changes"] == [
        f"MFA: done → failed — {attribution}",
        f"MFA: {note} — {attribution}",
    ]
    # ... on the role page of the role it stales (whoever looks), the item linked to its
    # history ...
    history_url = reverse("item_history", args=[approved.pk, mfa.pk])
    for viewer in (signers["security"], member):
        page = text(client_for(viewer).get(role_url(approved, "security")))
        for detail in ("done → failed", note):
            line = (
                f'<li><a href="{history_url}">MFA</a>: {escape(detail)}'
                f' — <span class="change-by">{escape(attribution)}</span></li>'
            )
            assert line in page
    # ... and in the item's history; the card says why the status is what it is.
    history = text(client.get(reverse("item_history", args=[approved.pk, mfa.pk])))
    assert escape(REASON) in history
    mfa_page = text(client.get(item_url(approved, mfa)))
    assert f"Why it changed: {escape(REASON)}" in card(mfa_page, mfa)


def test_a_draft_deployments_edits_need_no_reason_and_show_no_reason_field(member, deployment):
    set_status(deployment, "MFA", ItemStatus.DONE)
    mfa = item_of(deployment, "MFA")
    client = client_for(member)
    assert "change-reason" not in text(client.get(item_url(deployment, mfa)))
    response = client.post(
        item_url(deployment, mfa), item_form(mfa, status=ItemStatus.FAILED), headers=ITEM_HTMX
    )
    assert response.status_code == 200
    assert ItemChange.objects.get(item=mfa).reason == ""


def test_in_review_the_reason_field_shows_on_decided_items_only(member, in_review):
    set_status(in_review, "MFA", ItemStatus.DONE)
    client = client_for(member)

    def card_of(title):
        item = item_of(in_review, title)
        return card(text(client.get(item_url(in_review, item))), item)

    decided = card_of("MFA")
    assert 'class="field change-reason"' in decided and CHANGE_REASON_LABEL in decided
    untouched = card_of("CloudTrail")
    assert "change-reason" not in untouched and "override-reason" not in untouched


def test_in_review_a_first_decision_on_an_untouched_item_needs_no_reason(member, in_review):
    cloudtrail = item_of(in_review, "CloudTrail")
    client = client_for(member)
    response = client.post(
        item_url(in_review, cloudtrail),
        item_form(cloudtrail, status=ItemStatus.DONE),
        headers=ITEM_HTMX,
    )
    assert response.status_code == 200
    assert ItemChange.objects.get(item=cloudtrail).reason == ""
    # The item is decided now: the save swaps in the reason field its next change needs.
    reason_slot = re.search(
        rf'<div class="reason-slot" id="item-{cloudtrail.pk}-reason" hx-swap-oob="true">.*?'
        r'class="field change-reason"',
        text(response),
        re.S,
    )
    assert reason_slot
    cloudtrail.refresh_from_db()
    refused = client.post(
        item_url(in_review, cloudtrail),
        item_form(cloudtrail, status=ItemStatus.FAILED),
        headers=ITEM_HTMX,
    )
    assert refused.status_code == 400
    assert escape(CHANGE_REASON_REQUIRED) in text(refused)


def test_a_signer_editing_on_the_role_page_is_asked_for_the_reason(signers, approved):
    page = text(client_for(signers["security"]).get(role_url(approved, "security")))
    mfa = card(page, item_of(approved, "MFA"))
    assert 'class="field change-reason"' in mfa and CHANGE_REASON_LABEL in mfa
