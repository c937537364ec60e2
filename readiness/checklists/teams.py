"""Who belongs to a team: the one membership gate of every service that needs it."""

from django.core.exceptions import PermissionDenied

from readiness.checklists.models import Team


def is_member(*, team: Team, user) -> bool:
    return bool(user.is_authenticated and team.members.filter(pk=user.pk).exists())


def require_member(*, team: Team, user) -> None:
    if not is_member(team=team, user=user):
        raise PermissionDenied("You are not a member of this team.")
