"""The standings' signatures, read in SQL: by role position and sequence, each with its
role, its signer's and revoker's names (nothing more of their rows), its revocation (or
None) and, when asked, whether its signoff.stale event is in the trail; the same for list
pages (`rows`), without what was approved until it is needed."""

import pytest
from django.test import Client
from django.urls import reverse

from readiness.audit.models import AuditEvent
from readiness.checklists.models import ChecklistItem
from readiness.people import display_name
from signoff.lifecycle import services
from signoff.signatures.models import Revocation, SignOff
from signoff.signatures.selectors import standings
from tests.factories import UserFactory, make_deployment
from tests.signoff_helpers import complete_items, give_role, role, sign, signers_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed(member, team):
    """Every role signed; security's signature revoked by a member without a full name and
    signed again, then revoked again; devops stale after an edit recorded as such."""
    signers = signers_for(team)
    revoker = UserFactory(first_name="", last_name="")
    give_role(revoker, team, "security")
    deployment = make_deployment(user=member, team=team)
    complete_items(deployment)
    services.signoff_request(deployment=deployment, user=signers["tech-lead"])
    for slug in ("tech-lead", "security", "devops", "product"):
        sign(deployment, signers[slug], slug)
    first = SignOff.objects.get(deployment=deployment, role__slug="security")
    services.signoff_revoke(signoff=first, user=revoker, reason="Signed the wrong build")
    sign(deployment, signers["security"], "security")
    second = SignOff.objects.get(deployment=deployment, role__slug="security", sequence=2)
    services.signoff_revoke(signoff=second, user=revoker, reason="Again the wrong build")
    devops_item = ChecklistItem.objects.filter(
        section__deployment=deployment, owner_role__slug="devops"
    ).first()
    devops_item.note = "changed after signing"
    devops_item.save(update_fields=["note"])
    deployment.refresh_from_db()
    services.deployment_reevaluate(deployment=deployment)
    deployment.refresh_from_db()
    return deployment, signers, revoker


def by_slug(deployment, **options) -> dict:
    return {s.role.slug: s for s in standings([deployment], **options)[deployment.pk]}


@pytest.mark.parametrize("rows", [False, True], ids=["instances", "rows"])
def test_signatures_come_by_sequence_with_their_revocations(signed, rows):
    deployment, *_ = signed
    read = by_slug(deployment, rows=rows)
    security = read["security"].signoffs
    assert [signoff.sequence for signoff in security] == [1, 2]
    assert all(isinstance(signoff.revoked, Revocation) for signoff in security)
    assert [signoff.revoked.reason for signoff in security] == [
        "Signed the wrong build",
        "Again the wrong build",
    ]
    assert read["security"].status == "revoked"
    assert read["tech-lead"].current.revoked is None
    assert read["devops"].status == "stale"
    assert read["tech-lead"].status == "approve"
    expected = SignOff.objects.filter(deployment=deployment).order_by("role__position", "sequence")
    got = [s for standing in read.values() for s in standing.signoffs]
    assert sorted(s.pk for s in got) == sorted(s.pk for s in expected)
    for signoff in got:
        reference = next(s for s in expected if s.pk == signoff.pk)
        for field in SignOff._meta.concrete_fields:
            if rows and field.name == "approved_state":
                assert "approved_state" in signoff.get_deferred_fields()
                continue
            assert getattr(signoff, field.attname) == getattr(reference, field.attname)
        assert signoff.role.pk == reference.role_id


def test_names_are_read_with_the_signatures_and_nothing_more_of_the_users(
    signed, django_assert_num_queries
):
    deployment, signers, revoker = signed
    read = by_slug(deployment)
    with django_assert_num_queries(0):
        revocation = read["security"].current.revoked
        assert display_name(revocation.revoked_by) == revoker.username  # no full name
        assert read["tech-lead"].active.user.get_username() == signers["tech-lead"].username
        assert display_name(read["tech-lead"].active.user) == "Tech-Lead Signer"
        assert read["security"].current.revocation is revocation
        assert read["tech-lead"].active.role.slug == "tech-lead"
    assert "password" in revocation.revoked_by.get_deferred_fields()
    assert "email" in read["tech-lead"].active.user.get_deferred_fields()
    # What was not read is still the user's, read when asked for.
    assert read["tech-lead"].active.user.email == signers["tech-lead"].email


def test_the_stale_event_is_told_per_signature(signed):
    deployment, *_ = signed
    read = by_slug(deployment, rows=True, stale_recorded=True)
    recorded = set(
        AuditEvent.objects.filter(
            object_type="signoff.signoff", action="signoff.stale"
        ).values_list("object_id", flat=True)
    )
    assert str(read["devops"].active.pk) in recorded
    for standing in read.values():
        for signoff in standing.signoffs:
            assert signoff.stale_recorded == (str(signoff.pk) in recorded)
    assert read["devops"].active.stale_recorded is True
    assert read["tech-lead"].active.stale_recorded is False


def test_the_role_ids_keep_their_signatures_only(signed):
    deployment, *_ = signed
    read = standings([deployment], role_ids={role("devops").pk})[deployment.pk]
    assert [standing.role.slug for standing in read] == ["devops"]
    assert {s.role.slug for s in read[0].signoffs} == {"devops"}


def test_the_role_page_names_the_revoker_without_a_full_name_by_username(signed):
    deployment, signers, revoker = signed
    client = Client()
    client.force_login(signers["security"])
    page = client.get(reverse("role_detail", args=[deployment.pk, "security"])).content.decode()
    assert f"was revoked by {revoker.username}: Again the wrong build" in page
