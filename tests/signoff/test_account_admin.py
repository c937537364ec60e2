"""Accounts, groups and roles in the Django admin: a user the record names is deactivated,
never deleted; every change that decides who may sign is an audit event."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models.deletion import ProtectedError
from django.test import Client
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.checklists import services as checklist_services
from readiness.checklists.models import ChecklistItem, ItemStatus
from signoff.lifecycle import services
from signoff.teams import accounts
from signoff.teams import services as memberships
from signoff.teams.models import Role, RoleMembership
from tests.factories import PASSWORD, UserFactory, grant
from tests.signoff_helpers import complete_items, give_role, sign, signers_for

pytestmark = pytest.mark.django_db

User = get_user_model()
USERS = "/admin/auth/user/"


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin(root) -> Client:
    client = Client()
    client.force_login(root)
    return client


@pytest.fixture
def account_admin(db):
    """Staff who may edit accounts (auth.change_user etc.) but is not a superuser."""
    user = UserFactory(username="ava", is_staff=True)
    return grant(user, "auth.view_user", "auth.change_user", "auth.delete_user")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# Logins and failed logins are audited too (tests/signoff/web/test_authentication.py); these
# tests are about what administrators change.
SESSION_ACTIONS = ("user.logged_in", "user.logged_out", "user.login_failed")


def events(prefix: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action__startswith=prefix)
        .exclude(action__in=SESSION_ACTIONS)
        .order_by("id")
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def change_form(user, **changes) -> dict:
    """The user change form as the browser posts it, with `changes` applied."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": [group.pk for group in user.groups.all()],
        "user_permissions": [permission.pk for permission in user.user_permissions.all()],
    }
    data.update(changes)
    # An unticked checkbox is absent from the post.
    return {key: value for key, value in data.items() if value is not False}


# What makes the record name a user: each through the app's own services.


def _signed(deployment, team, member):
    signers = signers_for(team)
    complete_items(deployment, "security")
    services.signoff_request(deployment=deployment, user=member)
    sign(deployment, signers["security"], "security")
    return signers["security"], "sign offs"


def _revoked(deployment, team, member):
    signers = signers_for(team)
    complete_items(deployment, "security")
    services.signoff_request(deployment=deployment, user=member)
    signoff = sign(deployment, signers["security"], "security")
    revoker = UserFactory(username="rex")
    give_role(revoker, team, "security")
    services.signoff_revoke(signoff=signoff, user=revoker, reason="signed too early")
    return revoker, "revocations"


def _waived(deployment, team, member):
    signers = signers_for(team)
    item = ChecklistItem.objects.filter(
        section__deployment=deployment, owner_role__slug="security", status=ItemStatus.OPEN
    ).first()
    services.waiver_grant(
        item=item,
        user=signers["security"],
        reason="accepted until the next release",
        expires_at=timezone.now() + datetime.timedelta(days=7),
    )
    return signers["security"], "waivers"


def _changed_an_item(deployment, team, member):
    editor = UserFactory(username="eve")
    give_role(editor, team, "security")  # MFA is Security's
    item = ChecklistItem.objects.get(section__deployment=deployment, title="MFA")
    checklist_services.item_update(
        item=item,
        user=editor,
        expected_version=item.version,
        status=ItemStatus.DONE,
        note="checked",
        evidence_url="",
        na_reason="",
    )
    return editor, "item changes"


def _acted_in_the_audit_trail(deployment, team, member):
    importer = grant(UserFactory(username="ian"), "readiness.import_template")
    checklist_services.template_import(
        source="# Mini\n## Security\n- [ ] **MFA:** on\n", user=importer
    )
    return importer, "audit events"


HISTORY = {
    "signed": _signed,
    "revoked": _revoked,
    "granted a waiver": _waived,
    "changed an item": _changed_an_item,
    "acted in an audit event": _acted_in_the_audit_trail,
}


@pytest.fixture(params=list(HISTORY))
def named_user(request, deployment, team, member):
    """(user, what names them) for each kind of history."""
    return HISTORY[request.param](deployment, team, member)


