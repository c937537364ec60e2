"""Changes made in the Django admin are audited like the app's; the record is read-only."""

import pytest
from django.test import Client

from readiness.audit.models import AuditEvent
from readiness.audit.verification import verify_all
from readiness.checklists.models import Deployment, TemplateItem
from readiness.checklists.selectors import default_template
from signoff.lifecycle import services
from signoff.signatures.models import SignOff
from signoff.teams.models import Role, RoleMembership
from tests.factories import UserFactory
from tests.signoff_helpers import complete_items, sign, signers_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def role(name: str) -> Role:
    return Role.objects.get(name=name)


def actions() -> list[str]:
    """Audit actions not about deployments, in the order they were written."""
    return list(
        AuditEvent.objects.filter(deployment__isnull=True)
        .exclude(action="template.imported")
        # The administrator's own login (tests/signoff/web/test_authentication.py).
        .exclude(action__in=("user.logged_in", "user.logged_out", "user.login_failed"))
        .order_by("id")
        .values_list("action", flat=True)
    )


# RoleMembership's own admin.

MEMBERSHIPS = "/admin/signoff/rolemembership/"


def test_adding_a_membership_in_the_admin_is_audited(admin, admin_user, team, member):
    response = admin.post(
        f"{MEMBERSHIPS}add/", {"team": team.pk, "user": member.pk, "role": role("Security").pk}
    )
    assert response.status_code == 302
    membership = RoleMembership.objects.get(team=team, user=member)
    [event] = AuditEvent.objects.filter(action="membership.added")
    assert event.actor == admin_user
    assert event.object_id == str(membership.pk)
    assert event.after == {"team": "payments", "user": "lee", "role": "Security"}
    assert verify_all().ok


def test_the_admin_refuses_a_membership_for_someone_outside_the_team(admin, team, outsider):
    response = admin.post(
        f"{MEMBERSHIPS}add/", {"team": team.pk, "user": outsider.pk, "role": role("Security").pk}
    )
    assert response.status_code == 200  # the form again, with its error
    assert "olga is not a member of Payments" in response.content.decode()
    assert not RoleMembership.objects.exists()
    assert actions() == []


