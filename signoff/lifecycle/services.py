"""The deployment lifecycle and sign-off: request, sign, revoke, waive, re-evaluate, deploy,
verify. The only writer of `Deployment.state` (`_transition`, along `TRANSITIONS`).

Every function is the gate for its rule (views check too) and writes its audit event in the
same transaction. Notifications and the record are stored as outbox rows in that
transaction and sent after commit (or by the sweeper), so a failing broker, mail server or
webhook never blocks or loses a signature, nor loses the work it calls for.
"""

import functools
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.audit.services import audit_record, current_ip
from readiness.checklists.models import (
    ChecklistItem,
    Deployment,
    DeploymentState,
    PostDeploymentCheck,
    Team,
)
from readiness.checklists.ownership import UNOWNED_ITEM_ROLE_SLUG
from readiness.checklists.services import deployment_lock
from readiness.checklists.teams import require_member
from readiness.people import display_name
from readiness.sql import column, columns, instances
from signoff.notifications import services as notifications
from signoff.records.services import record_enqueue
from signoff.signatures import facts
from signoff.signatures.models import Meaning, Revocation, SignOff, Waiver
from signoff.signatures.selectors import (
    RoleStanding,
    all_approving,
    standings,
)
from signoff.teams import authentication, oidc
from signoff.teams.models import Role, RoleMembership


class SignOffConflict(Exception):
    """The request lost a race or the deployment moved on; the message says what holds now."""


def require_role(*, team: Team, role: Role, user) -> None:
    require_member(team=team, user=user)
    if not RoleMembership.objects.filter(team=team, role=role, user=user).exists():
        raise PermissionDenied(f"Only members holding {role} in {team} may do this.")


def _lock(deployment: Deployment) -> Deployment:
    """Re-read the deployment under its row lock: transitions of one deployment go one by one
    (the first lock of the one lock order)."""
    return deployment_lock(deployment.pk)


# The only moves a deployment makes; anything else is a bug, refused before it is written.
TRANSITIONS = {
    DeploymentState.DRAFT: {DeploymentState.IN_REVIEW},
    DeploymentState.IN_REVIEW: {DeploymentState.APPROVED},
    DeploymentState.APPROVED: {DeploymentState.IN_REVIEW, DeploymentState.DEPLOYED},
    DeploymentState.DEPLOYED: {DeploymentState.VERIFIED},
    DeploymentState.VERIFIED: set(),
}


def _transition(deployment: Deployment, *, to: str, actor, reason: str = "") -> str:
    """Move a locked deployment to `to`, with its audit event; returns the event's name for
    the work it calls for (outbox keys: one record, one mail per transition)."""
    before = deployment.state
    if to not in TRANSITIONS[before]:
        raise ValueError(f"A deployment does not go from {before} to {to}.")
    deployment.state = to
    deployment.save(update_fields=["state", "updated_at"])
    event = audit_record(
        actor=actor,
        action="deployment.state_changed",
        obj=deployment,
        deployment=deployment,
        before={"state": before},
        after={"state": to},
        reason=reason,
    )
    return f"audit-{event.pk}"


def _standings(deployment: Deployment) -> list[RoleStanding]:
    return standings([deployment])[deployment.pk]


def _bound_standings(deployment: Deployment) -> list[RoleStanding]:
    """The standings as a re-evaluation needs them: digests, blockers and who signed, over
    the bound fields of the items only (no model instances, no signers' users): it runs on
    every edit of a signed deployment."""
    return standings([deployment], rows=True, stale_recorded=True)[deployment.pk]


@transaction.atomic
def signoff_request(*, deployment: Deployment, user) -> Deployment:
    """draft → in review: the roles are asked to sign."""
    require_member(team=deployment.team, user=user)
    deployment = _lock(deployment)
    if deployment.state != DeploymentState.DRAFT:
        raise SignOffConflict(
            f"Sign-off was already requested: the deployment is {deployment.get_state_display()}."
        )
    event = _transition(
        deployment, to=DeploymentState.IN_REVIEW, actor=user, reason="sign-off requested"
    )
    notifications.announce("requested", deployment_id=deployment.pk, actor_id=user.pk, event=event)
    return deployment


