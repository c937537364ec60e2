"""State changes of a deployment's AWS target: the accounts its probes read, and the AWS
Organizations source they may be picked from.

Every change locks the deployment's row first (the one lock order), is one audit event in
that transaction, and tells the layers above that something a signature covers changed:
the accounts and their regions are part of what each role approves.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from readiness.audit.services import audit_record
from readiness.checklists import signals
from readiness.checklists.models import AwsAccount, AwsOrganizationSource, Deployment
from readiness.checklists.services import RecordClosed, deployment_lock
from readiness.checklists.teams import require_member
from readiness.probes.organizations import OrganizationAccount, organization_accounts
from readiness.probes.session import target_session

# A deployment spans a handful of accounts; an organization can hold thousands, and each
# account multiplies a run's checks.
MAX_ACCOUNTS = 100


@dataclass(frozen=True)
class AccountSpec:
    """One account of a target as a form or the API states it (validated there)."""

    account_id: str
    regions: list[str] = field(default_factory=list)
    role_arn: str = ""
    external_id: str = ""
    name: str = ""


def target_state(accounts) -> list[dict]:
    """The target as the audit trail shows it: no external id, only whether one is set."""
    return [
        {
            "account_id": account.account_id,
            "name": account.name,
            "regions": list(account.regions),
            "role_arn": account.role_arn,
            "external_id_set": bool(account.external_id),
        }
        for account in sorted(accounts, key=lambda a: a.account_id)
    ]


def _locked(deployment: Deployment, user) -> Deployment:
    require_member(team=deployment.team, user=user)
    locked = deployment_lock(deployment.pk)
    if locked.is_closed:
        raise RecordClosed("This deployment's record is closed: its AWS target no longer changes.")
    return locked


def _changed(*, deployment: Deployment, user, action: str, before: list, reason: str = ""):
    """Audit the change (even one that left the target as it was: someone asked for it), and
    re-evaluate the sign-offs when the target moved."""
    after = target_state(deployment.aws_accounts.all())
    audit_record(
        actor=user,
        action=action,
        obj=deployment,
        deployment=deployment,
        before={"accounts": before},
        after={"accounts": after},
        reason=reason,
    )
    if after != before:
        signals.checklist_changed.send(sender=Deployment, deployment=deployment, actor=user)


def _check_without_role(deployment: Deployment, specs: list[AccountSpec]) -> None:
    if sum(1 for spec in specs if not spec.role_arn) > 1:
        raise ValidationError(
            {
                "aws_role_arn": [
                    "Only one account can be read with the worker's own credentials: "
                    "name a role to assume in the others."
                ]
            }
        )


def _row(deployment: Deployment, spec: AccountSpec) -> AwsAccount:
    return AwsAccount(
        deployment=deployment,
        account_id=spec.account_id,
        name=spec.name,
        regions=list(spec.regions),
        role_arn=spec.role_arn,
        external_id=spec.external_id if spec.role_arn else "",
    )


@transaction.atomic
def aws_account_save(*, deployment: Deployment, user, spec: AccountSpec) -> AwsAccount:
    """Add an account to the target, or change the one with that id."""
    locked = _locked(deployment, user)
    current = {account.account_id: account for account in locked.aws_accounts.all()}
    before = target_state(current.values())
    if spec.account_id not in current and len(current) >= MAX_ACCOUNTS:
        raise ValidationError(f"A deployment spans at most {MAX_ACCOUNTS} accounts.")
    others = [
        AccountSpec(account.account_id, role_arn=account.role_arn)
        for account in current.values()
        if account.account_id != spec.account_id
    ]
    _check_without_role(locked, [*others, spec])
    row = _row(locked, spec)
    account, _ = AwsAccount.objects.update_or_create(
        deployment=locked,
        account_id=spec.account_id,
        defaults={
            "name": row.name,
            "regions": row.regions,
            "role_arn": row.role_arn,
            "external_id": row.external_id,
        },
    )
    action = "aws_account_changed" if spec.account_id in current else "aws_account_added"
    _changed(deployment=locked, user=user, action=f"deployment.{action}", before=before)
    return account


@transaction.atomic
def aws_account_remove(*, deployment: Deployment, user, account_id: str) -> bool:
    """Take an account out of the target; False when it was not in it."""
    locked = _locked(deployment, user)
    before = target_state(locked.aws_accounts.all())
    removed, _ = AwsAccount.objects.filter(deployment=locked, account_id=account_id).delete()
    _changed(deployment=locked, user=user, action="deployment.aws_account_removed", before=before)
    return bool(removed)


@transaction.atomic
def deployment_set_aws_target(
    *, deployment: Deployment, user, accounts: list[AccountSpec]
) -> list[AwsAccount]:
    """Make the target exactly these accounts (the API's PUT, a deployment created with
    its target): accounts left out are removed, the others added or changed."""
    locked = _locked(deployment, user)
    ids = [spec.account_id for spec in accounts]
    if len(set(ids)) != len(ids):
        raise ValidationError("Each account may be named once.")
    if len(accounts) > MAX_ACCOUNTS:
        raise ValidationError(f"A deployment spans at most {MAX_ACCOUNTS} accounts.")
    _check_without_role(locked, accounts)
    before = target_state(locked.aws_accounts.all())
    AwsAccount.objects.filter(deployment=locked).delete()
    rows = AwsAccount.objects.bulk_create(_row(locked, spec) for spec in accounts)
    _changed(deployment=locked, user=user, action="deployment.aws_target_set", before=before)
    return rows


@transaction.atomic
def aws_organization_save(
    *,
    deployment: Deployment,
    user,
    role_arn: str,
    external_id: str = "",
    parent_id: str = "",
    member_role_pattern: str,
) -> AwsOrganizationSource:
    """Where this deployment's accounts are picked from. Nothing is probed through it: the
    accounts picked are added to the target, each with its own role."""
    locked = _locked(deployment, user)
    existing = AwsOrganizationSource.objects.filter(deployment=locked).first()
    before = _organization_state(existing)
    source, _ = AwsOrganizationSource.objects.update_or_create(
        deployment=locked,
        defaults={
            "role_arn": role_arn,
            "external_id": external_id,
            "parent_id": parent_id,
            "member_role_pattern": member_role_pattern,
        },
    )
    after = _organization_state(source)
    if after != before:
        audit_record(
            actor=user,
            action="deployment.aws_organization_set",
            obj=locked,
            deployment=locked,
            before=before,
            after=after,
        )
    return source


def _organization_state(source: AwsOrganizationSource | None) -> dict:
    if source is None:
        return {}
    return {
        "role_arn": source.role_arn,
        "external_id_set": bool(source.external_id),
        "parent_id": source.parent_id,
        "member_role_pattern": source.member_role_pattern,
    }


class OrganizationUnreadable(Exception):
    """AWS Organizations could not be read through the source's role (said in words)."""


