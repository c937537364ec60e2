"""active_waivers, read in SQL: the newest waiver in force per item, none withdrawn or
expired, of the deployments (or items) asked for, with the granter's names only; and what
the checklist page, its item card and the sign-off state print of them."""

import datetime
from types import SimpleNamespace

import pytest
from django.db.models import Q
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from readiness.checklists.models import ChecklistItem
from readiness.people import display_name
from signoff.signatures.models import Waiver
from signoff.signatures.selectors import active_waivers, canonical_state, standings
from tests.factories import UserFactory, make_deployment

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def items_of(deployment) -> list[ChecklistItem]:
    return list(
        ChecklistItem.objects.filter(section__deployment=deployment).order_by(
            "section__position", "position"
        )
    )


def waive(item, user, *, granted_days_ago=3, expires_in_days=10, **fields) -> Waiver:
    now = timezone.now()
    return Waiver.objects.create(
        item=item,
        granted_by=user,
        reason=f"Accepted for {item.title}",
        granted_at=now - granted_days_ago * DAY,
        expires_at=now + expires_in_days * DAY,
        **fields,
    )


@pytest.fixture
def scene(member, team):
    """Two deployments; on the first: a waiver in force, one granted by a user without a full
    name, a withdrawn one, an expired one, an item waived twice (the newer in force); one
    waiver on the second deployment."""
    named = UserFactory(first_name="Grace", last_name="Granter")
    bare = UserFactory(first_name="", last_name="")
    first = make_deployment(user=member, team=team, service="first")
    second = make_deployment(user=member, team=team, service="second")
    items = items_of(first)
    waivers = {
        "named": waive(items[0], named),
        "bare": waive(items[1], bare),
        "withdrawn": waive(
            items[2],
            named,
            withdrawn_by=bare,
            withdrawn_at=timezone.now() - DAY,
            withdrawal_reason="Fixed after all",
        ),
        "expired": waive(items[3], named, granted_days_ago=5, expires_in_days=-1),
        "older": waive(items[4], named, granted_days_ago=6),
        "newer": waive(items[4], bare, granted_days_ago=2, expires_in_days=20),
        "other": waive(items_of(second)[0], named),
    }
    return SimpleNamespace(
        first=first, second=second, items=items, waivers=waivers, named=named, bare=bare
    )


def orm_reference(deployment_ids, now) -> dict[int, Waiver]:
    """The read as the ORM wrote it before: the reference the SQL must match."""
    return {
        waiver.item_id: waiver
        for waiver in Waiver.objects.filter(
            Q(withdrawn_at__isnull=True),
            expires_at__gt=now,
            item__section__deployment_id__in=deployment_ids,
        )
        .select_related("granted_by")
        .order_by("item_id", "granted_at")
    }


def test_only_the_newest_waiver_in_force_of_each_item_is_read(scene):
    first, second, items, waivers = scene.first, scene.second, scene.items, scene.waivers
    found = active_waivers([first.pk], now=timezone.now())
    assert {item_id: waiver.pk for item_id, waiver in found.items()} == {
        items[0].pk: waivers["named"].pk,
        items[1].pk: waivers["bare"].pk,
        items[4].pk: waivers["newer"].pk,
    }
    both = active_waivers([first.pk, second.pk], now=timezone.now())
    assert set(both) == set(found) | {waivers["other"].item_id}
    assert active_waivers([], now=timezone.now()) == {}


def test_the_read_by_items_keeps_to_those_items(scene):
    first, items, waivers = scene.first, scene.items, scene.waivers
    now = timezone.now()
    asked = [items[1].pk, items[2].pk, items[3].pk, items[4].pk]
    found = active_waivers([first.pk], now=now, item_ids=asked)
    assert {item_id: waiver.pk for item_id, waiver in found.items()} == {
        items[1].pk: waivers["bare"].pk,
        items[4].pk: waivers["newer"].pk,
    }
    assert active_waivers([first.pk], now=now, item_ids=[]) == {}


