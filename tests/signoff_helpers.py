"""Builders shared by the sign-off tests: four role holders, items set done, signing."""

from dataclasses import dataclass

from readiness.checklists.models import ChecklistItem, ItemStatus
from signoff.lifecycle import services
from signoff.teams.models import Role, RoleMembership
from tests.factories import PASSWORD, UserFactory

ROLE_SLUGS = ("tech-lead", "security", "devops", "product")


@dataclass
class Signers:
    by_slug: dict

    def __getitem__(self, slug):
        return self.by_slug[slug]


def role(slug: str) -> Role:
    return Role.objects.get(slug=slug)


def give_role(user, team, slug: str):
    team.members.add(user)
    return RoleMembership.objects.create(team=team, user=user, role=role(slug))


def signers_for(team) -> Signers:
    """One member per seed role in `team`, with a real full name."""
    users = {}
    for slug in ROLE_SLUGS:
        user = UserFactory(
            username=f"{slug}-{team.slug}", first_name=slug.title(), last_name="Signer"
        )
        give_role(user, team, slug)
        users[slug] = user
    return Signers(users)


def complete_items(deployment, slug: str | None = None, status=ItemStatus.DONE) -> int:
    """Mark items done straight in the database (what the checklist page would do)."""
    items = ChecklistItem.objects.filter(section__deployment=deployment)
    if slug:
        items = items.filter(owner_role__slug=slug)
    return items.update(status=status)


def sign(deployment, user, slug: str, meaning: str = "approve", comment: str = "", **kwargs):
    deployment.refresh_from_db()
    return services.signoff_record(
        deployment=deployment,
        role=role(slug),
        user=user,
        meaning=meaning,
        comment=comment,
        password=kwargs.pop("password", PASSWORD),
        # Without a session every signature is a first one: both identity components.
        username=kwargs.pop("username", user.get_username()),
        **kwargs,
    )


def approve_all(deployment, signers: Signers) -> None:
    complete_items(deployment)
    if deployment.state == "draft":
        services.signoff_request(deployment=deployment, user=signers["tech-lead"])
    for slug in ROLE_SLUGS:
        sign(deployment, signers[slug], slug)
    deployment.refresh_from_db()