def signoff_record(
    *,
    deployment: Deployment,
    role: Role,
    user,
    meaning: str,
    comment: str,
    password: str = "",
    username: str | None = None,
    request=None,
    identified_by: "oidc.VerifiedIdentity | oidc.StepUpRefused | None" = None,
) -> SignOff:
    """Sign for `role`: the signer identifies now (the password, and the username too at the
    first signing of a session: signoff.teams.authentication.signer_identify), and the
    signature binds the digest of what the role approves at this moment.

    The identity is checked before the transaction that stores the signature, so that a
    failed attempt stays counted (axes) and audited (`signoff.signing_failed`, on the
    deployment's chain) when the signing is refused."""
    require_role(team=deployment.team, role=role, user=user)
    if meaning not in Meaning.values:
        raise ValidationError({"meaning": "Choose approve, approve with conditions or reject."})
    comment = comment.strip()
    if meaning == Meaning.APPROVE_WITH_CONDITIONS and not comment:
        raise ValidationError({"comment": "Write the conditions of your approval."})
    if meaning == Meaning.REJECT and not comment:
        raise ValidationError({"comment": "Say why you reject."})
    if isinstance(identified_by, oidc.StepUpRefused):
        _signing_failure_record(deployment=deployment, role=role, user=user, refusal=identified_by)
        raise ValidationError(identified_by.message)
    if identified_by is not None:
        # Re-authenticated at the OpenID provider instead of a password: trusted only as
        # signoff.teams.oidc.step_up_identity made it, after checking sub and auth_time.
        if not identified_by.genuine:
            raise PermissionDenied("That identity was not verified by the OpenID provider.")
    else:
        try:
            authentication.signer_identify(
                request=request, user=user, username=username, password=password
            )
        except authentication.SigningRefused as refusal:
            _signing_failure_record(deployment=deployment, role=role, user=user, refusal=refusal)
            raise ValidationError(refusal.errors) from None
    return _signoff_store(
        deployment=deployment,
        role=role,
        user=user,
        meaning=meaning,
        comment=comment,
        identification=identified_by.facts() if identified_by is not None else None,
    )


@transaction.atomic
def _signing_failure_record(*, deployment: Deployment, role: Role, user, refusal) -> None:
    """A failed attempt to sign (21 CFR 11.300(d)), on the deployment's chain."""
    deployment = _lock(deployment)
    audit_record(
        actor=user,
        action="signoff.signing_failed",
        obj=deployment,
        deployment=deployment,
        after={"role": role.name, "user": user.get_username(), "failure": refusal.failure},
    )


@transaction.atomic
def _signoff_store(
    *,
    deployment: Deployment,
    role: Role,
    user,
    meaning: str,
    comment: str,
    identification: dict | None = None,
) -> SignOff:
    deployment = _lock(deployment)
    if deployment.state == DeploymentState.DRAFT:
        raise SignOffConflict("Sign-off has not been requested yet for this deployment.")
    if deployment.is_closed:
        raise SignOffConflict(
            f"The record is closed: the deployment is {deployment.get_state_display()}."
        )
    all_standings = _standings(deployment)
    standing = next((s for s in all_standings if s.role.pk == role.pk), None)
    if standing is None:
        raise ValidationError(f"{role} does not sign for this deployment's template.")
    if meaning != Meaning.REJECT:
        if standing.approving:
            active = standing.active
            raise SignOffConflict(
                f"{role} already approved: {active.printed_name}, "
                f"{active.signed_at:%Y-%m-%d %H:%M} UTC. Revoke it to sign again."
            )
        if standing.blockers:
            titles = ", ".join(f"{b.item.title} ({b.status_word})" for b in standing.blockers[:10])
            more = len(standing.blockers) - 10
            raise ValidationError(
                f"{role} cannot approve while these items are open or failed without a "
                f"waiver: {titles}" + (f" and {more} more" if more > 0 else "") + "."
            )
    if settings.SIGNOFF_ONE_ROLE_PER_PERSON:
        for other in all_standings:
            active = other.active
            if other.role.pk != role.pk and active is not None and active.user_id == user.pk:
                raise ValidationError(
                    f"You already signed for {other.role} on this deployment; one person "
                    "may not sign for two roles."
                )
    sequence = (
        SignOff.objects.filter(deployment=deployment, role=role).aggregate(n=Max("sequence"))["n"]
        or 0
    ) + 1
    try:
        # A savepoint, so that losing the race leaves the outer transaction usable.
        with transaction.atomic():
            signoff = SignOff.objects.create(
                deployment=deployment,
                role=role,
                sequence=sequence,
                user=user,
                printed_name=display_name(user),
                signed_at=timezone.now(),
                meaning=meaning,
                comment=comment,
                digest=standing.digest,
                approved_state=standing.state,
                ip=current_ip.get(),
            )
    except IntegrityError as error:
        raise SignOffConflict(
            f"Someone signed for {role} at the same moment; reload to see their signature."
        ) from error
    audit_record(
        actor=user,
        action="signoff.signed",
        obj=signoff,
        deployment=deployment,
        after={
            **facts.signoff_facts(signoff),
            # How the signer was identified when it was not a password: issuer, sub, auth_time.
            **({"identified_by": identification} if identification else {}),
        },
    )
    notifications.announce(
        "signed", deployment_id=deployment.pk, signoff_id=signoff.pk, actor_id=user.pk
    )
    signoff.revoked = None
    standing.signoffs = [*standing.signoffs, signoff]
    _settle(deployment, all_standings, actor=user)
    return signoff


