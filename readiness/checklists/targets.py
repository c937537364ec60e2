"""State changes of a deployment's AWS target: the accounts its probes read, and the AWS
Organizations source they may be picked from.

Every change locks the deployment's row first (the one lock order), is one audit event in
that transaction, and tells the layers above that something a signature covers changed:
the accounts and their regions are part of what each role approves.

Listing an organization's accounts is an AWS call that can take seconds (a role to assume,
pages of 20 accounts, throttling): a worker makes it (aws_organization_list, sent through the
outbox), never a web request, and the page polls until the list is stored on the source.
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from readiness.audit.services import audit_record
from readiness.checklists import signals
from readiness.checklists.models import (
    AwsAccount,
    AwsOrganizationSource,
    Deployment,
    OrganizationListingState,
)
from readiness.checklists.services import RecordClosed, deployment_lock
from readiness.checklists.teams import require_member
from readiness.outbox.services import outbox_enqueue
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
    list_accounts: bool = False,
) -> AwsOrganizationSource:
    """Where this deployment's accounts are picked from. Nothing is probed through it: the
    accounts picked are added to the target, each with its own role. `list_accounts` asks a
    worker to list them (aws_organization_list) once this commits."""
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
    if list_accounts:
        _ask_listing(source)
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


LISTING_TASK = "readiness.aws_organization_list"
# A listing neither done nor failed this long after it was asked for (no worker running, a
# worker that died) is reported as failed, so the page never polls for ever. Longer than the
# task's time limit with its throttling retries.
LISTING_TIMEOUT = timedelta(seconds=180)
# AWS Organizations allows about one ListAccounts request per second per account; botocore
# retries a throttled call (standard mode), and the task tries again this many times later.
LISTING_THROTTLE_RETRIES = 3
THROTTLING_CODES = frozenset(
    {"TooManyRequestsException", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
)


class OrganizationThrottled(Exception):
    """AWS Organizations (or STS) throttled the listing: worth another try later."""


@dataclass(frozen=True)
class OrganizationListing:
    """Where the listing of a deployment's organization is, as a page shows it."""

    state: str  # an OrganizationListingState value
    accounts: list[OrganizationAccount] = field(default_factory=list)
    error: str = ""
    requested_at: datetime | None = None
    listed_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.state == OrganizationListingState.PENDING

    @property
    def done(self) -> bool:
        return self.state == OrganizationListingState.DONE

    @property
    def failed(self) -> bool:
        return self.state == OrganizationListingState.FAILED

    @property
    def waited_seconds(self) -> int:
        if self.requested_at is None:
            return 0
        return int((timezone.now() - self.requested_at).total_seconds())


def _ask_listing(source: AwsOrganizationSource) -> None:
    """A new listing attempt, sent to a worker after the commit (the outbox)."""
    source.listing_attempt += 1
    source.listing_state = OrganizationListingState.PENDING
    source.listing_requested_at = timezone.now()
    source.listed_at = None
    source.listed_accounts = []
    source.listing_error = ""
    source.save(
        update_fields=[
            "listing_attempt",
            "listing_state",
            "listing_requested_at",
            "listed_at",
            "listed_accounts",
            "listing_error",
        ]
    )
    outbox_enqueue(
        LISTING_TASK,
        key=f"organization-listing:{source.pk}:{source.listing_attempt}",
        args=[source.pk, source.listing_attempt],
    )


@transaction.atomic
def aws_organization_listing_request(*, deployment: Deployment, user) -> AwsOrganizationSource:
    """Ask a worker to list the accounts of the deployment's Organizations source again."""
    locked = _locked(deployment, user)
    source = AwsOrganizationSource.objects.filter(deployment=locked).first()
    if source is None:
        raise ValidationError("Set the Organizations source first.")
    _ask_listing(source)
    return source


def aws_organization_listing(source: AwsOrganizationSource) -> OrganizationListing:
    """The source's listing as it stands (no AWS call): a pending one asked for longer ago
    than LISTING_TIMEOUT reads as failed."""
    state, error = source.listing_state, source.listing_error
    if (
        state == OrganizationListingState.PENDING
        and source.listing_requested_at is not None
        and timezone.now() - source.listing_requested_at > LISTING_TIMEOUT
    ):
        state = OrganizationListingState.FAILED
        error = (
            f"No worker listed the accounts within {int(LISTING_TIMEOUT.total_seconds())} s "
            "of the request: is a worker running? List them again."
        )
    return OrganizationListing(
        state=state,
        accounts=[
            OrganizationAccount(**account)
            for account in (
                source.listed_accounts if state == OrganizationListingState.DONE else []
            )
        ],
        error=error,
        requested_at=source.listing_requested_at,
        listed_at=source.listed_at,
    )


def aws_organization_list(*, source_id: int, attempt: int, retry_throttling: bool = False) -> str:
    """The worker's part: list the organization's accounts through the source's role and
    store them, or the reason they could not be listed, for this attempt only (a newer
    request, or a second delivery that finished first, wins). Raises OrganizationThrottled
    when AWS throttled and `retry_throttling` (the task tries again later); returns the state
    written, or "" when there was nothing to do."""
    pending = AwsOrganizationSource.objects.filter(
        pk=source_id, listing_attempt=attempt, listing_state=OrganizationListingState.PENDING
    )
    source = pending.select_related("deployment").first()
    if source is None:
        return ""
    try:
        session = target_session(
            role_arn=source.role_arn,
            external_id=source.external_id,
            name=f"deployment-{source.deployment_id}-organizations",
        )
        accounts = organization_accounts(session, parent_id=source.parent_id)
    except Exception as exc:  # STS, Organizations, the network, the time limit: said in words
        if retry_throttling and _aws_error_code(exc) in THROTTLING_CODES:
            raise OrganizationThrottled(_aws_error_words(exc)) from exc
        written = pending.update(
            listing_state=OrganizationListingState.FAILED, listing_error=_aws_error_words(exc)
        )
        return OrganizationListingState.FAILED if written else ""
    written = pending.update(
        listing_state=OrganizationListingState.DONE,
        listed_at=timezone.now(),
        listed_accounts=[asdict(account) for account in accounts],
    )
    return OrganizationListingState.DONE if written else ""


def _aws_error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


# What a person can do about the errors the listing meets most.
_ERROR_ADVICE = {
    "AccessDenied": (
        "Check that the role exists, that its trust policy lets the Readiness workers assume "
        "it, and the external id."
    ),
    "AccessDeniedException": (
        "The role may not list the organization's accounts: its account must be the "
        "organization's management account or a delegated administrator, and its policy must "
        "allow organizations:ListAccounts (and ListAccountsForParent for one unit)."
    ),
    "AWSOrganizationsNotInUseException": (
        "The role's account is not in an AWS organization: name a role in the management "
        "account or a delegated administrator."
    ),
    "ParentNotFoundException": ("No organizational unit or root has that id in this organization."),
    **dict.fromkeys(
        THROTTLING_CODES,
        "AWS is throttling this account's requests; list the accounts again in a minute.",
    ),
}


def _aws_error_words(exc: Exception) -> str:
    code = _aws_error_code(exc)
    if code:
        error = getattr(exc, "response", {})["Error"]
        operation = getattr(exc, "operation_name", "") or "the call"
        words = f"AWS refused {operation}: {code} — {error.get('Message', '')}".strip()
        advice = _ERROR_ADVICE.get(code)
        return f"{words} {advice}"[:2000] if advice else words[:2000]
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
