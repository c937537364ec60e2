"""User accounts and permission groups, as administrators change them.

Who may sign is decided by the account (active, its password), its privileges (staff,
superuser, groups, permissions such as "manage teams") and its memberships. Every change to
them is written to the audit trail in the transaction of the change; the Django admin calls
these functions instead of saving the forms itself.

Privileges are granted by superusers only: an account that may edit users (auth.change_user)
but is not a superuser could otherwise make itself one. For the same reason it cannot touch a
superuser's account at all.

A user who appears in the record (signed, revoked, waived, changed an item, acted in any
audit event...) is never deleted: every such reference is a PROTECT foreign key, so the
database refuses, and `user_delete` says so. Deactivate the account instead.
"""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models.deletion import ProtectedError

from readiness.audit.services import audit_record
from signoff.teams import services as memberships
from signoff.teams.models import RoleMembership

PROFILE_FIELDS = ("username", "first_name", "last_name", "email")
PRIVILEGE_FIELDS = ("is_staff", "is_superuser")


class UserHasHistory(ValidationError):
    """The user appears in the record: deactivate instead of deleting."""


def _name(user) -> str:
    return user.get_username()


def _require(actor, permission: str) -> None:
    if not (getattr(actor, "is_authenticated", False) and actor.has_perm(permission)):
        raise PermissionDenied(f"Changing user accounts needs the permission “{permission}”.")


def _require_superuser(actor, what: str) -> None:
    if not getattr(actor, "is_superuser", False):
        raise PermissionDenied(f"Only a superuser {what}.")


def _guard_account(actor, user, permission: str) -> None:
    _require(actor, permission)
    if user.is_superuser and user.pk != actor.pk:
        _require_superuser(actor, "changes a superuser's account")


def _permission_names(permissions: Iterable[Permission]) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions)


def _privileges(user) -> dict:
    return {
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "permissions": _permission_names(
            user.user_permissions.select_related("content_type").all()
        ),
    }


def user_history(user) -> list[str]:
    """What in the record names this user (one entry per kind), empty when nothing does:
    every foreign key to users that PROTECTs them, one EXISTS query each."""
    found = []
    for relation in user._meta.get_fields(include_hidden=True):  # related_name="+" too
        if not (relation.auto_created and not relation.concrete):
            continue
        if getattr(relation, "on_delete", None) is not models.PROTECT:
            continue
        related = relation.related_model
        if related._base_manager.filter(**{relation.field.name: user}).exists():
            name = str(related._meta.verbose_name_plural)
            if name not in found:
                found.append(name)
    return sorted(found)


def deletion_refusal(user, history: list[str]) -> str:
    return (
        f"{_name(user)} cannot be deleted: the record names them ({', '.join(history)}). "
        "Deactivate the account instead (untick “Active”): they can no longer sign in, and "
        "everything they did keeps their name."
    )


@transaction.atomic
def user_create(*, user, actor):
    """Save a new account built by a form (`user` unsaved, password already hashed)."""
    _require(actor, "auth.add_user")
    if user.is_staff or user.is_superuser:
        _require_superuser(actor, "creates staff or superuser accounts")
    user.save(force_insert=True)
    audit_record(
        actor=actor,
        action="user.created",
        obj=user,
        after={
            **{field: getattr(user, field) for field in PROFILE_FIELDS},
            "is_active": user.is_active,
            "usable_password": user.has_usable_password(),
            **_privileges(user),
        },
    )
    return user


@transaction.atomic
def user_update(
    *,
    user,
    actor,
    values: dict | None = None,
    groups: Iterable[Group] | None = None,
    permissions: Iterable[Permission] | None = None,
):
    """Apply an administrator's edit of an account: profile fields, `is_active`,
    `is_staff`, `is_superuser` in `values`; `groups` and `permissions` replace the user's
    when given. One audit event per kind of change: user.changed (profile),
    user.deactivated / user.reactivated, user.privileges_changed."""
    values = dict(values or {})
    unknown = set(values) - {*PROFILE_FIELDS, "is_active", *PRIVILEGE_FIELDS}
    if unknown:
        raise TypeError(f"not editable here: {sorted(unknown)}")
    user_model = get_user_model()
    current = user_model.objects.select_for_update().get(pk=user.pk)
    _guard_account(actor, current, "auth.change_user")

    changed = {field: value for field, value in values.items() if getattr(current, field) != value}
    privileges_before = _privileges(current)
    wanted_groups = set(groups) if groups is not None else None
    wanted_permissions = set(permissions) if permissions is not None else None
    groups_change = (
        wanted_groups is not None
        and sorted(group.name for group in wanted_groups) != (privileges_before["groups"])
    )
    permissions_change = (
        wanted_permissions is not None
        and _permission_names(wanted_permissions) != privileges_before["permissions"]
    )
    privileges_change = (
        any(field in changed for field in PRIVILEGE_FIELDS) or groups_change or permissions_change
    )
    if privileges_change:
        _require_superuser(actor, "grants or withdraws staff, superuser, groups or permissions")

    before = {field: getattr(current, field) for field in changed}
    for field, value in changed.items():
        setattr(current, field, value)
    if changed:
        current.save(update_fields=list(changed))
    if wanted_groups is not None:
        current.groups.set(wanted_groups)
    if wanted_permissions is not None:
        current.user_permissions.set(wanted_permissions)

    name = _name(current)
    profile = [field for field in PROFILE_FIELDS if field in changed]
    if profile:
        audit_record(
            actor=actor,
            action="user.changed",
            obj=current,
            before={"user": before.get("username", name), **{f: before[f] for f in profile}},
            after={"user": name, **{field: changed[field] for field in profile}},
        )
    if "is_active" in changed:
        audit_record(
            actor=actor,
            action="user.reactivated" if changed["is_active"] else "user.deactivated",
            obj=current,
            before={"user": name, "is_active": before["is_active"]},
            after={"user": name, "is_active": changed["is_active"]},
        )
    if privileges_change:
        after = _privileges(current)
        keys = [key for key in after if after[key] != privileges_before[key]]
        audit_record(
            actor=actor,
            action="user.privileges_changed",
            obj=current,
            before={"user": name, **{key: privileges_before[key] for key in keys}},
            after={"user": name, **{key: after[key] for key in keys}},
        )
    return current