def aws_organization_accounts(*, deployment: Deployment, user) -> list[OrganizationAccount]:
    """The accounts the deployment's Organizations source lists (an AWS call; no lock, no
    write). Raises OrganizationUnreadable with a sentence a person can act on."""
    require_member(team=deployment.team, user=user)
    source = AwsOrganizationSource.objects.filter(deployment=deployment).first()
    if source is None:
        raise ValidationError("Set the Organizations source first.")
    try:
        session = target_session(
            role_arn=source.role_arn,
            external_id=source.external_id,
            name=f"deployment-{deployment.pk}-organizations",
        )
        return organization_accounts(session, parent_id=source.parent_id)
    except Exception as exc:  # STS, Organizations or the network: all said the same way
        raise OrganizationUnreadable(_aws_error_words(exc)) from exc


def _aws_error_words(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    if error.get("Code"):
        operation = getattr(exc, "operation_name", "") or "the call"
        return f"AWS refused {operation}: {error['Code']} — {error.get('Message', '')}".strip()
    return f"Could not reach AWS: {type(exc).__name__}: {exc}"[:500]


@transaction.atomic
def aws_accounts_add_from_organization(
    *, deployment: Deployment, user, accounts: list[OrganizationAccount], regions: list[str]
) -> list[AwsAccount]:
    """Add the picked organization accounts to the target, each with the source's role
    pattern and external id; accounts already there keep what they have."""
    locked = _locked(deployment, user)
    source = AwsOrganizationSource.objects.filter(deployment=locked).first()
    if source is None:
        raise ValidationError("Set the Organizations source first.")
    current = {account.account_id for account in locked.aws_accounts.all()}
    before = target_state(locked.aws_accounts.all())
    new = [account for account in accounts if account.account_id not in current]
    if len(current) + len(new) > MAX_ACCOUNTS:
        raise ValidationError(f"A deployment spans at most {MAX_ACCOUNTS} accounts.")
    rows = AwsAccount.objects.bulk_create(
        _row(
            locked,
            AccountSpec(
                account_id=account.account_id,
                name=account.name[:100],
                regions=list(regions),
                role_arn=source.member_role_arn(account.account_id),
                external_id=source.external_id,
            ),
        )
        for account in new
    )
    _changed(
        deployment=locked,
        user=user,
        action="deployment.aws_accounts_added",
        before=before,
        reason=f"Picked from the organization listed by {source.role_arn}",
    )
    return rows
