"""Team pages: who sees them, who may change them, and that every change is audited."""

import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from readiness.audit.models import AuditEvent
from readiness.audit.verification import verify_all
from readiness.checklists.models import Team
from signoff.teams import services as memberships
from signoff.teams.models import Role, RoleMembership
from tests.factories import PASSWORD, TeamFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
PLAIN_AND_HTMX = pytest.mark.parametrize(
    "headers", [pytest.param({}, id="plain"), pytest.param(HTMX, id="htmx")]
)
# Session, user, the manager's permissions (user and group, read once per request), team,
# members, role memberships, roles, and the two selects of the role form (members, roles);
# the same for 3 members as for 30.
TEAM_PAGE_MAX = 10
TEAM_LIST_MAX = 5  # session, user, the permissions (2), the teams


@pytest.fixture
def staff(db):
    staff = UserFactory(username="ada", first_name="Ada", last_name="Byron", is_staff=True)
    return grant(staff, "signoff.manage_teams")


@pytest.fixture
def security():
    return Role.objects.get(name="Security")


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def team_url(team) -> str:
    return reverse("team_detail", kwargs={"slug": team.slug})


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# Who sees what.


def test_anonymous_visitors_are_sent_to_log_in(team):
    anonymous = Client()
    for response in (
        anonymous.get(reverse("team_list")),
        anonymous.get(team_url(team)),
        anonymous.post(team_url(team), {"action": "member_add", "username": "olga"}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    assert not team.members.filter(username="olga").exists()


def test_the_team_list_shows_a_members_own_teams_only(team, member, outsider):
    page = logged_in(member).get(reverse("team_list")).content.decode()
    assert "Payments" in page
    assert "Search" not in page


def test_the_team_list_shows_staff_every_team(team, outsider, staff):
    page = logged_in(staff).get(reverse("team_list")).content.decode()
    assert "Payments" in page and "Search" in page


@PLAIN_AND_HTMX
def test_someone_outside_the_team_gets_a_404(team, outsider, headers):
    client = logged_in(outsider)
    assert client.get(team_url(team), headers=headers).status_code == 404
    response = client.post(
        team_url(team), {"action": "member_add", "username": "olga"}, headers=headers
    )
    assert response.status_code == 404
    assert not team.members.filter(username="olga").exists()


def test_an_unknown_team_is_a_404(staff):
    assert logged_in(staff).get("/teams/nope/").status_code == 404


def test_a_member_sees_who_holds_each_role_without_forms(team, member, security):
    RoleMembership.objects.create(team=team, user=member, role=security)
    response = logged_in(member).get(team_url(team))
    assert response.status_code == 200
    page = response.content.decode()
    for role in ("Tech Lead", "Security", "DevOps", "Product"):
        assert role in page
    assert "Lee Tran" in page and "<code>lee</code>" in page
    assert '<form method="post" action="/teams/' not in page
    assert 'name="action"' not in page
    assert "Only an administrator can change" in page


def test_the_htmx_request_gets_only_the_team_panel(team, member):
    response = logged_in(member).get(team_url(team), headers=HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="team-panel"')
    assert "<html" not in page


def test_staff_see_the_forms(team, staff):
    page = logged_in(staff).get(team_url(team)).content.decode()
    assert 'value="role_add"' in page and 'value="member_add"' in page
    assert 'value="member_remove"' in page
    assert 'hx-post="/teams/payments/"' in page


@PLAIN_AND_HTMX
def test_a_member_who_is_not_staff_cannot_change_the_team(
    team, member, outsider, security, headers
):
    client = logged_in(member)
    attempts = [
        {"action": "member_add", "username": outsider.username},
        {"action": "role_add", "user": member.pk, "role": security.pk},
        {"action": "member_remove", "user": member.pk},
    ]
    for data in attempts:
        assert client.post(team_url(team), data, headers=headers).status_code == 403
    assert list(team.members.all()) == [member]
    assert not RoleMembership.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="team.").exists()


def test_a_staff_account_without_the_permission_cannot_give_itself_a_team_or_a_role(
    team, member, security
):
    # The escalation #14 found: is_staff alone let an account join a team, take a role, sign.
    intruder = UserFactory(username="mallory", is_staff=True)
    client = logged_in(intruder)
    page = client.get(reverse("team_list")).content.decode()
    assert "payments" not in page
    assert client.get(team_url(team)).status_code == 404
    with pytest.raises(PermissionDenied):
        memberships.team_member_add(team=team, user=intruder, actor=intruder)
    with pytest.raises(PermissionDenied):
        memberships.membership_add(team=team, user=member, role=security, actor=intruder)
    assert list(team.members.all()) == [member]
    assert not RoleMembership.objects.exists()


# Changes by staff.


def test_staff_give_a_role_to_a_member_and_it_is_audited(team, member, staff, security):
    response = logged_in(staff).post(
        team_url(team), {"action": "role_add", "user": member.pk, "role": security.pk}
    )
    assert response.status_code == 302
    assert response["Location"] == team_url(team)
    membership = RoleMembership.objects.get(team=team, user=member, role=security)
    [event] = events("membership.added")
    assert event.actor == staff
    assert event.deployment is None
    assert event.object_type == "signoff.rolemembership"
    assert event.object_id == str(membership.pk)
    assert event.after == {"team": "payments", "user": "lee", "role": "Security"}
    assert verify_all().ok


def test_an_htmx_change_answers_with_the_panel_and_what_changed(team, member, staff, security):
    response = logged_in(staff).post(
        team_url(team),
        {"action": "role_add", "user": member.pk, "role": security.pk},
        headers=HTMX,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="team-panel"')
    assert "Lee Tran (lee) now holds Security in Payments." in page


@PLAIN_AND_HTMX
def test_a_duplicate_role_is_refused_with_a_message(team, member, staff, security, headers):
    RoleMembership.objects.create(team=team, user=member, role=security)
    response = logged_in(staff).post(
        team_url(team),
        {"action": "role_add", "user": member.pk, "role": security.pk},
        headers=headers,
    )
    assert response.status_code == 400
    assert "lee already holds Security in Payments." in response.content.decode()
    assert RoleMembership.objects.count() == 1
    assert not events("membership.added")


@PLAIN_AND_HTMX
def test_a_role_for_someone_outside_the_team_is_refused(team, outsider, staff, security, headers):
    response = logged_in(staff).post(
        team_url(team),
        {"action": "role_add", "user": outsider.pk, "role": security.pk},
        headers=headers,
    )
    assert response.status_code == 400
    assert "That person is not a member of this team" in response.content.decode()
    assert not RoleMembership.objects.exists()


def test_the_service_refuses_a_role_for_someone_outside_the_team(team, outsider, staff, security):
    with pytest.raises(ValidationError, match="olga is not a member of Payments"):
        memberships.membership_add(team=team, user=outsider, role=security, actor=staff)
    assert not AuditEvent.objects.filter(action="membership.added").exists()


def test_staff_withdraw_a_role(team, member, staff, security):
    membership = RoleMembership.objects.create(team=team, user=member, role=security)
    response = logged_in(staff).post(
        team_url(team), {"action": "role_remove", "membership": membership.pk}
    )
    assert response.status_code == 302
    assert not RoleMembership.objects.exists()
    [event] = events("membership.removed")
    assert event.before == {"team": "payments", "user": "lee", "role": "Security"}
    assert event.object_id == str(membership.pk)


def test_withdrawing_a_role_of_another_team_is_refused(team, outsider, staff, security):
    elsewhere = RoleMembership.objects.create(
        team=Team.objects.get(slug="search"), user=outsider, role=security
    )
    response = logged_in(staff).post(
        team_url(team), {"action": "role_remove", "membership": elsewhere.pk}
    )
    assert response.status_code == 400
    assert "no longer holds that role in this team" in response.content.decode()
    assert RoleMembership.objects.filter(pk=elsewhere.pk).exists()


@PLAIN_AND_HTMX
def test_staff_add_an_existing_user_by_username(team, outsider, staff, headers):
    response = logged_in(staff).post(
        team_url(team), {"action": "member_add", "username": " olga "}, headers=headers
    )
    assert response.status_code == (200 if headers else 302)
    assert team.members.filter(pk=outsider.pk).exists()
    [event] = events("team.member_added")
    assert event.object_type == "readiness.team" and event.object_id == str(team.pk)
    assert event.after == {"team": "payments", "member": "olga"}
    assert event.actor == staff and event.deployment is None


@PLAIN_AND_HTMX
def test_an_unknown_username_is_refused(team, staff, headers):
    response = logged_in(staff).post(
        team_url(team), {"action": "member_add", "username": "nobody"}, headers=headers
    )
    assert response.status_code == 400
    assert "There is no user with the username “nobody”." in response.content.decode()
    assert team.members.count() == 1
    assert not events("team.member_added")


def test_adding_someone_already_in_the_team_is_refused(team, member, staff):
    response = logged_in(staff).post(team_url(team), {"action": "member_add", "username": "lee"})
    assert response.status_code == 400
    assert "lee is already a member of Payments." in response.content.decode()
    assert not events("team.member_added")


def test_removing_a_member_removes_their_roles_there_too(team, member, outsider, staff, security):
    devops = Role.objects.get(name="DevOps")
    RoleMembership.objects.create(team=team, user=member, role=security)
    RoleMembership.objects.create(team=team, user=member, role=devops)
    search = Team.objects.get(slug="search")
    search.members.add(member)
    kept = RoleMembership.objects.create(team=search, user=member, role=security)
    response = logged_in(staff).post(team_url(team), {"action": "member_remove", "user": member.pk})
    assert response.status_code == 302
    assert not team.members.filter(pk=member.pk).exists()
    assert list(RoleMembership.objects.all()) == [kept]
    removed = events("membership.removed")
    assert [event.before["role"] for event in removed] == ["Security", "DevOps"]
    assert {event.reason for event in removed} == {"lee left Payments"}
    [left] = events("team.member_removed")
    assert left.before == {"team": "payments", "member": "lee", "roles": ["Security", "DevOps"]}
    assert left.pk > removed[-1].pk
    assert verify_all().ok


def test_removing_someone_not_in_the_team_is_refused(team, outsider, staff):
    response = logged_in(staff).post(
        team_url(team), {"action": "member_remove", "user": outsider.pk}
    )
    assert response.status_code == 400
    assert "That person is not a member of this team." in response.content.decode()
    assert not events("team.member_removed")


def test_an_unknown_action_is_a_400(team, staff):
    response = logged_in(staff).post(team_url(team), {"action": "promote"})
    assert response.status_code == 400
    assert "Unknown change" in response.content.decode()


def test_the_services_refuse_anyone_but_staff(team, member, outsider, security):
    with pytest.raises(PermissionDenied):
        memberships.team_member_add(team=team, user=outsider, actor=member)
    with pytest.raises(PermissionDenied):
        memberships.membership_add(team=team, user=member, role=security, actor=member)
    assert not team.members.filter(pk=outsider.pk).exists()
    assert not AuditEvent.objects.exists()


# Query counts.


def team_of(size: int, slug: str) -> Team:
    people = [UserFactory() for _ in range(size)]
    team = TeamFactory(slug=slug, members=people)
    roles = list(Role.objects.all())
    for number, person in enumerate(people):
        RoleMembership.objects.create(team=team, user=person, role=roles[number % len(roles)])
    return team


@PLAIN_AND_HTMX
def test_the_team_page_reads_as_many_queries_for_3_members_as_for_30(
    staff, headers, django_assert_max_num_queries
):
    small, large = team_of(3, "small"), team_of(30, "large")
    client = logged_in(staff)

    def count(team) -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get(team_url(team), headers=headers).status_code == 200
        return len(context.captured_queries)

    assert count(small) == count(large)
    with django_assert_max_num_queries(TEAM_PAGE_MAX):
        client.get(team_url(large), headers=headers)


def test_the_team_list_reads_as_many_queries_for_2_teams_as_for_12(
    staff, django_assert_max_num_queries
):
    client = logged_in(staff)
    for number in range(2):
        team_of(2, f"first-{number}")
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("team_list"))
    for number in range(10):
        team_of(2, f"more-{number}")
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("team_list")).content.decode()
    assert len(re.findall(r'href="/teams/[\w-]+/"', page)) == 12
    assert len(few.captured_queries) == len(many.captured_queries)
    with django_assert_max_num_queries(TEAM_LIST_MAX):
        client.get(reverse("team_list"))
