"""What every router of the pipeline API shares: the error body, the token checks, links."""

from datetime import date, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Schema
from ninja.errors import HttpError
from ninja.pagination import PageNumberPagination
from pydantic import Field

from readiness.checklists import selectors
from readiness.checklists.forms import AwsAccountForm
from readiness.checklists.models import Deployment
from readiness.checklists.targets import AccountSpec


class Error(Schema):
    detail: str
    errors: dict[str, list[str]] | None = None


def require_writer(request) -> None:
    if not request.api_token.can_write:
        raise HttpError(403, "This token is read-only: create one with the write scope.")


def visible_deployment(request, pk: int) -> Deployment:
    return get_object_or_404(selectors.deployments_visible_to(request.user), pk=pk)


def absolute_url(request, path: str) -> str:
    """The address as the client reached this server, so links in answers work from CI."""
    return request.build_absolute_uri(path)


class DeploymentOut(Schema):
    id: int
    service: str
    environment: str
    version: str
    state: str
    team: str
    template: str
    planned_date: date | None
    deployed_at: datetime | None
    created_at: datetime
    url: str

    @staticmethod
    def resolve_team(obj: Deployment) -> str:
        return obj.team.slug

    @staticmethod
    def resolve_template(obj: Deployment) -> str:
        return f"{obj.template.name} v{obj.template.version}"

    @staticmethod
    def resolve_url(obj: Deployment, context) -> str:
        return absolute_url(context["request"], reverse("deployment_detail", args=[obj.pk]))


class Pages(PageNumberPagination):
    """django-ninja's page numbers, with a page far past the end an empty page: its offset
    would not fit the database's OFFSET (bigint), and that is a client's typo, not a 500."""

    MAX_OFFSET = 2**62

    def paginate_queryset(self, queryset, pagination, request, **params):
        offset = (pagination.page - 1) * self._get_page_size(pagination.page_size)
        if offset > self.MAX_OFFSET:
            return {self.items_attribute: [], "count": self._items_count(queryset)}
        return super().paginate_queryset(queryset, pagination, request, **params)


class AwsAccountIn(Schema):
    account_id: str = Field(examples=["123456789012"])
    regions: list[str] = Field(examples=[["eu-west-1", "us-east-1"]], max_length=20)
    role_arn: str = Field(
        "",
        description="The role the workers assume in this account; empty: the worker's own "
        "credentials (one account at most).",
        examples=["arn:aws:iam::123456789012:role/ReadinessProbe"],
    )
    external_id: str = Field("", description="Presented when assuming the role.")
    name: str = Field("", max_length=100, examples=["workload"])


class AwsAccountOut(Schema):
    account_id: str
    name: str
    regions: list[str]
    role_arn: str
    external_id_set: bool

    @staticmethod
    def resolve_external_id_set(obj) -> bool:
        return bool(obj.external_id)


def account_specs(accounts: list[AwsAccountIn], *, prefix: str) -> list[AccountSpec]:
    """Validate each account as the AWS target page does; errors keyed `prefix.N.field`."""
    specs, errors = [], {}
    for index, account in enumerate(accounts):
        form = AwsAccountForm(
            {
                "aws_account_id": account.account_id,
                "aws_name": account.name,
                "aws_regions": ", ".join(account.regions),
                "aws_role_arn": account.role_arn,
                "aws_external_id": account.external_id,
            }
        )
        if form.is_valid():
            specs.append(form.spec())
            continue
        for field, field_errors in form.errors.get_json_data().items():
            key = f"{prefix}.{index}.{field.removeprefix('aws_')}"
            errors[key] = [error["message"] for error in field_errors]
    if errors:
        raise DjangoValidationError(errors)
    return specs
