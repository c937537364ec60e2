"""The notification templates write, byte for byte, what the string code before them wrote.

`Legacy` below is that code, frozen: the subject and body builders as they were in
signoff/notifications/services.py before the text moved to templates/signoff/notifications/.
Every kind, and every branch of every kind, is composed both ways from the same rows.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.template.loader import get_template
from django.urls import reverse

from readiness.checklists.models import Deployment, DeploymentState
from signoff.notifications import services as notifications
from signoff.signatures.models import Meaning, Revocation, SignOff
from signoff.signatures.selectors import required_roles
from signoff.teams.models import Role
from tests.factories import TeamFactory, UserFactory, make_deployment

# Characters HTML escaping would change, template syntax that must stay text, a line break.
AWKWARD = "<b>R&D</b> \"quoted\" 'single' {{ deployment }} {% if x %} 100% → ✓\nsecond line"
SIGNED_AT = datetime(2026, 5, 4, 14, 30, tzinfo=ZoneInfo("Europe/Paris"))
REVOKED_AT = datetime(2026, 5, 5, 9, 5, 59, tzinfo=UTC)


class Legacy:
    """The builders before the templates, unchanged but for the names of the helpers."""

    COMMENT_LABELS = {
        Meaning.APPROVE: "Comment",
        Meaning.APPROVE_WITH_CONDITIONS: "Conditions",
        Meaning.REJECT: "Reason",
    }

    @classmethod
    def compose(cls, kind, deployment, signoff=None, actor=None, changes=None):
        if kind == "requested":
            return cls._requested(deployment, actor)
        if kind == "signed":
            return cls._signed(deployment, signoff)
        if kind == "revoked":
            return cls._revoked(deployment, signoff, cls._revocation(signoff))
        if kind == "stale":
            return cls._stale(deployment, signoff, changes or [])
        if kind == "approved":
            return cls._approved(deployment)
        if kind == "reprobe_errors":
            return cls._reprobe_errors(deployment, changes or [])
        raise ValueError(kind)

    @classmethod
    def webhook_text(cls, title, body):
        return f"*{cls._slack_escape(title)}*\n{cls._slack_escape(body)}"

    @classmethod
    def _requested(cls, deployment, actor):
        who = cls._name(actor) if actor else "Someone"
        roles = required_roles(deployment, list(Role.objects.all()))
        lines = [
            f"{who} requested sign-off for {deployment} (team {deployment.team}).",
            "",
            "Roles to sign:",
            *(f"- {role}: {cls._role_url(deployment, role)}" for role in roles),
            "",
            f"Deployment: {cls._deployment_url(deployment)}",
        ]
        return f"Sign-off requested: {deployment}", "\n".join(lines)

    @classmethod
    def _signed(cls, deployment, signoff):
        meaning = signoff.get_meaning_display()
        lines = [
            f"{signoff.printed_name} signed for {signoff.role} on {deployment} "
            f"(team {deployment.team}).",
            "",
            f"Meaning: {meaning}",
            f"Signed at: {cls._utc(signoff.signed_at)}",
            *cls._comment_lines(signoff),
            "",
            *cls._links(deployment, signoff.role),
        ]
        return f"{signoff.role} sign-off {meaning}: {deployment}", "\n".join(lines)

    @classmethod
    def _revoked(cls, deployment, signoff, revocation):
        lines = [
            f"{cls._name(revocation.revoked_by)} revoked the {signoff.role} sign-off of "
            f"{signoff.printed_name} on {deployment} (team {deployment.team}).",
            "",
            f"Revoked sign-off: {signoff.get_meaning_display()}, signed at "
            f"{cls._utc(signoff.signed_at)}",
            *cls._comment_lines(signoff),
            f"Revoked at: {cls._utc(revocation.revoked_at)}",
            f"Reason for revoking: {revocation.reason}",
            "",
            f"{signoff.role} has to sign again.",
            "",
            *cls._links(deployment, signoff.role),
        ]
        return f"{signoff.role} sign-off revoked: {deployment}", "\n".join(lines)

    @classmethod
    def _stale(cls, deployment, signoff, changes):
        lines = [
            f"The {signoff.role} sign-off of {signoff.printed_name} on {deployment} "
            f"(team {deployment.team}) no longer holds: what it covered has changed since.",
            "",
            f"Stale sign-off: {signoff.get_meaning_display()}, signed at "
            f"{cls._utc(signoff.signed_at)}",
            *cls._comment_lines(signoff),
        ]
        if changes:
            lines += ["", "What changed:", *(f"- {change}" for change in changes)]
        lines += [
            "",
            f"{signoff.role} has to review and sign again.",
            "",
            *cls._links(deployment, signoff.role),
        ]
        return f"{signoff.role} sign-off stale: {deployment}", "\n".join(lines)

    @classmethod
    def _reprobe_errors(cls, deployment, errors):
        lines = [
            f"The scheduled re-probe of {deployment} (team {deployment.team}) could not check "
            f"{len(errors)} probe{'s' if len(errors) != 1 else ''}. Their last verdicts stay in "
            "force and no sign-off changed; until the errors are fixed, drift there goes unseen.",
            "",
            "Errors:",
            *(f"- {error}" for error in errors),
            "",
            f"Deployment: {cls._deployment_url(deployment)}",
        ]
        return f"Re-probe errors: {deployment}", "\n".join(lines)

    @classmethod
    def _approved(cls, deployment):
        latest = {}
        for signoff in (
            SignOff.objects.filter(deployment=deployment)
            .select_related("role", "revocation")
            .order_by("role__position", "sequence")
        ):
            latest[signoff.role_id] = signoff
        lines = [f"{deployment} (team {deployment.team}) is approved: every role signed.", ""]
        for signoff in latest.values():
            if cls._revocation(signoff) is not None:
                continue
            lines.append(
                f"- {signoff.role}: {signoff.printed_name}, {signoff.get_meaning_display()}, "
                f"{cls._utc(signoff.signed_at)}"
            )
            lines += [f"  {line}" for line in cls._comment_lines(signoff)]
        if deployment.state == DeploymentState.IN_REVIEW:
            lines += [
                "",
                "Since then a sign-off stopped holding: the deployment is back in review.",
            ]
        lines += ["", f"Deployment: {cls._deployment_url(deployment)}"]
        return f"Deployment approved: {deployment}", "\n".join(lines)

    @classmethod
    def _comment_lines(cls, signoff):
        if not signoff.comment:
            return []
        return [f"{cls.COMMENT_LABELS.get(signoff.meaning, 'Comment')}: {signoff.comment}"]

    @classmethod
    def _links(cls, deployment, role):
        return [
            f"Role: {cls._role_url(deployment, role)}",
            f"Deployment: {cls._deployment_url(deployment)}",
        ]

    @staticmethod
    def _deployment_url(deployment):
        return settings.SITE_URL + reverse("deployment_detail", args=[deployment.pk])

    @staticmethod
    def _role_url(deployment, role):
        return settings.SITE_URL + reverse("role_detail", args=[deployment.pk, role.slug])

    @staticmethod
    def _revocation(signoff):
        try:
            return signoff.revocation
        except ObjectDoesNotExist:
            return None

    @staticmethod
    def _name(user):
        return user.get_full_name().strip() or user.get_username()

    @staticmethod
    def _utc(moment):
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"

    @staticmethod
    def _slack_escape(text):
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Rows made straight in the database: this is about the text, not about the lifecycle.


def role(slug: str) -> Role:
    return Role.objects.get(slug=slug)


def add_signoff(deployment, slug, *, meaning=Meaning.APPROVE, comment="", name="Sam Doe", **kw):
    user = kw.pop("user", None) or UserFactory()
    sequence = SignOff.objects.filter(deployment=deployment, role=role(slug)).count() + 1
    return SignOff.objects.create(
        deployment=deployment,
        role=role(slug),
        sequence=sequence,
        user=user,
        printed_name=name,
        signed_at=kw.pop("signed_at", SIGNED_AT),
        meaning=meaning,
        comment=comment,
        digest="0" * 64,
        approved_state={},
    )


def revoke(signoff, *, by, reason="WAF is in place now"):
    return Revocation.objects.create(
        signoff=signoff, revoked_by=by, revoked_at=REVOKED_AT, reason=reason
    )


def set_state(deployment, state):
    Deployment.objects.filter(pk=deployment.pk).update(state=state)
    deployment.refresh_from_db()


def assert_identical(kind, deployment, *, signoff=None, actor=None, changes=None):
    """Compose one event both ways, from the database, and compare every part byte for byte."""
    notification = notifications.notification_compose(
        kind,
        deployment_id=deployment.pk,
        signoff_id=signoff.pk if signoff else None,
        actor_id=actor.pk if actor else None,
        changes=changes,
    )
    assert notification is not None
    deployment = Deployment.objects.select_related("team", "template").get(pk=deployment.pk)
    if signoff is not None:
        signoff = SignOff.objects.select_related("role", "revocation__revoked_by").get(
            pk=signoff.pk
        )
    title, body = Legacy.compose(kind, deployment, signoff, actor, changes)
    assert notification.title == title
    assert notification.body == body
    assert notification.subject == "[Readiness] " + title
    assert notification.webhook_text == Legacy.webhook_text(title, body)
    assert "\n" not in notification.subject
    return notification


@pytest.fixture
def awkward_names(deployment):
    """A team, a role and a deployment whose names HTML escaping or a template would change."""
    deployment.team.name = "R&D <Core> \"Ops\" 'n' {{ team }}"
    deployment.team.save()
    Role.objects.filter(slug="security").update(name="Sécurité & <Ops>")
    Deployment.objects.filter(pk=deployment.pk).update(environment="prod & <eu>")
    deployment.refresh_from_db()
    return deployment


@pytest.fixture(params=["plain", "awkward"])
def subject(request, deployment, settings):
    """The same events, once with ordinary names and once with awkward ones."""
    if request.param == "awkward":
        request.getfixturevalue("awkward_names")
        settings.SITE_URL = "https://readiness.example.org/r?a=<b>&c='d'"
    return deployment


# Every kind, every branch.


@pytest.mark.django_db
@pytest.mark.parametrize(
    "actor_names",
    [None, ("Tina", "Doe"), ("", ""), ("  ", " ")],
    ids=["no-actor", "full-name", "username-only", "blank-names"],
)
def test_requested(subject, actor_names):
    actor = None
    if actor_names is not None:
        actor = UserFactory(username="tina", first_name=actor_names[0], last_name=actor_names[1])
    assert_identical("requested", subject, actor=actor)


SIGNOFF_VARIANTS = [
    pytest.param(Meaning.APPROVE, "", id="approve"),
    pytest.param(Meaning.APPROVE, "Looks fine", id="approve-comment"),
    pytest.param(Meaning.APPROVE_WITH_CONDITIONS, "Scale to 4 first", id="conditions"),
    pytest.param(Meaning.REJECT, "No WAF in front of the API", id="reject"),
    pytest.param(Meaning.REJECT, AWKWARD, id="reject-awkward"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("meaning", "comment"), SIGNOFF_VARIANTS)
def test_signed(subject, meaning, comment):
    signoff = add_signoff(subject, "security", meaning=meaning, comment=comment, name=AWKWARD)
    assert_identical("signed", subject, signoff=signoff, actor=signoff.user)


@pytest.mark.django_db
@pytest.mark.parametrize(("meaning", "comment"), SIGNOFF_VARIANTS)
@pytest.mark.parametrize("revoker_names", [("Sue", "Doe"), ("", "")], ids=["named", "username"])
def test_revoked(subject, meaning, comment, revoker_names):
    signoff = add_signoff(subject, "security", meaning=meaning, comment=comment)
    sue = UserFactory(username="sue", first_name=revoker_names[0], last_name=revoker_names[1])
    revoke(signoff, by=sue, reason=AWKWARD)
    assert_identical("revoked", subject, signoff=signoff, actor=sue)


@pytest.mark.django_db
@pytest.mark.parametrize(("meaning", "comment"), SIGNOFF_VARIANTS)
@pytest.mark.parametrize(
    "changes",
    [None, [], ["MFA: done → failed"], ["MFA: done → failed", AWKWARD, "{{ x }} & <y>"]],
    ids=["none", "empty", "one", "several"],
)
def test_stale(subject, meaning, comment, changes):
    signoff = add_signoff(subject, "security", meaning=meaning, comment=comment)
    assert_identical("stale", subject, signoff=signoff, changes=changes)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "state",
    [DeploymentState.APPROVED, DeploymentState.IN_REVIEW, DeploymentState.DEPLOYED],
    ids=["approved", "back-in-review", "deployed"],
)
def test_approved(subject, state):
    tina = UserFactory(username="tina")
    first = add_signoff(subject, "tech-lead", meaning=Meaning.REJECT, comment="Not yet")
    revoke(first, by=tina)
    add_signoff(subject, "tech-lead", name="Tina Doe", signed_at=REVOKED_AT)
    add_signoff(subject, "security", comment=AWKWARD, name=AWKWARD)
    add_signoff(subject, "devops", meaning=Meaning.APPROVE_WITH_CONDITIONS, comment="Scale to 4")
    revoke(add_signoff(subject, "product", name="Pat Doe"), by=tina)  # left out: revoked
    set_state(subject, state)
    notification = assert_identical("approved", subject)
    assert "Pat Doe" not in notification.body
    assert "  Conditions: Scale to 4\n" in notification.body


@pytest.mark.django_db
@pytest.mark.parametrize("state", [DeploymentState.DRAFT, DeploymentState.IN_REVIEW])
def test_approved_with_no_standing_signoff(subject, state):
    set_state(subject, state)
    assert_identical("approved", subject)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "errors",
    [None, [], ["iam.mfa [global]: Could not connect"], ["a: throttled", AWKWARD] * 600],
    ids=["none", "empty", "one", "1200"],
)
def test_reprobe_errors(subject, errors, settings):
    # A count in four digits stays unformatted even where numbers get a thousand separator.
    settings.USE_THOUSAND_SEPARATOR = True
    assert_identical("reprobe_errors", subject, changes=errors)


# The text itself, spelled out once, and the templates' shape.


@pytest.mark.django_db
def test_a_rejection_reads_as_plain_text(deployment):
    signoff = add_signoff(
        deployment, "security", meaning=Meaning.REJECT, comment="No <WAF> & no rate limit"
    )
    notification = notifications.notification_compose(
        "signed", deployment_id=deployment.pk, signoff_id=signoff.pk
    )
    url = f"http://localhost:8000/deployments/{deployment.pk}/"
    assert notification.subject == (
        "[Readiness] Security sign-off rejected: payments-api 2.4.0 → production"
    )
    assert notification.body == (
        "Sam Doe signed for Security on payments-api 2.4.0 → production (team Payments).\n"
        "\n"
        "Meaning: rejected\n"
        "Signed at: 2026-05-04 12:30 UTC\n"
        "Reason: No <WAF> & no rate limit\n"
        "\n"
        f"Role: {url}roles/security/\n"
        f"Deployment: {url}"
    )
    assert notification.webhook_text.splitlines()[5] == "Reason: No &lt;WAF&gt; &amp; no rate limit"


@pytest.mark.django_db
def test_a_stale_signoff_without_a_comment_or_changes_reads_as_plain_text(deployment):
    signoff = add_signoff(deployment, "devops", name="Dana Doe")
    notification = notifications.notification_compose(
        "stale", deployment_id=deployment.pk, signoff_id=signoff.pk, changes=[]
    )
    url = f"http://localhost:8000/deployments/{deployment.pk}/"
    assert notification.body == (
        "The DevOps sign-off of Dana Doe on payments-api 2.4.0 → production (team Payments) "
        "no longer holds: what it covered has changed since.\n"
        "\n"
        "Stale sign-off: approved, signed at 2026-05-04 12:30 UTC\n"
        "\n"
        "DevOps has to review and sign again.\n"
        "\n"
        f"Role: {url}roles/devops/\n"
        f"Deployment: {url}"
    )


@pytest.mark.parametrize("kind", notifications.KINDS)
@pytest.mark.parametrize("part", ["subject", "body"])
def test_every_kind_has_its_plain_text_templates(kind, part):
    name = f"signoff/notifications/{kind}-{part}.txt"
    source = get_template(name).template.source
    assert source.startswith("{% autoescape off %}"), name
    assert source.endswith("{% endautoescape %}\n"), name
    if part == "subject":
        assert source.count("\n") == 1, f"{name} is one line"


@pytest.mark.django_db
def test_another_team_is_named_as_it_is(deployment):
    """Not a fixed string: the team comes from the deployment (a second team, a second name)."""
    olga = UserFactory(username="olga")
    other = make_deployment(
        user=olga, team=TeamFactory(name="Search", slug="search", members=[olga])
    )
    notification = assert_identical("requested", other)
    assert "(team Search)" in notification.body
