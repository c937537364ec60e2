"""Who belongs to a team and who may change which item: the gates of every service that
needs them.

Role memberships are signoff's rows; this layer never imports signoff, so it reads them
through the relation signoff declares on Team (`team.roles`), as it reaches roles through
`owner_role`.
"""

import functools
import itertools

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save

from readiness.checklists.models import ChecklistItem, Team
from readiness.sql import column

# Bumped by every change of a membership or a role held in this process: a request reads a
# user's access to a team once (the view checks it, then the service it calls), and a change
# made meanwhile — a test granting a role, a team page adding a member — is read afresh.
_generation = itertools.count()
_current = [next(_generation)]


def _access_changed(**kwargs) -> None:
    _current[0] = next(_generation)


post_save.connect(_access_changed, sender="signoff.RoleMembership", weak=False)
post_delete.connect(_access_changed, sender="signoff.RoleMembership", weak=False)
m2m_changed.connect(_access_changed, sender=Team.members.through, weak=False)


@functools.cache
def _access_sql() -> str:
    """The roles `user` holds in a team (role ids) and their membership (a NULL row), both
    in one round trip. Written in SQL: the same UNION built through the ORM took more CPU
    to compile than the round trip, on every request that edits an item. (No ORDER BY in
    the parts: SQLite refuses one inside a compound statement.)"""
    quote = connection.ops.quote_name
    held = Team.roles.field.model._meta  # signoff's RoleMembership, named through Team
    members = Team.members.through._meta

    return (
        f"SELECT {column(held, 'role')} FROM {quote(held.db_table)}"
        f" WHERE {column(held, 'team')} = %s AND {column(held, 'user')} = %s"
        f" UNION ALL SELECT NULL FROM {quote(members.db_table)}"
        f" WHERE {column(members, 'team')} = %s AND {column(members, 'user')} = %s"
    )


def _access(team: Team, user) -> tuple[bool, frozenset[int]]:
    """(member?, ids of the roles held) of `user` in `team`, in one query, kept on the user
    object for as long as no membership changes: the life of one request."""
    memo = getattr(user, "_readiness_team_access", None)
    if memo is None:
        memo = {}
        user._readiness_team_access = memo  # request.user is a lazy proxy: set through it
    known = memo.get(team.pk)
    if known is not None and known[0] == _current[0]:
        return known[1], known[2]
    generation = _current[0]
    with connection.cursor() as cursor:
        cursor.execute(_access_sql(), [team.pk, user.pk, team.pk, user.pk])
        rows = cursor.fetchall()
    found = [role_id for (role_id,) in rows]
    member = None in found
    role_ids = frozenset(role_id for role_id in found if role_id is not None)
    memo[team.pk] = (generation, member, role_ids)
    return member, role_ids


def is_member(*, team: Team, user) -> bool:
    return bool(user.is_authenticated and _access(team, user)[0])


def require_member(*, team: Team, user) -> None:
    if not is_member(team=team, user=user):
        raise PermissionDenied("You are not a member of this team.")


def held_role_ids(*, team: Team, user) -> frozenset[int]:
    """Ids of the roles `user` holds in `team` (none for a stranger or nobody logged in)."""
    if not user.is_authenticated:
        return frozenset()
    return _access(team, user)[1]


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
    require_items_owner(items=[item], team=team, user=user)


def require_items_owner(*, items, team: Team, user) -> None:
    """The same gate for several items at once (the roles are read once): PermissionDenied
    naming every item `user` may not change, so a bulk change is refused whole."""
    require_member(team=team, user=user)
    role_ids = held_role_ids(team=team, user=user)
    refused = [item for item in items if not may_change_item(item, role_ids)]
    if len(refused) == 1:
        raise PermissionDenied(not_owner_message(refused[0]))
    if refused:
        owners = sorted({str(item.owner_role) for item in refused})
        titles = ", ".join(f"“{item.title}”" for item in refused)
        raise PermissionDenied(
            f"{len(refused)} of the items are owned by roles you do not hold on this team "
            f"({', '.join(owners)}): {titles}."
        )