def test_deleting_a_user_the_record_names_is_refused_in_the_admin(admin, named_user):
    user, kind = named_user
    before = AuditEvent.objects.count()
    for response in (
        admin.get(f"{USERS}{user.pk}/delete/", follow=True),
        admin.post(f"{USERS}{user.pk}/delete/", {"post": "yes"}, follow=True),
    ):
        assert response.status_code == 200
        assert response.redirect_chain[-1][0] == f"{USERS}{user.pk}/change/"
        [message] = messages_of(response)
        assert f"{user.username} cannot be deleted" in message
        assert kind in message
        assert "Deactivate the account instead" in message
    assert User.objects.filter(pk=user.pk).exists()
    assert AuditEvent.objects.count() == before


def test_the_orm_and_the_database_refuse_to_delete_a_user_the_record_names(named_user):
    user, _kind = named_user
    with pytest.raises(ProtectedError), transaction.atomic():
        user.delete()
    # Straight to the database: the foreign keys (deferred) refuse it at the check.
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM auth_user_groups WHERE user_id = %s", [user.pk])
            cursor.execute("DELETE FROM auth_user WHERE id = %s", [user.pk])
        connection.check_constraints()
    assert User.objects.filter(pk=user.pk).exists()


def test_the_service_refuses_to_delete_a_user_the_record_names(root, named_user):
    user, kind = named_user
    with pytest.raises(accounts.UserHasHistory, match=kind):
        accounts.user_delete(user=user, actor=root)
    assert User.objects.filter(pk=user.pk).exists()
    assert not events("user.deleted")


