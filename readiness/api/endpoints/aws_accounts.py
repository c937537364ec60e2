"""/deployments/{id}/aws-accounts: the accounts a deployment's probes read."""

from django.core.exceptions import ValidationError as DjangoValidationError
from ninja import Router

from readiness.api.endpoints.common import (
    AwsAccountIn,
    AwsAccountOut,
    Error,
    account_specs,
    require_writer,
    visible_deployment,
)
from readiness.checklists.targets import MAX_ACCOUNTS, deployment_set_aws_target

router = Router()


@router.get(
    "/deployments/{int:deployment_id}/aws-accounts",
    response=list[AwsAccountOut],
    tags=["deployments"],
)
def aws_accounts_list(request, deployment_id: int):
    """The AWS accounts the probes read, each with its regions and role (no external id:
    only whether one is set)."""
    return list(visible_deployment(request, deployment_id).aws_accounts.order_by("account_id"))


@router.put(
    "/deployments/{int:deployment_id}/aws-accounts",
    response={200: list[AwsAccountOut], 400: Error, 403: Error, 404: Error},
    tags=["deployments"],
)
def aws_accounts_replace(request, deployment_id: int, payload: list[AwsAccountIn]):
    """Make the deployment's AWS target exactly these accounts (audited; the accounts and
    their regions are part of what each sign-off approves, so a change makes them stale)."""
    require_writer(request)
    deployment = visible_deployment(request, deployment_id)
    if len(payload) > MAX_ACCOUNTS:
        raise DjangoValidationError(f"A deployment spans at most {MAX_ACCOUNTS} accounts.")
    specs = account_specs(payload, prefix="accounts")
    deployment_set_aws_target(deployment=deployment, user=request.user, accounts=specs)
    return list(deployment.aws_accounts.order_by("account_id"))
