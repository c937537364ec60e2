"""The role page: what the role holder sees and does (plain and htmx), its panel fragment,
staleness shown on every page, and the role's items edited there."""

import re

import pytest
from django.urls import reverse

from readiness.checklists.models import ItemChange, ItemStatus
from readiness.people import display_name
from signoff.signatures.models import Revocation, SignOff, Waiver
from tests.factories import UserFactory
from tests.signoff.web.conftest import (
    HTMX,
    ROLE_ACTIONS,
    Scene,
    client_for,
    detail_url,
    is_full_page,
    is_panel,
    item_form,
    item_of,
    revoke_url,
    role_action,
    role_url,
    sign_url,
    text,
    waiver_url,
    withdraw_url,
    words,
)
from tests.signoff_helpers import give_role

pytestmark = pytest.mark.django_db


# The role holder


def test_role_holder_sees_the_sign_form_and_the_role_actions(signers, scene):
    body = text(client_for(signers["security"]).get(role_url(scene.deployment, "security")))
    assert f'action="{sign_url(scene.deployment, "security")}"' in body
    assert f'action="{revoke_url(scene.deployment, scene.signoff)}"' in body
    assert f'action="{waiver_url(scene.deployment, scene.open_item)}"' in body
    assert f'action="{withdraw_url(scene.deployment, scene.waiver)}"' in body


def did(action: str, scene: Scene) -> bool:
    """Whether the role action took effect."""
    if action == "sign":
        return SignOff.objects.filter(deployment=scene.deployment, sequence=2).exists()
    if action == "revoke":
        return Revocation.objects.filter(signoff=scene.signoff).exists()
    if action == "waiver_grant":
        return Waiver.objects.filter(item=scene.open_item).exists()
    scene.waiver.refresh_from_db()
    return scene.waiver.withdrawn_at is not None


@pytest.mark.parametrize("action", ROLE_ACTIONS)
def test_role_action_as_plain_post_redirects_to_the_role_page(signers, scene, action):
    client = client_for(signers["security"])
    url, data = role_action(action, scene)
    response = client.post(url, data)
    assert response.status_code == 302
    assert response["Location"] == role_url(scene.deployment, "security")
    assert did(action, scene)
    page = client.get(response["Location"])
    assert len(list(page.context["messages"])) == 1


@pytest.mark.parametrize("action", ROLE_ACTIONS)
def test_role_action_over_htmx_answers_with_the_panel_and_a_trigger(signers, scene, action):
    client = client_for(signers["security"])
    url, data = role_action(action, scene)
    response = client.post(url, data, headers=HTMX)
    assert response.status_code == 200
    assert is_panel(response)
    assert response["HX-Trigger"] == "signoff-changed"
    assert did(action, scene)
    # The role tabs and the state badge outside the panel are swapped out of band.
    assert 'id="role-tabs" hx-swap-oob="true"' in text(response)
    assert 'id="deployment-state" hx-swap-oob="true"' in text(response)


def test_role_page_fragment_for_the_panel_target_is_only_the_panel(signers, scene):
    client = client_for(signers["security"])
    response = client.get(role_url(scene.deployment, "security"), headers=HTMX)
    assert response.status_code == 200
    assert is_panel(response)
    assert "What Security approves" not in text(response)
    full = client.get(role_url(scene.deployment, "security"))
    assert is_full_page(full) and "What Security approves" in text(full)


def test_an_item_change_makes_the_sign_off_stale_on_every_page(member, signers, approved):
    mfa = item_of(approved, "MFA")
    member_client = client_for(member)
    # Another holder of Security, who did not sign, changes its item.
    editor = UserFactory(username="kim", first_name="Kim", last_name="Ode")
    give_role(editor, approved.team, "security")
    response = client_for(editor).post(
        reverse("item_update", args=[approved.pk, mfa.pk]),
        item_form(
            mfa, status=ItemStatus.FAILED, note="ci-admin has no MFA", reason="MFA found off"
        ),
    )
    assert response.status_code == 302
    detail = text(member_client.get(detail_url(approved)))
    row = re.search(r'<tr id="signoff-row-security">(.*?)</tr>', detail, re.S).group(1)
    change = ItemChange.objects.get(item=mfa)
    by = f"{display_name(editor)}, {change.changed_at:%Y-%m-%d %H:%M} UTC: “MFA found off”"
    # What changed, from what to what, who changed it, when and why, the item linked to its
    # history: on the checklist page's sign-off block ...
    assert "signoff-stale" in row
    assert f"Changed since signing: MFA: done → failed — {by}" in words(row)
    assert f"MFA: note changed: (none) → “ci-admin has no MFA” — {by}" in words(row)
    history = reverse("item_history", args=[approved.pk, mfa.pk])
    assert f'<a href="{history}">MFA</a>' in row
    assert '<span class="state state-in_review">In review</span>' in detail

    # ... on the role page ...
    own = text(client_for(signers["security"]).get(role_url(approved, "security")))
    assert "Stale — changed since you signed:" in own
    assert f"MFA: done → failed — {by}" in words(own)
    assert f'<a href="{history}">MFA</a>' in own
    other = text(member_client.get(role_url(approved, "security")))
    assert "Stale — changed since Security Signer signed:" in other
    # ... and on My sign-offs of the one who signed.
    mine = text(client_for(signers["security"]).get(reverse("my_signoffs")))
    assert f"MFA: done → failed — {by}" in words(mine)
    assert f'<a href="{history}">MFA</a>' in mine
    # DevOps owns nothing that changed.
    assert "Stale —" not in text(member_client.get(role_url(approved, "devops")))


def test_an_htmx_item_save_asks_role_panels_to_reload(signers, approved):
    mfa = item_of(approved, "MFA")
    client = client_for(signers["security"])
    response = client.post(
        reverse("item_update", args=[approved.pk, mfa.pk]),
        item_form(mfa, status=ItemStatus.FAILED, reason="MFA found off"),
        headers={"HX-Request": "true", "HX-Target": f"item-{mfa.pk}"},
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "checklist-changed"
    panel = client.get(role_url(approved, "security"), headers=HTMX)
    assert is_panel(panel) and "MFA: done → failed — " in words(text(panel))


def test_role_members_edit_their_items_on_the_role_page(member, signers, in_review):
    mfa = item_of(in_review, "MFA")
    update = reverse("item_update", args=[in_review.pk, mfa.pk])
    own = text(client_for(signers["security"]).get(role_url(in_review, "security")))
    assert f'action="{update}"' in own
    assert own.count('<article class="item') == 14
    others = text(client_for(member).get(role_url(in_review, "security")))
    assert f'action="{update}"' not in others
    assert '<article class="item' not in others
    assert "Members holding Security edit these items here" in others


def test_items_are_not_editable_on_the_role_page_once_deployed(signers, deployed):
    body = text(client_for(signers["security"]).get(role_url(deployed, "security")))
    assert "/items/" not in re.sub(r'href="[^"]*"', "", body)
    assert "The record is closed: this deployment is deployed." in body
