"""What every router of the pipeline API shares: the error body, the token checks, links."""

from datetime import date, datetime

from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Schema
from ninja.errors import HttpError

from readiness.checklists import selectors
from readiness.checklists.models import Deployment


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
