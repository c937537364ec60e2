"""What the sign-off block reads in SQL besides the standings: the Post-Deployment Notes (in
order, who ticked each by name only, None where no one did) and the records, newest first;
and how the checklist page prints them."""

import datetime
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from readiness.checklists.models import PostDeploymentCheck
from readiness.checklists.selectors import post_checks
from readiness.people import display_name
from signoff.records.models import SignedRecord
from signoff.records.selectors import records_newest_first
from tests.factories import UserFactory, make_deployment

pytestmark = pytest.mark.django_db


@pytest.fixture
def block(member, team):
    deployment = make_deployment(user=member, team=team)
    named = UserFactory(first_name="Nora", last_name="Noted")
    bare = UserFactory(first_name="", last_name="")
    now = timezone.now()
    PostDeploymentCheck.objects.filter(deployment=deployment).delete()
    checks = [
        PostDeploymentCheck.objects.create(
            deployment=deployment,
            position=2,
            label="Smoke tests",
            checked=True,
            checked_by=named,
            checked_at=now,
            note="all green",
        ),
        PostDeploymentCheck.objects.create(
            deployment=deployment,
            position=0,
            label="Dashboards",
            checked=True,
            checked_by=bare,
            checked_at=now - datetime.timedelta(hours=1),
            note="quiet",
        ),
        PostDeploymentCheck.objects.create(deployment=deployment, position=1, label="Rollback"),
    ]
    records = [
        SignedRecord.objects.create(
            deployment=deployment,
            record_id=uuid.uuid4(),
            number=number,
            deployment_state="approved",
            state_digest=str(number) * 64,
            file=f"records/{number}.pdf",
            sha256=f"{number}f" * 32,
            size_bytes=1000,
            page_size="A4",
            pades_signed=number == 2,
            created_at=now - datetime.timedelta(days=3 - number),
        )
        for number in (1, 2)
    ]
    return deployment, checks, records, named, bare


def test_post_checks_come_in_order_with_their_checker_by_names_only(
    block, django_assert_num_queries
):
    deployment, *_, bare = block
    read = post_checks(deployment.pk)
    assert [check.label for check in read] == ["Dashboards", "Rollback", "Smoke tests"]
    reference = {
        check.pk: check
        for check in PostDeploymentCheck.objects.filter(deployment=deployment).select_related(
            "checked_by"
        )
    }
    for check in read:
        for field in PostDeploymentCheck._meta.concrete_fields:
            assert getattr(check, field.attname) == getattr(reference[check.pk], field.attname)
    with django_assert_num_queries(0):
        assert display_name(read[0].checked_by) == bare.username
        assert read[1].checked_by is None
        assert display_name(read[2].checked_by) == "Nora Noted"
    assert "password" in read[2].checked_by.get_deferred_fields()


def test_records_come_newest_first_with_every_field(block):
    deployment, _, records, *_ = block
    read = records_newest_first(deployment.pk)
    assert [record.number for record in read] == [2, 1]
    for record in read:
        reference = next(r for r in records if r.pk == record.pk)
        reference.refresh_from_db()
        for field in SignedRecord._meta.concrete_fields:
            assert getattr(record, field.attname) == getattr(reference, field.attname)
    assert records_newest_first(deployment.pk + 1000) == []


def test_the_checklist_page_prints_the_notes_and_records(block, member):
    deployment, *_, bare = block
    client = Client()
    client.force_login(member)
    page = client.get(reverse("deployment_detail", args=[deployment.pk])).content.decode()
    assert f"— {bare.username}, " in page
    assert "— Nora Noted, " in page
    assert page.index("Dashboards") < page.index("Rollback") < page.index("Smoke tests")
    assert page.index("Download signed record 2") < page.index("Download signed record 1")
    assert "PAdES-signed" in page