def test_a_user_the_record_never_names_is_deleted_with_their_places_audited(admin, root, team):
    newcomer = UserFactory(username="nina")
    team.members.add(newcomer)
    RoleMembership.objects.create(team=team, user=newcomer, role=Role.objects.get(slug="devops"))
    response = admin.post(f"{USERS}{newcomer.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == USERS
    assert not User.objects.filter(username="nina").exists()
    assert [event.action for event in events("")][-3:] == [
        "membership.removed",
        "team.member_removed",
        "user.deleted",
    ]
    [deleted] = events("user.deleted")
    assert deleted.actor == root and deleted.object_type == "auth.user"
    assert deleted.before["username"] == "nina" and deleted.before["teams"] == ["payments"]


def test_the_user_list_offers_deactivation_not_bulk_deletion(admin, member, root):
    page = admin.get(USERS).content.decode()
    assert 'value="deactivate_selected"' in page
    assert 'value="delete_selected"' not in page
    response = admin.post(USERS, {"action": "deactivate_selected", "_selected_action": [member.pk]})
    assert response.status_code == 302
    member.refresh_from_db()
    assert not member.is_active
    [event] = events("user.deactivated")
    assert event.actor == root and event.after == {"user": "lee", "is_active": False}


# Changes to an account.


def test_deactivating_and_reactivating_a_user_are_audited(admin, root, member):
    response = admin.post(f"{USERS}{member.pk}/change/", change_form(member, is_active=False))
    assert response.status_code == 302, response.content.decode()[:2000]
    member.refresh_from_db()
    assert not member.is_active
    assert not Client().login(username="lee", password=PASSWORD)
    response = admin.post(f"{USERS}{member.pk}/change/", change_form(member, is_active=True))
    assert response.status_code == 302
    assert [(e.action, e.before, e.after) for e in events("user.")] == [
        (
            "user.deactivated",
            {"user": "lee", "is_active": True},
            {"user": "lee", "is_active": False},
        ),
        (
            "user.reactivated",
            {"user": "lee", "is_active": False},
            {"user": "lee", "is_active": True},
        ),
    ]
    assert {event.actor for event in events("user.")} == {root}


def test_granting_staff_groups_and_permissions_is_audited(admin, root, member):
    managers = Group.objects.create(name="Team managers")
    manage_teams = Permission.objects.get(codename="manage_teams")
    data = change_form(
        member, is_staff=True, groups=[managers.pk], user_permissions=[manage_teams.pk]
    )
    assert admin.post(f"{USERS}{member.pk}/change/", data).status_code == 302
    member.refresh_from_db()
    assert member.is_staff and member.has_perm("signoff.manage_teams")
    [event] = events("user.")
    assert event.action == "user.privileges_changed" and event.actor == root
    assert event.before == {"user": "lee", "is_staff": False, "groups": [], "permissions": []}
    assert event.after == {
        "user": "lee",
        "is_staff": True,
        "groups": ["Team managers"],
        "permissions": ["signoff.manage_teams"],
    }
    # Withdrawn again: the opposite event.
    assert (
        admin.post(
            f"{USERS}{member.pk}/change/",
            change_form(member, is_staff=False, groups=[], user_permissions=[]),
        ).status_code
        == 302
    )
    withdrawn = events("user.privileges_changed")[-1]
    assert withdrawn.before["permissions"] == ["signoff.manage_teams"]
    assert withdrawn.after == {"user": "lee", "is_staff": False, "groups": [], "permissions": []}


def test_a_profile_edit_is_audited_and_an_unchanged_save_records_nothing(admin, member):
    assert admin.post(f"{USERS}{member.pk}/change/", change_form(member)).status_code == 302
    assert not events("user.")
    response = admin.post(f"{USERS}{member.pk}/change/", change_form(member, last_name="Nguyen"))
    assert response.status_code == 302
    [event] = events("user.")
    assert event.action == "user.changed"
    assert event.before == {"user": "lee", "last_name": "Tran"}
    assert event.after == {"user": "lee", "last_name": "Nguyen"}


def test_an_account_admin_who_is_not_a_superuser_cannot_grant_privileges(
    account_admin, member, root
):
    client = logged_in(account_admin)
    page = client.get(f"{USERS}{member.pk}/change/").content.decode()
    assert 'name="is_superuser"' not in page and 'name="user_permissions"' not in page
    # Posted anyway: the form ignores read-only fields; the service is the gate.
    response = client.post(
        f"{USERS}{member.pk}/change/", change_form(member, is_superuser=True, is_staff=True)
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert not member.is_superuser and not member.is_staff
    with pytest.raises(PermissionDenied):
        accounts.user_update(user=member, actor=account_admin, values={"is_superuser": True})
    with pytest.raises(PermissionDenied):
        accounts.user_update(
            user=member,
            actor=account_admin,
            permissions=[Permission.objects.get(codename="manage_teams")],
        )
    # Nor touch a superuser's account (their password would be theirs to take).
    assert (
        client.post(
            f"{USERS}{root.pk}/password/", {"password1": "x" * 20, "password2": "x" * 20}
        ).status_code
        == 403
    )
    with pytest.raises(PermissionDenied):
        accounts.user_password_set(user=root, password="another long one", actor=account_admin)
    assert not events("user.privileges_changed") and not events("user.password")


def test_an_account_admin_may_still_deactivate_a_user(account_admin, member):
    client = logged_in(account_admin)
    response = client.post(f"{USERS}{member.pk}/change/", change_form(member, is_active=False))
    assert response.status_code == 302
    [event] = events("user.")
    assert event.action == "user.deactivated" and event.actor == account_admin


def test_an_administrator_setting_a_password_is_audited_without_the_password(admin, root, member):
    new = "a brand new passphrase"
    response = admin.post(
        f"{USERS}{member.pk}/password/",
        {"password1": new, "password2": new, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == f"{USERS}{member.pk}/change/"
    assert Client().login(username="lee", password=new)
    [event] = events("user.")
    assert event.action == "user.password_set" and event.actor == root
    assert event.object_type == "auth.user" and event.object_id == str(member.pk)
    assert event.after == {"user": "lee", "usable_password": True}
    member.refresh_from_db()
    assert new not in str(event.after) and member.password not in str(event.after)


def test_disabling_password_sign_in_is_audited(admin, member):
    response = admin.post(
        f"{USERS}{member.pk}/password/", {"usable_password": "false", "unset-password": "1"}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert not member.has_usable_password()
    [event] = events("user.")
    assert event.action == "user.password_disabled"


def test_an_invalid_password_form_changes_and_records_nothing(admin, member):
    response = admin.post(
        f"{USERS}{member.pk}/password/", {"password1": "short", "password2": "other"}
    )
    assert response.status_code == 200
    assert Client().login(username="lee", password=PASSWORD)
    assert not events("user.")


def test_adding_a_user_in_the_admin_is_audited(admin, root):
    response = admin.post(
        f"{USERS}add/",
        {
            "username": "newbie",
            "usable_password": "true",
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(username="newbie")
    [event] = events("user.")
    assert event.action == "user.created" and event.object_id == str(user.pk)
    assert event.after["usable_password"] is True and event.after["is_staff"] is False


# Roles and groups.


def test_renaming_a_role_is_audited(admin, root):
    security = Role.objects.get(slug="security")
    response = admin.post(
        f"/admin/signoff/role/{security.pk}/change/",
        {
            "name": "Security & Compliance",
            "slug": "security",
            "position": security.position,
            "description": security.description,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    [event] = events("role.")
    assert event.action == "role.renamed" and event.actor == root
    assert event.before == {"role": "Security", "name": "Security"}
    assert event.after == {"role": "Security & Compliance", "name": "Security & Compliance"}
    assert event.object_type == "signoff.role" and event.deployment is None


def test_adding_and_deleting_a_role_are_audited(admin):
    response = admin.post(
        "/admin/signoff/role/add/",
        {"name": "Legal", "slug": "legal", "position": 9, "description": ""},
    )
    assert response.status_code == 302
    legal = Role.objects.get(slug="legal")
    assert admin.post(f"/admin/signoff/role/{legal.pk}/delete/", {"post": "yes"}).status_code == 302
    assert [event.action for event in events("role.")] == ["role.created", "role.deleted"]


def test_a_role_someone_holds_cannot_be_deleted(admin, team, member):
    devops = Role.objects.get(slug="devops")
    RoleMembership.objects.create(team=team, user=member, role=devops)
    response = admin.post(f"/admin/signoff/role/{devops.pk}/delete/", {"post": "yes"})
    assert response.status_code == 200  # Django's page listing what protects it
    assert Role.objects.filter(pk=devops.pk).exists()
    assert not events("role.")


def test_a_role_change_needs_the_manage_teams_permission(member):
    staff = grant(UserFactory(username="sid", is_staff=True), "signoff.change_role")
    security = Role.objects.get(slug="security")
    with pytest.raises(PermissionDenied):
        memberships.role_update(role=security, actor=staff, name="Sec")
    response = logged_in(staff).post(
        f"/admin/signoff/role/{security.pk}/change/",
        {"name": "Sec", "slug": "security", "position": 1, "description": ""},
    )
    assert response.status_code == 403
    assert Role.objects.get(pk=security.pk).name == "Security"


def test_changing_a_groups_permissions_is_audited(admin, root, member):
    managers = Group.objects.create(name="Team managers")
    member.groups.add(managers)
    manage_teams = Permission.objects.get(codename="manage_teams")
    response = admin.post(
        f"/admin/auth/group/{managers.pk}/change/",
        {"name": "Team managers", "permissions": [manage_teams.pk]},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(pk=member.pk).has_perm("signoff.manage_teams")
    [event] = events("group.")
    assert event.action == "group.changed" and event.actor == root
    assert event.before["permissions"] == []
    assert event.after == {
        "group": "Team managers",
        "permissions": ["signoff.manage_teams"],
        "members": ["lee"],
    }


def test_only_superusers_change_groups(account_admin):
    grant(account_admin, "auth.change_group", "auth.add_group")
    assert logged_in(account_admin).get("/admin/auth/group/add/").status_code == 403
    with pytest.raises(PermissionDenied):
        accounts.group_save(group=Group(name="x"), permissions=[], actor=account_admin)
