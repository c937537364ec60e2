"""Sign-off notifications: who is told what, by email and by an optional chat webhook.

Services call `announce()` inside their transaction: it stores one outbox row per channel
(readiness.outbox) in that transaction, sent after the commit or, if the broker is away, by
the outbox sweeper; the tasks do their work once per row (`outbox_once`). A notification can
neither block nor undo a sign-off, and a broker outage delays it without losing it.

`notification_compose()` builds the one message both channels send: its title and body come
from the templates in templates/signoff/notifications/ (one subject and one body per kind,
plain text), the webhook's Slack escaping is done here.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from readiness.audit.models import AuditEvent
from readiness.checklists.models import Deployment, DeploymentState
from readiness.outbox.services import Intent, outbox_enqueue, outbox_enqueue_many
from readiness.people import display_name
from signoff.signatures.models import Meaning, SignOff
from signoff.signatures.selectors import required_roles
from signoff.teams import authentication
from signoff.teams.models import Role, RoleMembership

KINDS = ("requested", "signed", "revoked", "stale", "approved", "reprobe_errors")
SIGNOFF_KINDS = ("signed", "revoked", "stale")
# The person who signed or revoked knows it already; everyone else concerned is told.
ACTOR_EXCLUDED_KINDS = ("signed", "revoked")
SUBJECT_PREFIX = "[Readiness] "
# <kind>-subject.txt renders the title (the prefix is added here), <kind>-body.txt the body.
TEMPLATE_DIR = "signoff/notifications"
COMMENT_LABELS = {
    Meaning.APPROVE: "Comment",
    Meaning.APPROVE_WITH_CONDITIONS: "Conditions",
    Meaning.REJECT: "Reason",
}


@dataclass(frozen=True)
class Notification:
    title: str
    body: str
    recipients: tuple[str, ...]

    @property
    def subject(self) -> str:
        return SUBJECT_PREFIX + self.title

    @property
    def webhook_text(self) -> str:
        """Slack message text: bold title, then the body; &, < and > are control characters
        in Slack's format and must be escaped."""
        return f"*{_slack_escape(self.title)}*\n{_slack_escape(self.body)}"