@transaction.atomic
def signoff_revoke(*, signoff: SignOff, user, reason: str) -> Revocation:
    """Withdraw a signature; the signer or another holder of the role may. Adds a row."""
    deployment = signoff.deployment
    require_role(team=deployment.team, role=signoff.role, user=user)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the sign-off is revoked."})
    deployment = _lock(deployment)
    if deployment.is_closed:
        raise SignOffConflict(
            f"The record is closed: the deployment is {deployment.get_state_display()}."
        )
    latest = SignOff.objects.filter(deployment=deployment, role=signoff.role).latest("sequence")
    if latest.pk != signoff.pk:
        raise SignOffConflict("A newer sign-off replaced this one; only the latest can be revoked.")
    try:
        with transaction.atomic():
            revocation = Revocation.objects.create(
                signoff=signoff,
                revoked_by=user,
                revoked_at=timezone.now(),
                reason=reason,
                ip=current_ip.get(),
            )
    except IntegrityError as error:
        raise SignOffConflict("This sign-off was already revoked.") from error
    audit_record(
        actor=user,
        action="signoff.revoked",
        obj=signoff,
        deployment=deployment,
        before={"role": signoff.role.name, "meaning": signoff.meaning},
        after=facts.revocation_facts(revocation),
        reason=reason,
    )
    notifications.announce(
        "revoked", deployment_id=deployment.pk, signoff_id=signoff.pk, actor_id=user.pk
    )
    _settle(deployment, _standings(deployment), actor=user)
    return revocation


def _settle(deployment: Deployment, all_standings: list[RoleStanding], *, actor) -> None:
    """Move between in review and approved to match the signatures (deployment is locked)."""
    approving = all_approving(all_standings)
    if deployment.state == DeploymentState.IN_REVIEW and approving:
        event = _transition(
            deployment,
            to=DeploymentState.APPROVED,
            actor=actor,
            reason="every role approved: " + ", ".join(s.role.name for s in all_standings),
        )
        notifications.announce("approved", deployment_id=deployment.pk, event=event)
        record_enqueue(deployment.pk, event=event)
    elif deployment.state == DeploymentState.APPROVED and not approving:
        why = "; ".join(f"{s.role.name} {s.status_label}" for s in all_standings if not s.approving)
        _transition(deployment, to=DeploymentState.IN_REVIEW, actor=actor, reason=why)


def _lock_with_signed(deployment: Deployment) -> Deployment:
    """deployment_lock(pk, signed=<any signature not revoked>): the row re-read under its
    lock, with its team and template. When the caller's copy holds its team and template (an
    item edit read them with the item), they are kept and the row is read in SQL: the ORM's
    statement, joins and EXISTS, took more CPU to compile than to run, on every edit."""
    if not (Deployment.team.is_cached(deployment) and Deployment.template.is_cached(deployment)):
        return deployment_lock(
            deployment.pk,
            signed=Exists(
                SignOff.objects.filter(deployment=OuterRef("pk"), revocation__isnull=True)
            ),
        )
    with connection.cursor() as cursor:
        cursor.execute(_lock_with_signed_sql(), [deployment.pk])
        row = cursor.fetchone()
    # Built as raw() builds it, without raw()'s work of matching its columns to the fields
    # on every call: the statement lists them in the model's order.
    (locked,) = instances((Deployment,), row[:-1])
    locked.signed = bool(row[-1])  # SQLite answers 0 or 1
    # A deployment never changes team or template; the rows are the caller's, as read in
    # this request (neither is locked by the deployment's lock in either way of reading).
    if locked.team_id == deployment.team_id:
        locked.team = deployment.team
    if locked.template_id == deployment.template_id:
        locked.template = deployment.template
    return locked


