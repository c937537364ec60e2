"""Who may grant what, over every persona and every granting action, through the pages and
through the services alike (the service is the gate; the page checks too).

Team members and roles are given by holders of signoff.manage_teams (a superuser holds every
permission); templates are imported by holders of readiness.import_template; is_staff alone
grants nothing. Every allowed change leaves its audit event, naming who made it.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from readiness.audit.models import AuditEvent
from readiness.checklists import services as checklist_services
from readiness.checklists.models import ChecklistTemplate, Team, TemplateItem
from readiness.checklists.selectors import default_template
from signoff.teams import services as memberships
from signoff.teams.models import Role, RoleMembership
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

PERSONAS = ("superuser", "staff", "team_admin", "member", "outsider")
TEMPLATE = "# Ledger checklist\n## Security\n- [ ] **MFA:** on for every account\n"


@dataclass
class World:
    users: dict
    team: Team  # payments: lee is a member, holding DevOps; rita is a member
    doomed: Team  # a team with a member and a role, and no deployments: may be deleted
    newcomer: object  # in no team yet
    rita: object
    lee_devops: RoleMembership
    item: TemplateItem  # owned by Security


@pytest.fixture
def world(team, member, outsider) -> World:
    managers = Group.objects.create(name="Team administrators")
    managers.permissions.add(Permission.objects.get(codename="manage_teams"))
    team_admin = UserFactory(username="tara")
    team_admin.groups.add(managers)
    rita = UserFactory(username="rita")
    team.members.add(rita)
    doomed = TeamFactory(name="Ledger", slug="ledger", members=[UserFactory(username="lou")])
    RoleMembership.objects.create(
        team=doomed, user=doomed.members.get(), role=Role.objects.get(slug="product")
    )
    item = default_template().sections.get(title="Security").items.order_by("position").first()
    return World(
        users={
            "superuser": UserFactory(username="root", is_staff=True, is_superuser=True),
            "staff": UserFactory(username="mallory", is_staff=True),
            "team_admin": team_admin,
            "member": member,
            "outsider": outsider,
        },
        team=team,
        doomed=doomed,
        newcomer=UserFactory(username="nina"),
        rita=rita,
        lee_devops=RoleMembership.objects.create(
            team=team, user=member, role=Role.objects.get(slug="devops")
        ),
        item=item,
    )


def security() -> Role:
    return Role.objects.get(slug="security")


# Each action: how the page does it, how the service does it, whether it happened, and the
# audit event it leaves.


@dataclass(frozen=True)
class Action:
    page_kind: str  # "team" (the team page), "admin" (the Django admin), "import" (the page)
    page: object  # (client, world) -> response
    service: object  # (actor, world) -> None
    done: object  # (world) -> bool
    audited: str


def _team_post(client, world, data):
    return client.post(reverse("team_detail", kwargs={"slug": world.team.slug}), data)


def _section_form(item, role) -> dict:
    items = list(item.section.items.order_by("position"))
    data = {
        "items-TOTAL_FORMS": str(len(items)),
        "items-INITIAL_FORMS": str(len(items)),
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
    }
    for number, each in enumerate(items):
        owner = role.pk if each.pk == item.pk else each.owner_role_id
        data[f"items-{number}-id"] = each.pk
        data[f"items-{number}-section"] = item.section_id
        data[f"items-{number}-owner_role"] = owner or ""
    return data


ACTIONS = {
    "add member": Action(
        "team",
        lambda client, w: _team_post(
            client, w, {"action": "member_add", "username": w.newcomer.username}
        ),
        lambda actor, w: memberships.team_member_add(team=w.team, user=w.newcomer, actor=actor),
        lambda w: w.team.members.filter(pk=w.newcomer.pk).exists(),
        "team.member_added",
    ),
    "remove member": Action(
        "team",
        lambda client, w: _team_post(client, w, {"action": "member_remove", "user": w.rita.pk}),
        lambda actor, w: memberships.team_member_remove(team=w.team, user=w.rita, actor=actor),
        lambda w: not w.team.members.filter(pk=w.rita.pk).exists(),
        "team.member_removed",
    ),
    "grant role": Action(
        "team",
        lambda client, w: _team_post(
            client,
            w,
            {"action": "role_add", "user": w.users["member"].pk, "role": security().pk},
        ),
        lambda actor, w: memberships.membership_add(
            team=w.team, user=w.users["member"], role=security(), actor=actor
        ),
        lambda w: RoleMembership.objects.filter(team=w.team, role=security()).exists(),
        "membership.added",
    ),
    "withdraw role": Action(
        "team",
        lambda client, w: _team_post(
            client, w, {"action": "role_remove", "membership": w.lee_devops.pk}
        ),
        lambda actor, w: memberships.membership_remove(membership=w.lee_devops, actor=actor),
        lambda w: not RoleMembership.objects.filter(pk=w.lee_devops.pk).exists(),
        "membership.removed",
    ),
    "delete team": Action(
        "admin",
        lambda client, w: client.post(
            f"/admin/readiness/team/{w.doomed.pk}/delete/", {"post": "yes"}
        ),
        lambda actor, w: memberships.team_delete(team=w.doomed, actor=actor),
        lambda w: not Team.objects.filter(pk=w.doomed.pk).exists(),
        "team.deleted",
    ),
    "import template": Action(
        "import",
        lambda client, w: client.post(
            reverse("template_import"),
            {"file": SimpleUploadedFile("ledger.md", TEMPLATE.encode()), "name": ""},
        ),
        lambda actor, w: checklist_services.template_import(source=TEMPLATE, user=actor),
        lambda w: ChecklistTemplate.objects.filter(name="Ledger checklist").exists(),
        "template.imported",
    ),
    "change item owner": Action(
        "admin",
        lambda client, w: client.post(
            f"/admin/readiness/templatesection/{w.item.section_id}/change/",
            _section_form(w.item, Role.objects.get(slug="devops")),
        ),
        lambda actor, w: memberships.template_item_owner_set(
            item=w.item, role=Role.objects.get(slug="devops"), actor=actor
        ),
        lambda w: TemplateItem.objects.get(pk=w.item.pk).owner_role.slug == "devops",
        "template.owner_changed",
    ),
}

# Who may, through the services: the named permission decides.
ALLOWED = {
    "superuser": set(ACTIONS),
    "team_admin": set(ACTIONS) - {"import template"},
}
# The pages add one condition: the Django admin is for staff, and a team administrator who
# is not staff does these two there (or through the services) only once made staff.
ALLOWED_ON_PAGES = {
    "superuser": set(ACTIONS),
    "team_admin": {"add member", "remove member", "grant role", "withdraw role"},
}


def refused_status(persona: str, page_kind: str):
    """How a page refuses: a team page hides a team from anyone outside it (404) and tells a
    member they may not (403); the admin sends non-staff to its login and refuses staff
    without the permission (403); the import page answers 403."""
    if page_kind == "team":
        return 403 if persona == "member" else 404
    if page_kind == "admin":
        return 403 if persona == "staff" else "login"
    return 403


def audited_by(action: Action, actor) -> bool:
    return AuditEvent.objects.filter(action=action.audited, actor=actor).exists()


MATRIX = [
    pytest.param(persona, name, id=f"{persona}-{name.replace(' ', '-')}")
    for persona in PERSONAS
    for name in ACTIONS
]


@pytest.mark.parametrize(("persona", "name"), MATRIX)
def test_the_pages(world, persona, name):
    action, actor = ACTIONS[name], world.users[persona]
    client = Client()
    client.force_login(actor)
    response = action.page(client, world)
    if name in ALLOWED_ON_PAGES.get(persona, set()):
        assert response.status_code == 302, response.content.decode()[:2000]
        assert "/login/" not in response["Location"]
        assert action.done(world)
        assert audited_by(action, actor)
        return
    expected = refused_status(persona, action.page_kind)
    if expected == "login":
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    else:
        assert response.status_code == expected
    assert not action.done(world)
    assert not AuditEvent.objects.filter(action=action.audited).exists()


@pytest.mark.parametrize(("persona", "name"), MATRIX)
def test_the_services(world, persona, name):
    action, actor = ACTIONS[name], world.users[persona]
    if name in ALLOWED.get(persona, set()):
        action.service(actor, world)
        assert action.done(world)
        assert audited_by(action, actor)
        return
    with pytest.raises(PermissionDenied):
        action.service(actor, world)
    assert not action.done(world)
    assert not AuditEvent.objects.filter(action=action.audited).exists()


def test_the_matrix_covers_every_persona_and_action():
    assert len(MATRIX) == len(PERSONAS) * len(ACTIONS) == 35
    assert set(ALLOWED) <= set(PERSONAS) and set(ALLOWED_ON_PAGES) <= set(PERSONAS)
