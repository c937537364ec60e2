"""The checklist pages' tests (readiness.web): helpers and fixtures shared by the modules
of this folder. Every page: anonymous, wrong team or role, right role, htmx variant, and bad
input."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from readiness.checklists import selectors, services
from readiness.checklists.models import (
    ChecklistItem,
    ChecklistTemplate,
    Deployment,
    DeploymentSection,
    TemplateItem,
    TemplateSection,
)
from readiness.probe_runs.models import ProbeRun, ProbeRunState
from tests.factories import UserFactory, grant
from tests.readiness.conftest import ITEM_OWNING_ROLES
from tests.signoff_helpers import give_role

SEED = services.DEFAULT_TEMPLATE_FILE.read_bytes()
SEED_TITLE = b"# Production Readiness Checklist"
HTMX = {"HX-Request": "true"}
PLAIN_AND_HTMX = pytest.mark.parametrize(
    "headers", [pytest.param({}, id="plain"), pytest.param(HTMX, id="htmx")]
)


# Helpers


def is_full_page(response) -> bool:
    return b"<html" in response.content


def text(response) -> str:
    return response.content.decode()


def item_of(deployment, title: str = "IAM Policies") -> ChecklistItem:
    return ChecklistItem.objects.select_related("section").get(
        section__deployment=deployment, title=title
    )


def checklist(deployment) -> list[tuple[str, str, str]]:
    return list(
        ChecklistItem.objects.filter(section__deployment=deployment)
        .order_by("section__position", "position")
        .values_list("section__title", "title", "description")
    )


def detail_url(deployment) -> str:
    return reverse("deployment_detail", args=[deployment.pk])


def item_url(deployment, item) -> str:
    return reverse("item_update", args=[deployment.pk, item.pk])


def item_form(item, **values) -> dict:
    """The item form's POST data, prefixed `item<pk>-`; a value of None leaves the field out."""
    fields = {
        "status": item.status,
        "note": item.note,
        "evidence_url": item.evidence_url,
        "na_reason": item.na_reason,
        "version": item.version,
        **values,
    }
    return {f"item{item.pk}-{name}": value for name, value in fields.items() if value is not None}


def save_item(item, user, **values) -> ChecklistItem:
    """Another person's edit, made the way the app makes it."""
    fields = {
        "status": item.status,
        "note": item.note,
        "evidence_url": item.evidence_url,
        "na_reason": item.na_reason,
        **values,
    }
    return services.item_update(item=item, user=user, expected_version=item.version, **fields)


def template_rows() -> tuple[int, int, int]:
    return (
        ChecklistTemplate.objects.count(),
        TemplateSection.objects.count(),
        TemplateItem.objects.count(),
    )


def deployment_rows() -> tuple[int, int, int]:
    return (
        Deployment.objects.count(),
        DeploymentSection.objects.count(),
        ChecklistItem.objects.count(),
    )


def upload(client, content: bytes, *, name: str = "", filename: str = "checklist.md"):
    file = SimpleUploadedFile(filename, content, content_type="text/markdown")
    return client.post(reverse("template_import"), {"file": file, "name": name})


def create_form(team, /, **changes) -> dict:
    data = {
        "service": "ledger-api",
        "version": "1.0.0",
        "environment": "production",
        "planned_date": "2026-12-10",
        "team": team.pk,
        "template": selectors.default_template().pk,
        **changes,
    }
    return {name: value for name, value in data.items() if value is not None}


# Fixtures


@pytest.fixture
def colleague(team):
    """Another of the team's item owners."""
    user = UserFactory(username="kim", first_name="Kim", last_name="Ode")
    for slug in ITEM_OWNING_ROLES:
        give_role(user, team, slug)
    return user


@pytest.fixture
def staff(db):
    staff = UserFactory(username="ada", first_name="Ada", last_name="Admin", is_staff=True)
    return grant(staff, "readiness.import_template", "signoff.manage_teams")


@pytest.fixture
def item(deployment):
    return item_of(deployment)


@pytest.fixture
def run(deployment, member):
    return ProbeRun.objects.create(
        deployment=deployment,
        requested_by=member,
        state=ProbeRunState.SUCCEEDED,
        regions=["us-east-1"],
        accounts=[
            {"account_id": "123456789012", "name": "", "role_arn": "", "regions": ["us-east-1"]}
        ],
        finished_at=timezone.now(),
    )