@functools.cache
def _lock_with_signed_sql() -> str:
    quote = connection.ops.quote_name
    deployments, signoffs, revocations = Deployment._meta, SignOff._meta, Revocation._meta
    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_update else ""

    return (
        f"SELECT {columns(deployments, 'd')}, EXISTS(SELECT 1 FROM {quote(signoffs.db_table)} s"
        f" LEFT OUTER JOIN {quote(revocations.db_table)} r"
        f" ON r.{column(revocations, 'signoff')} = s.{quote(signoffs.pk.column)}"
        f" WHERE s.{column(signoffs, 'deployment')} = d.{quote(deployments.pk.column)}"
        f" AND r.{quote(revocations.pk.column)} IS NULL) AS signed"
        f" FROM {quote(deployments.db_table)} d WHERE d.{quote(deployments.pk.column)} = %s"
        f"{lock}"
    )


def deployment_reevaluate(
    *, deployment: Deployment, actor=None, changed_item=None, status_changed: bool = True
) -> list[RoleStanding]:
    """After a change to anything a signature covers: record the sign-offs it made stale
    (once each, with what changed) and take an approved deployment back to review.

    Call inside the transaction of the change. Returns the standings that turned stale.
    `changed_item` (an item edit) limits the work to the roles whose approval covers that
    item (see `_touched_standings`); without it every role is looked at.
    """
    # The caller holds the deployment's lock (the change it reports took it first), so
    # reading the row under it again costs no wait, and says in the same statement whether
    # any signature stands that the change could make stale.
    deployment = _lock_with_signed(deployment)
    if not deployment.signed:
        return []
    if (
        changed_item is not None
        and not status_changed
        and deployment.state != DeploymentState.APPROVED
        and _edit_keeps_its_role_unapproved(deployment, changed_item)
    ):
        return []
    all_standings = None
    if changed_item is None:
        considered = all_standings = _bound_standings(deployment)
    else:
        considered = _touched_standings(deployment, changed_item, status_changed=status_changed)
    turned = [
        s
        for s in considered
        if s.active is not None and not s.fresh and not s.active.stale_recorded
    ]
    for standing in turned:
        audit_record(
            actor=actor,
            action="signoff.stale",
            obj=standing.active,
            deployment=deployment,
            before={"digest": standing.active.digest},
            after={"digest": standing.digest, "changes": standing.changes[:50]},
        )
        notifications.announce(
            "stale",
            deployment_id=deployment.pk,
            signoff_id=standing.active.pk,
            changes=standing.changes[:20],
        )
    if deployment.is_closed:
        return turned
    if all_standings is None:
        # The roles the edit did not touch approve (or not) exactly as before it, so the
        # touched ones decide: an approved deployment stays approved while they all still
        # approve, and one in review can only become approved once they all do, and then
        # every role is read to be sure.
        touched_approve = all(standing.approving for standing in considered)
        if deployment.state == DeploymentState.APPROVED and not touched_approve:
            all_standings = considered
        elif deployment.state == DeploymentState.IN_REVIEW and touched_approve:
            all_standings = _bound_standings(deployment)
        else:
            return turned
    _settle(deployment, all_standings, actor=actor)
    return turned


# What of an item a role that owns it approves, besides its waiver and evidence: the fields
# an edit writes.
EDITED_ITEM_FIELDS = ("status", "note", "evidence_url", "na_reason")