def announce(
    kind: str,
    *,
    deployment_id: int,
    signoff_id: int | None = None,
    actor_id: int | None = None,
    changes: list[str] | None = None,
    event: str | None = None,
) -> None:
    """Tell the people concerned about a sign-off event once the current transaction commits;
    call it inside that transaction.

    `event` names the occurrence (it goes into the outbox keys, so announcing it again adds
    nothing): the transition's audit event, a probe run; for the kinds about one sign-off
    it is that sign-off.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown notification kind {kind!r}; expected one of {KINDS}.")
    if kind in SIGNOFF_KINDS and signoff_id is None:
        raise ValueError(f"A {kind!r} notification needs the signoff_id.")
    payload = {
        "kind": kind,
        "deployment_id": deployment_id,
        "signoff_id": signoff_id,
        "actor_id": actor_id,
        "changes": [str(change) for change in changes] if changes else None,
    }
    event = event or _event_of(kind, signoff_id=signoff_id)
    channels = {"email": "signoff.notification_email_send"}
    if settings.NOTIFY_WEBHOOK_URL:
        channels["webhook"] = "signoff.notification_webhook_send"
    # One row per channel: each is sent, retried and done on its own.
    keys = {channel: f"notify:{kind}:{deployment_id}:{event}:{channel}" for channel in channels}
    outbox_enqueue_many(
        Intent(task, keys[channel], kwargs={**payload, "outbox_key": keys[channel]})
        for channel, task in channels.items()
    )


def _event_of(kind: str, *, signoff_id: int | None) -> str:
    if kind in SIGNOFF_KINDS:
        # Each happens once per sign-off: signed, revoked (one revocation), stale (recorded
        # once, see deployment_reevaluate).
        return f"signoff-{signoff_id}"
    raise ValueError(f"A {kind!r} notification needs the event it is about.")


def notification_compose(
    kind: str,
    *,
    deployment_id: int,
    signoff_id: int | None = None,
    actor_id: int | None = None,
    changes: list[str] | None = None,
) -> Notification | None:
    """The title, body and recipients of one event, read from the database now; None when
    what it refers to no longer exists."""
    deployment = (
        Deployment.objects.select_related("team", "template").filter(pk=deployment_id).first()
    )
    if deployment is None:
        return None
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    signoff = None
    if kind in SIGNOFF_KINDS:
        signoff = (
            SignOff.objects.select_related("role", "revocation__revoked_by")
            .filter(pk=signoff_id, deployment=deployment)
            .first()
        )
        if signoff is None:
            return None

    if kind == "requested":
        title, body = _requested(deployment, actor)
    elif kind == "signed":
        title, body = _signed(deployment, signoff)
    elif kind == "revoked":
        revocation = _revocation(signoff)
        if revocation is None:
            return None
        title, body = _revoked(deployment, signoff, revocation)
    elif kind == "stale":
        title, body = _stale(deployment, signoff, changes or [])
    elif kind == "approved":
        title, body = _approved(deployment)
    elif kind == "reprobe_errors":
        title, body = _reprobe_errors(deployment, changes or [])
    else:
        raise ValueError(f"Unknown notification kind {kind!r}.")

    recipients = notification_recipients(
        deployment=deployment,
        role=signoff.role if signoff else None,
        include_owner=kind != "requested",
        # An unreadable re-probe is the owner's to chase; it changes no one's signature.
        include_holders=kind != "reprobe_errors",
        exclude_user_id=actor_id if kind in ACTOR_EXCLUDED_KINDS else None,
    )
    return Notification(title=title, body=body, recipients=recipients)


def notification_recipients(
    *,
    deployment: Deployment,
    role: Role | None = None,
    include_owner: bool = True,
    include_holders: bool = True,
    exclude_user_id: int | None = None,
) -> tuple[str, ...]:
    """Email addresses of the holders of `role` (of every role when None) in the deployment's
    team, plus its owner, each once.

    Only current, active team members: a team's deployments are visible to its members only,
    so someone who left the team keeps no window onto them through their inbox.
    """
    holders = RoleMembership.objects.filter(team=deployment.team)
    if role is not None:
        holders = holders.filter(role=role)
    user_ids = set(holders.values_list("user_id", flat=True)) if include_holders else set()
    if include_owner:
        user_ids.add(deployment.owner_id)
    user_ids.discard(exclude_user_id)
    emails = (
        get_user_model()
        .objects.filter(pk__in=user_ids, is_active=True, teams=deployment.team)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
    )
    unique: dict[str, str] = {}
    for email in emails:
        unique.setdefault(email.strip().lower(), email.strip())
    return tuple(unique.values())


# Security notifications: to the administrators, about the installation rather than a
# deployment.


@transaction.atomic
def lockout_report(*, request, username: str | None, ip_address: str | None) -> None:
    """A lockout (axes' user_locked_out): audited, and the administrators told by mail and
    webhook once per lockout (the audit event is the occurrence the outbox keys name)."""
    event = authentication.lockout_record(request=request, username=username, ip_address=ip_address)
    if event is None:
        return
    channels = {"email": "signoff.security_email_send"}
    if settings.NOTIFY_WEBHOOK_URL:
        channels["webhook"] = "signoff.security_webhook_send"
    for channel, task in channels.items():
        key = f"security:lockout:audit-{event.pk}:{channel}"
        outbox_enqueue(task, key=key, kwargs={"event_id": event.pk, "outbox_key": key})


def administrator_recipients() -> tuple[str, ...]:
    """Email addresses of the active superusers and holders of "manage teams" (directly or
    through a group), each once."""
    manage_teams = Permission.objects.filter(
        content_type__app_label="signoff", codename="manage_teams"
    ).first()
    holders = Q(is_superuser=True)
    if manage_teams is not None:
        holders |= Q(user_permissions=manage_teams) | Q(groups__permissions=manage_teams)
    emails = (
        get_user_model()
        .objects.filter(holders, is_active=True)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
        .distinct()
    )
    unique: dict[str, str] = {}
    for email in emails:
        unique.setdefault(email.strip().lower(), email.strip())
    return tuple(unique.values())


def security_compose(event_id: int) -> Notification | None:
    """The message about a security audit event (a lockout), read from the trail now."""
    event = AuditEvent.objects.filter(pk=event_id, action="user.locked_out").first()
    if event is None:
        return None
    after = event.after or {}
    cooloff = after.get("cooloff_minutes")
    title, body = _render(
        "lockout",
        {
            "username": after.get("username") or "(no name)",
            "ip_address": after.get("ip_address") or "unknown",
            "failures": str(after.get("failures") or after.get("limit") or ""),
            "at": _utc(event.created_at),
            "until": f"for {cooloff} minutes after the last attempt"
            if cooloff
            else "until an administrator unlocks it",
            "event_id": str(event.pk),
            "admin_url": settings.SITE_URL + reverse("admin:axes_accessattempt_changelist"),
        },
    )
    return Notification(title=title, body=body, recipients=administrator_recipients())


def _render(kind: str, context: dict) -> tuple[str, str]:
    """The title and body of one kind, from its two templates.

    The templates are plain text (autoescape off in each). The title is one line: what the
    template leaves around it is stripped. The body ends where its last line does: the
    newlines the template files end with are dropped.
    """
    title = render_to_string(f"{TEMPLATE_DIR}/{kind}-subject.txt", context).strip()
    body = render_to_string(f"{TEMPLATE_DIR}/{kind}-body.txt", context).rstrip("\n")
    return title, body


def _requested(deployment: Deployment, actor) -> tuple[str, str]:
    roles = required_roles(deployment, list(Role.objects.all()))
    return _render(
        "requested",
        {
            "deployment": deployment,
            "who": display_name(actor) if actor else "Someone",
            "roles": [(role, _role_url(deployment, role)) for role in roles],
            "deployment_url": _deployment_url(deployment),
        },
    )


def _signed(deployment: Deployment, signoff: SignOff) -> tuple[str, str]:
    return _render("signed", _signoff_context(deployment, signoff))


def _revoked(deployment: Deployment, signoff: SignOff, revocation) -> tuple[str, str]:
    context = _signoff_context(deployment, signoff)
    context["revocation"] = {
        "revoked_by": display_name(revocation.revoked_by),
        "revoked_at": _utc(revocation.revoked_at),
        "reason": revocation.reason,
    }
    return _render("revoked", context)


def _stale(deployment: Deployment, signoff: SignOff, changes: list[str]) -> tuple[str, str]:
    context = _signoff_context(deployment, signoff)
    context["changes"] = changes
    return _render("stale", context)


def _reprobe_errors(deployment: Deployment, errors: list[str]) -> tuple[str, str]:
    return _render(
        "reprobe_errors",
        {
            "deployment": deployment,
            "errors": errors,
            # A string: the template engine would localize a number.
            "error_count": str(len(errors)),
            "deployment_url": _deployment_url(deployment),
        },
    )


def _approved(deployment: Deployment) -> tuple[str, str]:
    latest: dict[int, SignOff] = {}
    for signoff in (
        SignOff.objects.filter(deployment=deployment)
        .select_related("role", "revocation")
        .order_by("role__position", "sequence")
    ):
        latest[signoff.role_id] = signoff
    return _render(
        "approved",
        {
            "deployment": deployment,
            "signoffs": [
                _signoff_fields(signoff)
                for signoff in latest.values()
                if _revocation(signoff) is None
            ],
            # Composed late (a backlog, retries) after a sign-off was revoked or turned stale.
            "back_in_review": deployment.state == DeploymentState.IN_REVIEW,
            "deployment_url": _deployment_url(deployment),
        },
    )


def _signoff_context(deployment: Deployment, signoff: SignOff) -> dict:
    """What the templates of an event about one sign-off read."""
    return {
        "deployment": deployment,
        "signoff": _signoff_fields(signoff),
        "role_url": _role_url(deployment, signoff.role),
        "deployment_url": _deployment_url(deployment),
    }


def _signoff_fields(signoff: SignOff) -> dict:
    """One sign-off as the templates show it, formatted here (the engine would localize the
    time); `comment.txt` reads `comment` and `comment_label`."""
    return {
        "role": signoff.role,
        "printed_name": signoff.printed_name,
        "meaning": signoff.get_meaning_display(),
        "signed_at": _utc(signoff.signed_at),
        "comment": signoff.comment,
        "comment_label": COMMENT_LABELS.get(signoff.meaning, "Comment"),
    }


def _deployment_url(deployment: Deployment) -> str:
    return settings.SITE_URL + reverse("deployment_detail", args=[deployment.pk])


def _role_url(deployment: Deployment, role: Role) -> str:
    return settings.SITE_URL + reverse("role_detail", args=[deployment.pk, role.slug])


def _revocation(signoff: SignOff):
    try:
        return signoff.revocation
    except ObjectDoesNotExist:
        return None


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