def test_the_admin_refuses_a_duplicate_membership(admin, team, member):
    RoleMembership.objects.create(team=team, user=member, role=role("Security"))
    response = admin.post(
        f"{MEMBERSHIPS}add/", {"team": team.pk, "user": member.pk, "role": role("Security").pk}
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert RoleMembership.objects.count() == 1


def test_deleting_a_membership_in_the_admin_is_audited(admin, team, member):
    membership = RoleMembership.objects.create(team=team, user=member, role=role("DevOps"))
    response = admin.post(f"{MEMBERSHIPS}{membership.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not RoleMembership.objects.exists()
    [event] = AuditEvent.objects.filter(action="membership.removed")
    assert event.before == {"team": "payments", "user": "lee", "role": "DevOps"}
    assert event.object_id == str(membership.pk)


def test_deleting_memberships_in_bulk_audits_each(admin, team, member):
    held = [
        RoleMembership.objects.create(team=team, user=member, role=role(name))
        for name in ("Security", "DevOps")
    ]
    response = admin.post(
        MEMBERSHIPS,
        {"action": "delete_selected", "_selected_action": [m.pk for m in held], "post": "yes"},
    )
    assert response.status_code == 302
    assert not RoleMembership.objects.exists()
    assert actions() == ["membership.removed", "membership.removed"]


def test_a_membership_cannot_be_edited_in_place(admin, team, member):
    membership = RoleMembership.objects.create(team=team, user=member, role=role("DevOps"))
    response = admin.post(
        f"{MEMBERSHIPS}{membership.pk}/change/",
        {"team": team.pk, "user": member.pk, "role": role("Security").pk},
    )
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == role("DevOps")


# The team's admin page: members and the role inline.


def team_form(team, *, members, rows) -> dict:
    """The team change form as the browser posts it; `rows` are the role inline's rows:
    (membership or None, user, role name, delete)."""
    existing = [row for row in rows if row[0] is not None]
    data = {
        "name": team.name,
        "slug": team.slug,
        "members": [user.pk for user in members],
        "roles-TOTAL_FORMS": str(len(rows)),
        "roles-INITIAL_FORMS": str(len(existing)),
        "roles-MIN_NUM_FORMS": "0",
        "roles-MAX_NUM_FORMS": "1000",
    }
    for number, (membership, user, role_name, delete) in enumerate(rows):
        prefix = f"roles-{number}"
        data[f"{prefix}-id"] = membership.pk if membership else ""
        data[f"{prefix}-team"] = team.pk
        data[f"{prefix}-user"] = user.pk
        data[f"{prefix}-role"] = role(role_name).pk
        if delete:
            data[f"{prefix}-DELETE"] = "on"
    return data


def change_team(admin, team, data):
    return admin.post(f"/admin/readiness/team/{team.pk}/change/", data)


def test_the_team_admin_audits_members_and_roles_in_one_save(
    admin, admin_user, team, member, outsider
):
    lee_security = RoleMembership.objects.create(team=team, user=member, role=role("Security"))
    data = team_form(
        team,
        members=[member, outsider],
        rows=[(lee_security, member, "Security", True), (None, outsider, "DevOps", False)],
    )
    response = change_team(admin, team, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert set(team.members.all()) == {member, outsider}
    assert list(RoleMembership.objects.values_list("user__username", "role__name")) == [
        ("olga", "DevOps")
    ]
    # Members before roles: olga's role needs her in the team.
    assert actions() == ["team.member_added", "membership.removed", "membership.added"]
    audited = AuditEvent.objects.filter(deployment__isnull=True).exclude(action="template.imported")
    assert set(audited.values_list("actor", flat=True)) == {admin_user.pk}
    assert verify_all().ok


def test_removing_a_member_in_the_team_admin_removes_and_audits_their_roles(admin, team, member):
    other = UserFactory(username="sam")
    team.members.add(other)
    lee_security = RoleMembership.objects.create(team=team, user=member, role=role("Security"))
    data = team_form(team, members=[other], rows=[(lee_security, member, "Security", False)])
    response = change_team(admin, team, data)
    assert response.status_code == 302
    assert list(team.members.all()) == [other]
    assert not RoleMembership.objects.exists()
    assert actions() == ["membership.removed", "team.member_removed"]
    removed = AuditEvent.objects.get(action="team.member_removed")
    assert removed.before == {"team": "payments", "member": "lee", "roles": ["Security"]}


def test_changing_a_role_row_in_the_team_admin_is_a_removal_and_an_addition(admin, team, member):
    lee_security = RoleMembership.objects.create(team=team, user=member, role=role("Security"))
    data = team_form(team, members=[member], rows=[(lee_security, member, "DevOps", False)])
    assert change_team(admin, team, data).status_code == 302
    assert list(RoleMembership.objects.values_list("role__name", flat=True)) == ["DevOps"]
    assert actions() == ["membership.removed", "membership.added"]
    removed, added = AuditEvent.objects.filter(action__startswith="membership.").order_by("id")
    assert removed.before["role"] == "Security" and added.after["role"] == "DevOps"


def test_the_team_admin_refuses_a_role_for_someone_it_does_not_make_a_member(
    admin, team, member, outsider
):
    data = team_form(team, members=[member], rows=[(None, outsider, "DevOps", False)])
    response = change_team(admin, team, data)
    assert response.status_code == 200
    assert "olga is not a member of Payments" in response.content.decode()
    assert not RoleMembership.objects.exists()
    assert actions() == []


def test_saving_the_team_unchanged_records_nothing(admin, team, member):
    lee_security = RoleMembership.objects.create(team=team, user=member, role=role("Security"))
    data = team_form(team, members=[member], rows=[(lee_security, member, "Security", False)])
    assert change_team(admin, team, data).status_code == 302
    assert actions() == []


def test_adding_a_team_with_members_in_the_admin_is_audited(admin, member):
    data = {
        "name": "Ledger",
        "slug": "ledger",
        "members": [member.pk],
        "roles-TOTAL_FORMS": "1",
        "roles-INITIAL_FORMS": "0",
        "roles-MIN_NUM_FORMS": "0",
        "roles-MAX_NUM_FORMS": "1000",
        "roles-0-user": member.pk,
        "roles-0-role": role("Product").pk,
    }
    response = admin.post("/admin/readiness/team/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert actions() == ["team.member_added", "membership.added"]


def test_deleting_a_team_in_the_admin_records_who_left_it(admin, member, outsider):
    from readiness.checklists.models import Team

    search = Team.objects.get(slug="search")
    RoleMembership.objects.create(team=search, user=outsider, role=role("Security"))
    response = admin.post(f"/admin/readiness/team/{search.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Team.objects.filter(slug="search").exists()
    assert actions() == ["membership.removed", "team.member_removed", "team.deleted"]
    assert verify_all().ok


# Template item owners.


def section_form(section, owners: dict[int, int | None]) -> dict:
    items = list(section.items.order_by("position"))
    data = {
        "items-TOTAL_FORMS": str(len(items)),
        "items-INITIAL_FORMS": str(len(items)),
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
    }
    for number, item in enumerate(items):
        owner = owners.get(item.pk, item.owner_role_id)
        data[f"items-{number}-id"] = item.pk
        data[f"items-{number}-section"] = section.pk
        data[f"items-{number}-owner_role"] = owner or ""
    return data


def test_changing_an_items_owner_in_the_admin_is_audited(admin, admin_user):
    section = default_template().sections.get(title="Security")
    item = section.items.order_by("position").first()
    assert item.owner_role.name == "Security"
    url = f"/admin/readiness/templatesection/{section.pk}/change/"
    response = admin.post(url, section_form(section, {item.pk: role("DevOps").pk}))
    assert response.status_code == 302, response.content.decode()[:2000]
    item.refresh_from_db()
    assert item.owner_role.name == "DevOps"
    [event] = AuditEvent.objects.filter(action="template.owner_changed")
    assert event.actor == admin_user and event.deployment is None
    assert event.object_type == "readiness.templateitem" and event.object_id == str(item.pk)
    assert event.before["owner_role"] == "Security" and event.after["owner_role"] == "DevOps"
    assert event.after["item"] == item.title and event.after["section"] == "Security"


def test_clearing_an_items_owner_is_audited_and_unchanged_items_are_not(admin):
    section = default_template().sections.get(title="Testing")
    item = section.items.order_by("position").last()
    url = f"/admin/readiness/templatesection/{section.pk}/change/"
    assert admin.post(url, section_form(section, {item.pk: None})).status_code == 302
    [event] = AuditEvent.objects.filter(action="template.owner_changed")
    assert event.before["owner_role"] == "Tech Lead" and event.after["owner_role"] is None
    assert TemplateItem.objects.get(pk=item.pk).owner_role is None


def test_template_items_and_sections_cannot_be_deleted_in_the_admin(admin):
    section = default_template().sections.get(title="Security")
    page = admin.get(f"/admin/readiness/templatesection/{section.pk}/change/").content.decode()
    assert 'name="items-0-DELETE"' not in page
    assert admin.get(f"/admin/readiness/templatesection/{section.pk}/delete/").status_code == 403
    assert admin.get("/admin/readiness/templatesection/add/").status_code == 403


# Read-only admins.


def test_deployments_are_read_only_in_the_admin(admin, deployment):
    base = f"/admin/readiness/deployment/{deployment.pk}"
    assert admin.get("/admin/readiness/deployment/").status_code == 200
    assert admin.get(f"{base}/change/").status_code == 200  # view only
    assert admin.post(f"{base}/change/", {"service": "renamed"}).status_code == 403
    assert admin.post(f"{base}/delete/", {"post": "yes"}).status_code == 403
    assert admin.get("/admin/readiness/deployment/add/").status_code == 403
    deployment.refresh_from_db()
    assert deployment.service == "payments-api"
    assert Deployment.objects.count() == 1


@pytest.fixture
def signoff(deployment, team, member):
    signers = signers_for(team)
    complete_items(deployment, "security")
    services.signoff_request(deployment=deployment, user=member)
    return sign(deployment, signers["security"], "security")


def test_signoffs_cannot_be_changed_or_deleted_in_the_admin(admin, signoff):
    base = f"/admin/signoff/signoff/{signoff.pk}"
    listing = admin.get("/admin/signoff/signoff/")
    assert listing.status_code == 200
    assert signoff.printed_name in listing.content.decode()
    view = admin.get(f"{base}/change/")
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert admin.post(f"{base}/change/", {"comment": "edited"}).status_code == 403
    assert admin.get(f"{base}/delete/").status_code == 403
    assert admin.post(f"{base}/delete/", {"post": "yes"}).status_code == 403
    assert admin.get("/admin/signoff/signoff/add/").status_code == 403
    response = admin.post(
        "/admin/signoff/signoff/",
        {"action": "delete_selected", "_selected_action": [signoff.pk], "post": "yes"},
    )
    assert SignOff.objects.filter(pk=signoff.pk, comment="").exists()
    assert response.status_code in (200, 302)


def test_audit_events_cannot_be_changed_or_deleted_in_the_admin(admin, deployment):
    event = AuditEvent.objects.get(deployment=deployment)
    base = f"/admin/readiness/auditevent/{event.pk}"
    listing = admin.get("/admin/readiness/auditevent/?q=deployment.created")
    assert listing.status_code == 200
    assert event.hash[:12] in listing.content.decode()
    assert admin.get(f"{base}/change/").status_code == 200
    assert admin.post(f"{base}/change/", {"reason": "edited"}).status_code == 403
    assert admin.get(f"{base}/delete/").status_code == 403
    assert admin.post(f"{base}/delete/", {"post": "yes"}).status_code == 403
    assert admin.get("/admin/readiness/auditevent/add/").status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).hash == event.hash
    assert verify_all().ok


@pytest.mark.parametrize("model", ["revocation", "waiver"])
def test_revocations_and_waivers_are_read_only_in_the_admin(admin, model):
    assert admin.get(f"/admin/signoff/{model}/").status_code == 200
    assert admin.get(f"/admin/signoff/{model}/add/").status_code == 403


def test_the_audit_trail_keeps_its_old_admin_address(admin, deployment):
    event = AuditEvent.objects.get(deployment=deployment)
    response = admin.get(f"/admin/signoff/auditevent/{event.pk}/change/?_changelist_filters=x")
    assert response.status_code == 302
    assert response["Location"] == (
        f"/admin/readiness/auditevent/{event.pk}/change/?_changelist_filters=x"
    )
    assert admin.get(response["Location"]).status_code == 200