@functools.cache
def _latest_signature_sql() -> str:
    """A role's latest signature on a deployment: (revoked?, its stale event recorded?, what
    it approved). What stale_event_recorded asks, written in SQL: built through the ORM, the
    query took more CPU to compile than to run, on every edit of a signed checklist."""
    quote = connection.ops.quote_name
    signoffs, revocations = SignOff._meta, Revocation._meta
    events = AuditEvent._meta

    return (
        f"SELECT r.{quote(revocations.pk.column)} IS NOT NULL, EXISTS(SELECT 1 FROM"
        f" {quote(events.db_table)} e WHERE e.{column(events, 'action')} = 'signoff.stale'"
        f" AND e.{column(events, 'object_type')} = 'signoff.signoff'"
        f" AND e.{column(events, 'object_id')} = CAST(s.{quote(signoffs.pk.column)} AS VARCHAR)),"
        f" s.{column(signoffs, 'approved_state')}"
        f" FROM {quote(signoffs.db_table)} s LEFT OUTER JOIN {quote(revocations.db_table)} r"
        f" ON r.{column(revocations, 'signoff')} = s.{quote(signoffs.pk.column)}"
        f" WHERE s.{column(signoffs, 'deployment')} = %s AND s.{column(signoffs, 'role')} = %s"
        f" ORDER BY s.{column(signoffs, 'sequence')} DESC LIMIT 1"
    )


def _edit_keeps_its_role_unapproved(deployment: Deployment, item) -> bool:
    """Whether an edit of `item` that kept its status (only its owning role's approval
    covers it then) certainly leaves that role's standing as it was, stale and recorded so,
    or unsigned, so that there is nothing to record and no role to read: the role's latest
    signature was revoked (or there is none), or it is recorded stale already and approved
    the item other than it is now, so the state can no longer hash to its digest (in any
    format: the item's fields are in each). One read, where the standings take six; the
    edits of a stale signed checklist, made one after the other while it is in review,
    are this case.
    """
    if item.owner_role_id is None:
        return False  # no role owns it: every role's standing decides, as below
    with connection.cursor() as cursor:
        cursor.execute(_latest_signature_sql(), [deployment.pk, item.owner_role_id])
        latest = cursor.fetchone()
    if latest is None:
        return True
    revoked, stale_recorded, approved_state = latest
    if revoked:
        return True
    if not stale_recorded:
        return False
    approved_state = SignOff._meta.get_field("approved_state").from_db_value(
        approved_state, None, connection
    )
    signed = next(
        (entry for entry in approved_state.get("items", []) if entry["id"] == item.pk),
        None,
    )
    return signed is None or any(
        signed.get(field) != getattr(item, field) for field in EDITED_ITEM_FIELDS
    )


def _touched_standings(deployment: Deployment, item, *, status_changed: bool):
    """The standings of the roles whose approved state an edit of `item` can change: the
    role that owns it (its approval lists its own items in full), and, when the status
    changed, the roles that own no item (their approval is every item's status)."""
    if not status_changed:
        if item.owner_role_id is None:
            return []
        # The owning role was read with the item. Named by the template's sign-off table, it
        # is required here; otherwise whether it is (as every role, where the table names
        # none that exists) takes reading them all.
        owner = item.owner_role
        named = owner.name in (deployment.template.sign_off_roles or [])
        return standings(
            [deployment],
            role_ids={owner.pk},
            roles=[owner] if named else None,
            owners_only=True,
            rows=True,
            stale_recorded=True,
        )[deployment.pk]
    # The roles that own nothing read every item, so nothing is saved on the reading.
    return [
        standing
        for standing in _bound_standings(deployment)
        if standing.role.pk == item.owner_role_id or standing.summary_scope
    ]


def require_waiver_authority(item: ChecklistItem, user) -> None:
    """Whoever signs for the item's role accepts its risk; unowned items need a Tech Lead."""
    team = item.section.deployment.team
    role = item.owner_role or Role.objects.filter(slug=UNOWNED_ITEM_ROLE_SLUG).first()
    if role is None:
        raise PermissionDenied("No role may waive this item.")
    require_role(team=team, role=role, user=user)


@transaction.atomic
def waiver_grant(*, item: ChecklistItem, user, reason: str, expires_at: datetime) -> Waiver:
    require_waiver_authority(item, user)
    deployment = _lock(item.section.deployment)
    if deployment.is_closed:
        raise SignOffConflict(
            f"The record is closed: the deployment is {deployment.get_state_display()}."
        )
    reason = reason.strip()
    now = timezone.now()
    errors = {}
    if not reason:
        errors["reason"] = "Say why the risk is accepted."
    if expires_at <= now:
        errors["expires_at"] = "The expiry must be in the future."
    elif expires_at > now + timedelta(days=settings.WAIVER_MAX_DAYS):
        errors["expires_at"] = f"A waiver lasts at most {settings.WAIVER_MAX_DAYS} days."
    if errors:
        raise ValidationError(errors)
    # Read, not locked: item edits lock the item before the deployment, and taking them in
    # the other order here could deadlock with one.
    item = ChecklistItem.objects.get(pk=item.pk)
    if item.is_complete:
        raise ValidationError(f"“{item.title}” is {item.get_status_display().lower()}: no waiver.")
    if item.waivers.filter(withdrawn_at__isnull=True, expires_at__gt=now).exists():
        raise SignOffConflict(f"“{item.title}” already has a waiver in force.")
    waiver = Waiver.objects.create(
        item=item, reason=reason, granted_by=user, granted_at=now, expires_at=expires_at
    )
    audit_record(
        actor=user,
        action="waiver.granted",
        obj=waiver,
        deployment=deployment,
        after=facts.waiver_facts(waiver),
    )
    deployment_reevaluate(deployment=deployment, actor=user)
    return waiver