def test_a_waiver_ends_at_its_expiry(scene):
    first, items, waivers = scene.first, scene.items, scene.waivers
    at_expiry = waivers["named"].expires_at
    found = active_waivers([first.pk], now=at_expiry, item_ids=[items[0].pk])
    assert found == {}
    just_before = active_waivers(
        [first.pk], now=at_expiry - datetime.timedelta(seconds=1), item_ids=[items[0].pk]
    )
    assert list(just_before) == [items[0].pk]


def test_the_waivers_read_hold_the_same_fields_as_the_orm_read(scene):
    first, second = scene.first, scene.second
    now = timezone.now()
    found = active_waivers([first.pk, second.pk], now=now)
    reference = orm_reference([first.pk, second.pk], now)
    assert list(found) == list(reference)
    for item_id, waiver in found.items():
        expected = reference[item_id]
        for field in Waiver._meta.concrete_fields:
            assert getattr(waiver, field.attname) == getattr(expected, field.attname)
        assert waiver.expires_at.tzinfo is not None
        assert waiver.granted_by.pk == expected.granted_by.pk
        assert display_name(waiver.granted_by) == display_name(expected.granted_by)
        assert waiver.granted_by.get_full_name() == expected.granted_by.get_full_name()


def test_the_granter_is_read_by_names_only(scene, django_assert_num_queries):
    first, items, bare = scene.first, scene.items, scene.bare
    found = active_waivers([first.pk], now=timezone.now())
    granter = found[items[1].pk].granted_by
    assert "password" in granter.get_deferred_fields()
    with django_assert_num_queries(0):
        assert display_name(granter) == bare.username  # no full name: the username
        assert display_name(found[items[0].pk].granted_by) == "Grace Granter"
    # A field not read is still the user's, read when asked for.
    assert granter.email == bare.email


def test_the_signed_state_names_the_granter_of_each_waiver(scene):
    first, items, waivers, bare = scene.first, scene.items, scene.waivers, scene.bare
    now = timezone.now()
    found = active_waivers([first.pk], now=now)
    state = canonical_state(
        deployment=first,
        role=items[1].owner_role,
        items=[item for item in items if item.owner_role_id == items[1].owner_role_id],
        probes={},
        waivers=found,
    )
    entries = {entry["id"]: entry for entry in state["items"]}
    assert entries[items[1].pk]["waiver"] == {
        "id": waivers["bare"].pk,
        "reason": waivers["bare"].reason,
        "granted_by": bare.username,
        "expires_at": waivers["bare"].expires_at.isoformat(),
    }
    reference = orm_reference([first.pk], now)
    assert state == canonical_state(
        deployment=first,
        role=items[1].owner_role,
        items=[item for item in items if item.owner_role_id == items[1].owner_role_id],
        probes={},
        waivers=reference,
    )
    by_role = standings([first])[first.pk]
    waived = {b.item.pk: b.waiver.pk for standing in by_role for b in standing.waived}
    assert waived.get(items[1].pk, waivers["bare"].pk) == waivers["bare"].pk
    assert items[2].pk not in waived and items[3].pk not in waived


def test_the_item_card_names_the_granter_without_a_full_name_by_username(scene, member):
    first, items, waivers, bare = scene.first, scene.items, scene.waivers, scene.bare
    client = Client()
    client.force_login(member)
    card = client.get(
        reverse("item_update", kwargs={"pk": first.pk, "item_id": items[1].pk})
    ).content.decode()
    assert f"by {bare.username}: {waivers['bare'].reason}" in card
    named_card = client.get(
        reverse("item_update", kwargs={"pk": first.pk, "item_id": items[0].pk})
    ).content.decode()
    assert f"by Grace Granter: {waivers['named'].reason}" in named_card
    withdrawn_card = client.get(
        reverse("item_update", kwargs={"pk": first.pk, "item_id": items[2].pk})
    ).content.decode()
    assert "waiver-note" not in withdrawn_card
    page = client.get(reverse("deployment_detail", args=[first.pk])).content.decode()
    assert page.count('<span class="flag">Waived</span>') == 3
