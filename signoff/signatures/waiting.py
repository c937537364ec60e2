"""What waits for a user's signature, a page at a time (My sign-offs).

Whether a signature still holds is known only by computing the role's state now (its
digest), which reads every item of the deployment. So the page is cut in SQL over the
candidates (deployments in review or approved, in the user's teams, that a role they hold
signs for) and only the page's deployments are computed, in the fixed number of queries of
`standings()`. A candidate whose signatures all still hold shows no row.
"""

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Value, When

from readiness.checklists.models import ChecklistTemplate, Deployment, DeploymentState
from signoff.signatures.models import SignOff
from signoff.signatures.selectors import (
    RoleStanding,
    read_changes,
    required_roles,
    standings,
)
from signoff.teams.models import Role, RoleMembership

PAGE_SIZE = 25
# How many change lines a stale signature's row words.
SHOWN_CHANGE_LINES = 2
WAITING_STATES = (DeploymentState.IN_REVIEW, DeploymentState.APPROVED)


@dataclass(frozen=True)
class WaitingPage:
    page: Page
    # (deployment, standing) of the page's deployments, for a role the user holds there
    # whose signature does not hold: missing, revoked or stale.
    waiting: list[tuple[Deployment, RoleStanding]]
    # Deployments on this page whose signatures of the user's roles all hold.
    holding: int


def _held_roles(user) -> dict[int, set[int]]:
    held: dict[int, set[int]] = {}
    for team_id, role_id in RoleMembership.objects.filter(user=user).values_list(
        "team_id", "role_id"
    ):
        held.setdefault(team_id, set()).add(role_id)
    return held


def _required_by_template() -> dict[int, set[int]]:
    """{template id: ids of the roles that sign for it}, as `required_roles` decides."""
    roles = list(Role.objects.all())
    return {
        template.pk: {role.pk for role in required_roles(Deployment(template=template), roles)}
        for template in ChecklistTemplate.objects.only("pk", "sign_off_roles")
    }


def waiting_candidates(user, held: dict[int, set[int]]) -> QuerySet[Deployment]:
    """The deployments that may wait for `user`: in review or approved, of their teams, with
    a template one of the roles they hold there signs for. Those where none of these roles
    has a signature in force come first (certainly waiting), then by planned date."""
    if not held:
        return Deployment.objects.none()
    required = _required_by_template()
    reach = Q(pk__in=[])
    for team_id, role_ids in held.items():
        templates = [pk for pk, signers in required.items() if signers & role_ids]
        if templates:
            reach |= Q(team_id=team_id, template_id__in=templates)
    later = SignOff.objects.filter(
        deployment_id=OuterRef("deployment_id"),
        role_id=OuterRef("role_id"),
        sequence__gt=OuterRef("sequence"),
    )
    in_force_by_held_role = SignOff.objects.filter(
        deployment_id=OuterRef("pk"),
        role__memberships__user=user,
        role__memberships__team_id=OuterRef("team_id"),
        revocation__isnull=True,
    ).exclude(Exists(later))
    return (
        Deployment.objects.filter(reach, team__members=user, state__in=WAITING_STATES)
        .select_related("team", "template", "owner")
        .annotate(
            signed_first=Case(When(Exists(in_force_by_held_role), then=Value(1)), default=Value(0))
        )
        .order_by("signed_first", F("planned_date").asc(nulls_last=True), "pk")
    )


def waiting_page(user, page_number) -> WaitingPage:
    """The page `page_number` (anything: a bad value gives the first page, a page past the
    end the last, as the dashboard's) of what waits for `user`."""
    held = _held_roles(user)
    # The order is cut over narrow rows (ids, dates, the signed-first flag): sorting every
    # candidate's full row, joined with its team, template and owner, cost more than the
    # rest of the page. The page's 25 rows are read after.
    candidates = waiting_candidates(user, held)
    page = Paginator(candidates.values_list("pk", flat=True), PAGE_SIZE).get_page(page_number)
    rows = Deployment.objects.select_related("team", "template", "owner").in_bulk(
        list(page.object_list)
    )
    deployments = page.object_list = [rows[pk] for pk in page.object_list if pk in rows]
    # Only the roles the user holds are shown, counted or explained, and the page shows
    # counts and change lines, never an item's other fields: item rows, not instances.
    by_deployment = standings(
        deployments, role_ids=set().union(*held.values()) if held else set(), rows=True
    )
    waiting = []
    holding = 0
    for deployment in deployments:
        mine = [
            standing
            for standing in by_deployment.get(deployment.pk, [])
            if standing.role.pk in held[deployment.team_id] and not standing.fresh
        ]
        waiting += [(deployment, standing) for standing in mine]
        holding += not mine
    # The page words SHOWN_CHANGE_LINES lines of each stale signature and counts the rest
    # (a re-probe changes scores of results; the role page lists them all).
    stale = [standing for _, standing in waiting]
    read_changes(stale, first=SHOWN_CHANGE_LINES)
    for standing in stale:
        standing.shown_change_lines = standing.first_change_lines(SHOWN_CHANGE_LINES)
    return WaitingPage(page=page, waiting=waiting, holding=holding)