@transaction.atomic
def waiver_withdraw(*, waiver: Waiver, user, reason: str) -> Waiver:
    require_waiver_authority(waiver.item, user)
    deployment = _lock(waiver.item.section.deployment)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"withdrawal_reason": "Say why the waiver is withdrawn."})
    now = timezone.now()
    withdrawn = Waiver.objects.filter(pk=waiver.pk, withdrawn_at__isnull=True).update(
        withdrawn_at=now, withdrawn_by=user, withdrawal_reason=reason
    )
    if not withdrawn:
        raise SignOffConflict("This waiver was already withdrawn.")
    waiver.refresh_from_db()
    audit_record(
        actor=user,
        action="waiver.withdrawn",
        obj=waiver,
        deployment=deployment,
        before={"item": waiver.item.title, "expires_at": waiver.expires_at.isoformat()},
        after=facts.withdrawal_facts(waiver),
        reason=reason,
    )
    deployment_reevaluate(deployment=deployment, actor=user)
    return waiver


@transaction.atomic
def deployment_mark_deployed(*, deployment: Deployment, user, deployed_at: datetime) -> Deployment:
    """approved → deployed, recording the Deployment Date; only while every approval holds."""
    require_member(team=deployment.team, user=user)
    deployment = _lock(deployment)
    if deployment.state != DeploymentState.APPROVED:
        raise SignOffConflict(
            f"Only an approved deployment can be marked deployed; this one is "
            f"{deployment.get_state_display().lower()}."
        )
    if deployed_at > timezone.now() + timedelta(minutes=5):
        raise ValidationError({"deployed_at": "The deployment date cannot be in the future."})
    all_standings = _standings(deployment)
    if not all_approving(all_standings):
        _settle(deployment, all_standings, actor=user)
        raise SignOffConflict("A sign-off no longer holds; the deployment is back in review.")
    deployment.deployed_at = deployed_at
    deployment.save(update_fields=["deployed_at", "updated_at"])
    _transition(
        deployment,
        to=DeploymentState.DEPLOYED,
        actor=user,
        reason=f"deployed at {deployed_at.isoformat()}",
    )
    return deployment


@transaction.atomic
def post_check_record(*, check: PostDeploymentCheck, user, note: str) -> PostDeploymentCheck:
    """Tick one Post-Deployment Note, by a named person with what they saw; the last one
    makes the deployment verified."""
    deployment = check.deployment
    require_member(team=deployment.team, user=user)
    note = note.strip()
    if not note:
        raise ValidationError({"note": "Say what you checked and what you saw."})
    deployment = _lock(deployment)
    if deployment.state != DeploymentState.DEPLOYED:
        raise SignOffConflict(
            "Post-deployment checks are recorded after the deployment is marked deployed; "
            f"this one is {deployment.get_state_display().lower()}."
        )
    now = timezone.now()
    ticked = PostDeploymentCheck.objects.filter(pk=check.pk, checked=False).update(
        checked=True, checked_by=user, checked_at=now, note=note
    )
    if not ticked:
        raise SignOffConflict(f"“{check.label}” was already checked.")
    check.refresh_from_db()
    audit_record(
        actor=user,
        action="post_check.checked",
        obj=check,
        deployment=deployment,
        after={"label": check.label, "note": note},
    )
    if not deployment.post_deployment_checks.filter(checked=False).exists():
        event = _transition(
            deployment,
            to=DeploymentState.VERIFIED,
            actor=user,
            reason="every post-deployment check recorded",
        )
        record_enqueue(deployment.pk, event=event)
    return check
