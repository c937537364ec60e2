"""selectors.item_visible_to, written in SQL: the item it reads is what the ORM's
select_related read gave (every field of the item, its section, deployment, team, template,
owner, owning role and last editor, those relations held without a query), and it refuses
whom that read refused."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from readiness.checklists import selectors
from readiness.checklists.models import ChecklistItem
from tests.factories import make_deployment

pytestmark = pytest.mark.django_db

RELATIONS = (
    "section",
    "section__deployment",
    "section__deployment__team",
    "section__deployment__template",
    "section__deployment__owner",
    "owner_role",
    "updated_by",
)


def related(obj, path: str):
    for name in path.split("__"):
        obj = getattr(obj, name)
    return obj


def values(obj) -> dict | None:
    if obj is None:
        return None
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


def assert_read_as_the_orm_reads(read, item_id, django_assert_num_queries):
    expected = ChecklistItem.objects.select_related(
        "section__deployment__team",
        "section__deployment__template",
        "section__deployment__owner",
        "updated_by",
        "owner_role",
    ).get(pk=item_id)
    assert values(read) == values(expected)
    with django_assert_num_queries(0):
        for path in RELATIONS:
            assert values(related(read, path)) == values(related(expected, path)), path


def test_an_items_every_field_and_relation_as_select_related_read_them(
    deployment, member, django_assert_num_queries
):
    edited, unowned = ChecklistItem.objects.filter(section__deployment=deployment)[:2]
    ChecklistItem.objects.filter(pk=edited.pk).update(
        note="checked", updated_by=member, updated_at=timezone.now(), version=3
    )
    ChecklistItem.objects.filter(pk=unowned.pk).update(owner_role=None)
    for item in (edited, unowned):
        read = selectors.item_visible_to(member, deployment_id=deployment.pk, item_id=item.pk)
        assert_read_as_the_orm_reads(read, item.pk, django_assert_num_queries)
    assert read.owner_role is None and read.updated_by is None
    assert (
        selectors.item_visible_to(member, deployment_id=deployment.pk, item_id=edited.pk).updated_by
        == member
    )
    assert deployment.template.sign_off_roles == read.section.deployment.template.sign_off_roles


def test_none_for_an_outsider_another_deployment_or_no_one(deployment, member, outsider):
    item = ChecklistItem.objects.filter(section__deployment=deployment).first()
    other = make_deployment(user=member, team=deployment.team)
    assert selectors.item_visible_to(outsider, deployment_id=deployment.pk, item_id=item.pk) is None
    assert selectors.item_visible_to(member, deployment_id=other.pk, item_id=item.pk) is None
    assert (
        selectors.item_visible_to(AnonymousUser(), deployment_id=deployment.pk, item_id=item.pk)
        is None
    )
    assert selectors.item_visible_to(member, deployment_id=deployment.pk, item_id=item.pk) == item
