"""Who is in a team, which roles they hold there and which role owns a template item.

Membership decides who sees a team's deployments and who may sign for a role, so every
change here is made by an administrator and written to the audit trail in the same
transaction. The team pages and the Django admin both go through these functions. The
reads the team pages need live at the end.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet

from readiness.audit.services import audit_record
from readiness.checklists.models import Team, TemplateItem
from readiness.checklists.teams import is_member
from signoff.teams.models import Role, RoleMembership

MANAGE_TEAMS = "signoff.manage_teams"


def can_manage_teams(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.has_perm(MANAGE_TEAMS))


def _require_team_manager(actor) -> None:
    if not can_manage_teams(actor):
        raise PermissionDenied(
            "Only team managers (permission “manage teams”) change who is in a team and "
            "which roles they hold."
        )


def _name(user) -> str:
    return user.get_username()


def _membership_state(membership: RoleMembership) -> dict:
    return {
        "team": membership.team.slug,
        "user": _name(membership.user),
        "role": membership.role.name,
    }


@transaction.atomic
def membership_add(*, team: Team, user, role: Role, actor) -> RoleMembership:
    """`user` holds `role` in `team` from now on; they must already be in the team."""
    _require_team_manager(actor)
    if not is_member(team=team, user=user):
        raise ValidationError(
            f"{_name(user)} is not a member of {team}: add them to the team first."
        )
    duplicate = ValidationError(f"{_name(user)} already holds {role} in {team}.")
    if RoleMembership.objects.filter(team=team, user=user, role=role).exists():
        raise duplicate
    try:
        with transaction.atomic():
            membership = RoleMembership.objects.create(team=team, user=user, role=role)
    except IntegrityError as error:
        # Two administrators adding the same membership at once: the constraint lets one in.
        raise duplicate from error
    audit_record(
        actor=actor,
        action="membership.added",
        obj=membership,
        after=_membership_state(membership),
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: RoleMembership, actor, reason: str = "") -> bool:
    """Withdraw a role from its holder; False when it was already gone (nothing recorded)."""
    _require_team_manager(actor)
    current = (
        RoleMembership.objects.select_for_update(of=("self",))
        .select_related("team", "user", "role")
        .filter(pk=membership.pk)
        .first()
    )
    if current is None:
        return False
    # Recorded before the delete: the event needs the row's id, which delete() clears.
    audit_record(
        actor=actor,
        action="membership.removed",
        obj=current,
        before=_membership_state(current),
        reason=reason,
    )
    current.delete()
    return True


@transaction.atomic
def team_member_add(*, team: Team, user, actor) -> None:
    _require_team_manager(actor)
    if is_member(team=team, user=user):
        raise ValidationError(f"{_name(user)} is already a member of {team}.")
    team.members.add(user)
    audit_record(
        actor=actor,
        action="team.member_added",
        obj=team,
        after={"team": team.slug, "member": _name(user)},
    )


@transaction.atomic
def team_member_remove(*, team: Team, user, actor) -> None:
    """Take `user` out of `team`, and with it every role they held there."""
    _require_team_manager(actor)
    if not is_member(team=team, user=user):
        raise ValidationError(f"{_name(user)} is not a member of {team}.")
    held = list(
        RoleMembership.objects.filter(team=team, user=user)
        .select_related("team", "user", "role")
        .order_by("role__position")
    )
    for membership in held:
        membership_remove(membership=membership, actor=actor, reason=f"{_name(user)} left {team}")
    team.members.remove(user)
    audit_record(
        actor=actor,
        action="team.member_removed",
        obj=team,
        before={
            "team": team.slug,
            "member": _name(user),
            "roles": [membership.role.name for membership in held],
        },
    )


@transaction.atomic
def team_delete(*, team: Team, actor) -> None:
    """Delete a team (refused by the database while deployments use it), members first, so
    that every role and membership that goes with it is on the record."""
    _require_team_manager(actor)
    for user in list(team.members.order_by("pk")):
        team_member_remove(team=team, user=user, actor=actor)
    # Roles held by someone no longer in the team (possible only past these services).
    for membership in RoleMembership.objects.filter(team=team).select_related("user", "role"):
        membership_remove(membership=membership, actor=actor, reason=f"{team} was deleted")
    audit_record(
        actor=actor, action="team.deleted", obj=team, before={"team": team.slug, "name": team.name}
    )
    team.delete()


@transaction.atomic
def template_item_owner_set(*, item: TemplateItem, role: Role | None, actor) -> TemplateItem:
    """Choose the role that fills in and signs for a template item in new deployments."""
    _require_team_manager(actor)
    # Re-read under a lock: an admin form has already changed `item` in memory, and the
    # event must name the owner the database held.
    current = (
        TemplateItem.objects.select_for_update(of=("self",))
        .select_related("owner_role", "section__template")
        .get(pk=item.pk)
    )
    new_id = role.pk if role is not None else None
    if current.owner_role_id == new_id:
        return current
    context = {
        "template": str(current.section.template),
        "section": current.section.title,
        "item": current.title,
    }
    before = {**context, "owner_role": current.owner_role.name if current.owner_role else None}
    current.owner_role = role
    current.save(update_fields=["owner_role"])
    audit_record(
        actor=actor,
        action="template.owner_changed",
        obj=current,
        before=before,
        after={**context, "owner_role": role.name if role is not None else None},
    )
    return current


ROLE_FIELDS = ("name", "slug", "position", "description")


def _role_state(role: Role) -> dict:
    return {field: getattr(role, field) for field in ROLE_FIELDS}


@transaction.atomic
def role_create(*, name: str, slug: str, position: int, description: str, actor) -> Role:
    _require_team_manager(actor)
    role = Role.objects.create(name=name, slug=slug, position=position, description=description)
    audit_record(actor=actor, action="role.created", obj=role, after=_role_state(role))
    return role


@transaction.atomic
def role_update(*, role: Role, actor, **values) -> Role:
    """Rename (or reorder, re-describe) a role: its name is printed on every sign-off for it,
    so the old and new names go on the record."""
    _require_team_manager(actor)
    unknown = set(values) - set(ROLE_FIELDS)
    if unknown:
        raise TypeError(f"not role fields: {sorted(unknown)}")
    current = Role.objects.select_for_update().get(pk=role.pk)
    changed = {field: value for field, value in values.items() if getattr(current, field) != value}
    if not changed:
        return current
    before = {field: getattr(current, field) for field in changed}
    for field, value in changed.items():
        setattr(current, field, value)
    current.save(update_fields=list(changed))
    action = "role.renamed" if "name" in changed else "role.changed"
    audit_record(
        actor=actor,
        action=action,
        obj=current,
        before={"role": before.get("name", current.name), **before},
        after={"role": current.name, **changed},
    )
    return current


@transaction.atomic
def role_delete(*, role: Role, actor) -> None:
    """Refused by the database (PROTECT) while anyone holds or ever signed for the role."""
    _require_team_manager(actor)
    audit_record(actor=actor, action="role.deleted", obj=role, before=_role_state(role))
    role.delete()


# Reads for the team pages.


def teams_visible_to(user) -> QuerySet[Team]:
    """Team managers see every team; anyone else only their own (the rest are a 404)."""
    if not user.is_authenticated:
        return Team.objects.none()
    if can_manage_teams(user):
        return Team.objects.all()
    return Team.objects.filter(pk__in=user.teams.values("pk"))


def team_list(user) -> QuerySet[Team]:
    return teams_visible_to(user).annotate(
        member_count=Count("members", distinct=True),
        role_count=Count("roles", distinct=True),
    )


@dataclass(frozen=True)
class RoleHolders:
    role: Role
    memberships: list[RoleMembership]


@dataclass(frozen=True)
class Roster:
    members: list
    roles: list[RoleHolders]


def team_roster(team: Team) -> Roster:
    """The members (each with `team_roles`, the roles they hold here) and each role's holders,
    in three queries whatever the team's size."""
    members = list(team.members.order_by("last_name", "first_name", "username"))
    held = list(
        RoleMembership.objects.filter(team=team)
        .select_related("user", "role")
        .order_by("role__position", "user__last_name", "user__first_name", "user__username")
    )
    roles = list(Role.objects.all())
    by_user: dict[int, list[Role]] = {}
    by_role: dict[int, list[RoleMembership]] = {}
    for membership in held:
        by_user.setdefault(membership.user_id, []).append(membership.role)
        by_role.setdefault(membership.role_id, []).append(membership)
    for member in members:
        member.team_roles = by_user.get(member.pk, [])
    return Roster(
        members=members,
        roles=[RoleHolders(role=role, memberships=by_role.get(role.pk, [])) for role in roles],
    )