@transaction.atomic
def user_password_set(*, user, password: str | None, actor):
    """An administrator sets (or, with None, disables) a user's password: the event says
    that it happened and who did it, never the password or its hash."""
    current = get_user_model().objects.select_for_update().get(pk=user.pk)
    _guard_account(actor, current, "auth.change_user")
    if password is None:
        current.set_unusable_password()
    else:
        current.set_password(password)
    current.save(update_fields=["password"])
    audit_record(
        actor=actor,
        action="user.password_set" if password is not None else "user.password_disabled",
        obj=current,
        after={"user": _name(current), "usable_password": password is not None},
    )
    return current


@transaction.atomic
def user_password_change(*, user, password: str):
    """A user changes their own password (their old one was checked by the form): audited,
    never the password or its hash."""
    current = get_user_model().objects.select_for_update().get(pk=user.pk)
    current.set_password(password)
    current.save(update_fields=["password"])
    audit_record(
        actor=current,
        action="user.password_changed",
        obj=current,
        after={"user": _name(current), "by": "the user"},
    )
    return current


@transaction.atomic
def user_delete(*, user, actor) -> None:
    """Delete an account that the record never names, with its team places (each removal
    audited, so needing "manage teams"); refused with UserHasHistory otherwise."""
    current = get_user_model().objects.select_for_update().get(pk=user.pk)
    _guard_account(actor, current, "auth.delete_user")
    history = user_history(current)
    if history:
        raise UserHasHistory(deletion_refusal(current, history))
    teams = list(current.teams.order_by("pk"))
    for team in teams:
        memberships.team_member_remove(team=team, user=current, actor=actor)
    # Roles in a team they are not a member of (possible only past the services).
    for membership in RoleMembership.objects.filter(user=current).select_related("team", "role"):
        memberships.membership_remove(
            membership=membership, actor=actor, reason=f"{_name(current)} was deleted"
        )
    audit_record(
        actor=actor,
        action="user.deleted",
        obj=current,
        before={
            **{field: getattr(current, field) for field in PROFILE_FIELDS},
            "teams": [team.slug for team in teams],
            **_privileges(current),
        },
    )
    try:
        with transaction.atomic():
            current.delete()
    except ProtectedError as error:
        # Named by the record since the check above (a signature a moment ago).
        raise UserHasHistory(deletion_refusal(current, user_history(current))) from error


@transaction.atomic
def users_deactivate(*, users: Iterable, actor) -> int:
    """Deactivate several accounts (the admin's bulk action); returns how many changed."""
    count = 0
    for user in users:
        if user.is_active:
            user_update(user=user, actor=actor, values={"is_active": False})
            count += 1
    return count


# Groups: a permission given to a group is given to each of its members.


def _group_state(group: Group) -> dict:
    return {
        "group": group.name,
        "permissions": _permission_names(group.permissions.select_related("content_type")),
        "members": sorted(group.user_set.values_list("username", flat=True)),
    }


@transaction.atomic
def group_save(*, group: Group, permissions: Iterable[Permission], actor) -> Group:
    """Create or change a group (name, permissions): superusers only, audited."""
    _require_superuser(actor, "changes permission groups")
    adding = group.pk is None
    before = None
    if not adding:
        current = Group.objects.select_for_update().get(pk=group.pk)
        before = _group_state(current)
    group.save()
    group.permissions.set(permissions)
    after = _group_state(group)
    if before == after:
        return group
    audit_record(
        actor=actor,
        action="group.created" if adding else "group.changed",
        obj=group,
        before=before,
        after=after,
    )
    return group


@transaction.atomic
def group_delete(*, group: Group, actor) -> None:
    """Its members lose the group's permissions: the event names them."""
    _require_superuser(actor, "deletes permission groups")
    audit_record(actor=actor, action="group.deleted", obj=group, before=_group_state(group))
    group.delete()
