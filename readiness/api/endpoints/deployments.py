"""/deployments: list, create (with the AWS accounts), read."""

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import Field, field_validator

from readiness.api.endpoints.common import (
    AwsAccountIn,
    DeploymentOut,
    Error,
    Pages,
    account_specs,
    require_writer,
    visible_deployment,
)
from readiness.checklists import selectors
from readiness.checklists.forms import DeploymentCreateForm
from readiness.checklists.models import DeploymentState
from readiness.checklists.services import deployment_create as create_deployment
from readiness.checklists.targets import MAX_ACCOUNTS, deployment_set_aws_target

router = Router()


class DeploymentFilter(Schema):
    service: str | None = None
    environment: str | None = None
    state: DeploymentState | None = None

    @field_validator("service", "environment")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # PostgreSQL cannot hold NUL in text: say so as a 400 instead of failing the query.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


# One account, as clients built before deployments spanned accounts send it.
class AwsTargetIn(Schema):
    account_id: str = Field(examples=["123456789012"])
    regions: list[str] = Field(examples=[["eu-west-1", "us-east-1"]])
    role_arn: str = ""
    external_id: str = ""


class DeploymentIn(Schema):
    service: str = Field(max_length=100, examples=["payments-api"])
    environment: str = Field(max_length=50, examples=["production"])
    version: str = Field(max_length=100, examples=["2.4.0"])
    planned_date: date | None = None
    team: str | None = Field(
        None, description="Team slug; may be left out by someone in exactly one team."
    )
    template_id: int | None = Field(None, description="Template id; the default when left out.")
    aws: AwsTargetIn | None = Field(
        None, description="The AWS account and regions the probes read (optional)."
    )
    aws_accounts: list[AwsAccountIn] = Field(
        [],
        max_length=MAX_ACCOUNTS,
        description="The AWS accounts the probes read, each with its regions (optional).",
    )

    @field_validator("planned_date", mode="before")
    @classmethod
    def _a_date_not_a_number(cls, value):
        # pydantic reads a number as seconds since 1970: `0` would plan for 1970-01-01.
        if isinstance(value, int | float):
            raise ValueError("a date is written YYYY-MM-DD")
        return value


@router.get("/deployments", response=list[DeploymentOut], tags=["deployments"])
@paginate(Pages, page_size=settings.API_PAGE_SIZE, max_page_size=500)
def deployments_list(request, filters: Query[DeploymentFilter]):
    """Your teams' deployments, newest first; filter by service, environment and state."""
    deployments = selectors.deployments_visible_to(request.user).order_by("-created_at", "-pk")
    if filters.service:
        deployments = deployments.filter(service=filters.service)
    if filters.environment:
        deployments = deployments.filter(environment=filters.environment)
    if filters.state:
        deployments = deployments.filter(state=filters.state)
    return deployments


@router.post(
    "/deployments",
    response={201: DeploymentOut, 400: Error, 403: Error},
    tags=["deployments"],
)
def deployments_create(request, payload: DeploymentIn):
    """Create a deployment from a template (the default one unless named)."""
    require_writer(request)
    team = selectors.team_for(request.user, payload.team)
    if team is None and payload.team:
        raise DjangoValidationError({"team": [f"You are not in a team “{payload.team}”."]})
    if team is None:
        raise DjangoValidationError(
            {"team": ["Name the team (its slug): you are in several teams, or none."]}
        )
    template = selectors.template_or_default(payload.template_id)
    if template is None:
        raise DjangoValidationError({"template_id": ["No such checklist template."]})
    form = DeploymentCreateForm(
        {
            "service": payload.service,
            "environment": payload.environment,
            "version": payload.version,
            "planned_date": payload.planned_date or "",
            "team": team.pk,
            "template": template.pk,
        },
        user=request.user,
    )
    if not form.is_valid():
        raise DjangoValidationError(
            {
                field: [error["message"] for error in errors]
                for field, errors in form.errors.get_json_data().items()
            }
        )
    if payload.aws is not None and payload.aws_accounts:
        raise DjangoValidationError({"aws": ["Name the accounts in aws or in aws_accounts."]})
    accounts = payload.aws_accounts
    if payload.aws is not None:
        accounts = [AwsAccountIn(**payload.aws.dict())]
    specs = account_specs(accounts, prefix="aws_accounts")
    with transaction.atomic():
        deployment = create_deployment(user=request.user, **form.cleaned_data)
        if specs:
            deployment_set_aws_target(deployment=deployment, user=request.user, accounts=specs)
    return Status(201, selectors.deployments_visible_to(request.user).get(pk=deployment.pk))


@router.get("/deployments/{int:deployment_id}", response=DeploymentOut, tags=["deployments"])
def deployments_read(request, deployment_id: int):
    return visible_deployment(request, deployment_id)
