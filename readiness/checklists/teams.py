"""Who belongs to a team and who may change which item: the gates of every service that
needs them.

Role memberships are signoff's rows; this layer never imports signoff, so it reads them
through the relation signoff declares on Team (`team.roles`), as it reaches roles through
`owner_role`.
"""

from django.core.exceptions import PermissionDenied

from readiness.checklists.models import ChecklistItem, Team


def is_member(*, team: Team, user) -> bool:
    return bool(user.is_authenticated and team.members.filter(pk=user.pk).exists())


def require_member(*, team: Team, user) -> None:
    if not is_member(team=team, user=user):
        raise PermissionDenied("You are not a member of this team.")


def held_role_ids(*, team: Team, user) -> frozenset[int]:
    """Ids of the roles `user` holds in `team` (none for a stranger or nobody logged in)."""
    if not user.is_authenticated:
        return frozenset()
    return frozenset(team.roles.filter(user=user).values_list("role_id", flat=True))


def may_change_item(item: ChecklistItem, role_ids: frozenset[int]) -> bool:
    """The ownership rule: only holders of an item's owning role change it or override its
    probe; an item no role owns is open to every member of the team."""
    return item.owner_role_id is None or item.owner_role_id in role_ids


def not_owner_message(item: ChecklistItem) -> str:
    return (
        f"“{item.title}” is owned by {item.owner_role}: only those holding {item.owner_role}"
        " on this team may change it."
    )


def require_item_owner(*, item: ChecklistItem, team: Team, user) -> None:
    """Membership first, then the item's owning role; raises PermissionDenied."""
    require_member(team=team, user=user)
    if not may_change_item(item, held_role_ids(team=team, user=user)):
        raise PermissionDenied(not_owner_message(item))
