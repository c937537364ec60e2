"""Ownership (issue 17, point 2): only holders of an item's owning role change it or
override its probe; an item no role owns is open to every member of the team."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from readiness.audit.models import AuditEvent
from readiness.checklists import services
from readiness.checklists.models import ChecklistItem, DecisionSource, ItemChange, ItemStatus
from signoff.teams.models import RoleMembership
from tests.factories import TeamFactory, UserFactory
from tests.signoff_helpers import give_role

pytestmark = pytest.mark.django_db


def item_of(deployment, title) -> ChecklistItem:
    return ChecklistItem.objects.select_related("section__deployment__team", "owner_role").get(
        section__deployment=deployment, title=title
    )


def save(item, user, **changes) -> ChecklistItem:
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
def tech_lead(team):
    user = UserFactory(username="tia", first_name="Tia", last_name="Lead")
    give_role(user, team, "tech-lead")
    return user


@pytest.fixture
def security(team):
    user = UserFactory(username="sam", first_name="Sam", last_name="Sec")
    give_role(user, team, "security")
    return user


def test_tech_lead_cannot_change_a_security_item_and_nothing_is_recorded(deployment, tech_lead):
    mfa = item_of(deployment, "MFA")
    assert mfa.owner_role.name == "Security"
    with pytest.raises(PermissionDenied, match="owned by Security"):
        save(mfa, tech_lead, status=ItemStatus.DONE, note="looks fine to me")
    mfa.refresh_from_db()
    assert (mfa.status, mfa.note, mfa.version) == (ItemStatus.OPEN, "", 1)
    assert not ItemChange.objects.filter(item=mfa).exists()
    assert not AuditEvent.objects.filter(action="item.updated").exists()


@pytest.fixture
def newcomer(team):
    """A member of the team holding no role."""
    user = UserFactory(username="nia", first_name="Nia", last_name="New")
    team.members.add(user)
    return user


def test_member_without_a_role_cannot_change_an_owned_item(deployment, newcomer):
    with pytest.raises(PermissionDenied):
        save(item_of(deployment, "MFA"), newcomer, status=ItemStatus.DONE)


def test_security_holder_changes_a_security_item(deployment, security):
    saved = save(item_of(deployment, "MFA"), security, status=ItemStatus.DONE, note="enforced")
    assert (saved.status, saved.note, saved.updated_by) == (ItemStatus.DONE, "enforced", security)


def test_a_role_held_in_another_team_gives_nothing_here(deployment, team):
    elsewhere = UserFactory(username="olga")
    team.members.add(elsewhere)
    give_role(elsewhere, TeamFactory(name="Search", slug="search"), "security")
    with pytest.raises(PermissionDenied):
        save(item_of(deployment, "MFA"), elsewhere, status=ItemStatus.DONE)


def test_tech_lead_cannot_override_a_failing_security_probe(deployment, tech_lead, security):
    mfa = item_of(deployment, "MFA")
    ChecklistItem.objects.filter(pk=mfa.pk).update(
        status=ItemStatus.FAILED, source=DecisionSource.PROBE, status_reason="root has no MFA"
    )
    mfa = item_of(deployment, "MFA")
    with pytest.raises(PermissionDenied):
        save(mfa, tech_lead, status=ItemStatus.DONE, reason="accepted risk")
    mfa.refresh_from_db()
    assert (mfa.status, mfa.source) == (ItemStatus.FAILED, DecisionSource.PROBE)
    # The owner overrides it, with a reason as ever.
    saved = save(mfa, security, status=ItemStatus.DONE, reason="break-glass account, in a safe")
    assert (saved.status, saved.source) == (ItemStatus.DONE, DecisionSource.PERSON)


def test_an_item_no_role_owns_is_changed_by_any_member(deployment, newcomer, tech_lead):
    item = item_of(deployment, "IAM Policies")
    ChecklistItem.objects.filter(pk=item.pk).update(owner_role=None)
    item = item_of(deployment, "IAM Policies")
    saved = save(item, newcomer, status=ItemStatus.DONE)
    assert saved.status == ItemStatus.DONE
    saved = save(saved, tech_lead, note="reviewed")
    assert saved.note == "reviewed"


def test_outsider_still_cannot_change_an_item_no_role_owns(deployment, outsider):
    item = item_of(deployment, "IAM Policies")
    ChecklistItem.objects.filter(pk=item.pk).update(owner_role=None)
    with pytest.raises(PermissionDenied, match="not a member"):
        save(item_of(deployment, "IAM Policies"), outsider, status=ItemStatus.DONE)


def test_a_role_taken_away_takes_the_items_with_it(deployment, security):
    RoleMembership.objects.filter(user=security).delete()
    with pytest.raises(PermissionDenied):
        save(item_of(deployment, "MFA"), security, status=ItemStatus.DONE)


# --- The pages: the service is the gate; the page shows who may act -----------------------


def item_url(deployment, item) -> str:
    return reverse("item_update", kwargs={"pk": deployment.pk, "item_id": item.pk})


def item_post(item, **changes) -> dict:
    fields = {"status": item.status, "note": item.note, "evidence_url": "", "na_reason": ""}
    fields.update(changes, version=item.version)
    return {f"item{item.pk}-{key}": value for key, value in fields.items()}


def test_the_checklist_shows_another_roles_item_read_only_saying_whose_it_is(
    client, deployment, tech_lead
):
    mfa = item_of(deployment, "MFA")
    ChecklistItem.objects.filter(pk=mfa.pk).update(note="root key has MFA")
    client.force_login(tech_lead)
    # The card MFA's row opens to (fetched by htmx; the item's own page without JavaScript).
    for headers in ({"HX-Request": "true"}, {}):
        body = client.get(item_url(deployment, mfa), headers=headers).content.decode()
        card = body[body.index(f'id="item-{mfa.pk}"') :]
        card = card[: card.index("</article>")]
        assert "owned by Security" in card
        assert "root key has MFA" in card
        assert "<form" not in card and f'name="item{mfa.pk}-status"' not in card
    # On the checklist, Security's item has no box to tick for a bulk change; the Tech
    # Lead's own items do.
    page = client.get(reverse("deployment_detail", kwargs={"pk": deployment.pk})).content
    page = page.decode()
    testing = item_of(deployment, "Unit Tests")
    assert testing.owner_role.name == "Tech Lead"
    assert f'value="{testing.pk}" form="bulk-form"' in page
    assert f'value="{mfa.pk}" form="bulk-form"' not in page
    row = page[page.index(f'id="row-{mfa.pk}"') :]
    assert "Security" in row[: row.index("</li>")]


def test_posting_another_roles_item_is_a_403_page_and_changes_nothing(
    client, deployment, tech_lead
):
    mfa = item_of(deployment, "MFA")
    client.force_login(tech_lead)
    response = client.post(item_url(deployment, mfa), item_post(mfa, status="done"))
    assert response.status_code == 403
    assert "owned by Security" in response.content.decode()
    mfa.refresh_from_db()
    assert (mfa.status, mfa.version) == (ItemStatus.OPEN, 1)


def test_an_htmx_post_on_another_roles_item_answers_403_with_the_read_only_card(
    client, deployment, tech_lead
):
    mfa = item_of(deployment, "MFA")
    client.force_login(tech_lead)
    response = client.post(
        item_url(deployment, mfa), item_post(mfa, status="done"), headers={"HX-Request": "true"}
    )
    assert response.status_code == 403
    body = response.content.decode()
    assert f'id="item-{mfa.pk}"' in body and "owned by Security" in body
    assert "<form" not in body
    assert response["HX-Reswap"] == "outerHTML"
    mfa.refresh_from_db()
    assert mfa.status == ItemStatus.OPEN


def test_the_owner_saves_through_the_page(client, deployment, security):
    mfa = item_of(deployment, "MFA")
    client.force_login(security)
    response = client.post(item_url(deployment, mfa), item_post(mfa, status="done"))
    assert response.status_code == 302
    mfa.refresh_from_db()
    assert mfa.status == ItemStatus.DONE
