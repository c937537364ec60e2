"""Creating a deployment: the form, the snapshot of the template, and bad input."""

import pytest
from django.urls import reverse

from readiness.checklists import selectors, services
from readiness.checklists.models import Deployment, TemplateItem
from tests.factories import TeamFactory, UserFactory
from tests.readiness.web.conftest import (
    SEED,
    checklist,
    create_form,
    deployment_rows,
    detail_url,
    is_full_page,
    text,
)

pytestmark = pytest.mark.django_db


# Creating a deployment


def test_create_page_offers_the_users_teams_and_the_default_template(member_client, team):
    response = member_client.get(reverse("deployment_create"))
    assert response.status_code == 200
    assert is_full_page(response)
    body = text(response)
    assert "Payments" in body
    assert "Production Readiness Checklist v1 (56 items, default)" in body
    assert "You are not in a team yet" not in body


def test_creating_a_deployment_snapshots_all_56_default_items(member_client, member, team):
    response = member_client.post(reverse("deployment_create"), create_form(team))
    deployment = Deployment.objects.get(service="ledger-api")
    assert response.status_code == 302
    assert response["Location"] == detail_url(deployment)
    assert (deployment.owner, deployment.team, deployment.version) == (member, team, "1.0.0")
    assert deployment.template == selectors.default_template()
    template_items = list(
        TemplateItem.objects.filter(section__template=deployment.template)
        .order_by("section__position", "position")
        .values_list("section__title", "title", "description")
    )
    assert len(template_items) == 56
    assert checklist(deployment) == template_items
    page = member_client.get(response["Location"])
    assert "Created ledger-api 1.0.0 → production." in text(page)
    assert text(page).count('<li class="item-row"') == 56


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"service": ""}, "service", id="empty-service"),
        pytest.param({"service": "payments api"}, "service", id="service-with-space"),
        pytest.param({"version": "1 .0"}, "version", id="version-with-space"),
        pytest.param({"environment": ""}, "environment", id="empty-environment"),
        pytest.param({"planned_date": "next tuesday"}, "planned_date", id="garbage-date"),
        pytest.param({"planned_date": "2026-02-30"}, "planned_date", id="feb-30"),
        pytest.param({"planned_date": "0001-01-01"}, "planned_date", id="year-1"),
        pytest.param({"planned_date": "9999-12-31"}, "planned_date", id="year-9999"),
        pytest.param("other-team", "team", id="team-user-is-not-in"),
        pytest.param({"team": "abc"}, "team", id="garbage-team"),
        pytest.param({"template": None}, "template", id="missing-template"),
        pytest.param({"template": "999999"}, "template", id="unknown-template"),
        pytest.param({"template": "abc"}, "template", id="garbage-template"),
    ],
)
def test_invalid_deployment_input_is_400_with_field_errors_and_creates_nothing(
    member_client, team, outsider, changes, field
):
    if changes == "other-team":
        changes = {"team": outsider.teams.get().pk}
    before = deployment_rows()
    response = member_client.post(reverse("deployment_create"), create_form(team, **changes))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert f'id="id_{field}_error"' in text(response)
    assert deployment_rows() == before


def test_an_older_template_version_cannot_be_chosen(member_client, team):
    old = selectors.default_template()
    services.template_import(source=SEED.decode().replace("least privilege", "zero trust"))
    before = deployment_rows()
    response = member_client.post(reverse("deployment_create"), create_form(team, template=old.pk))
    assert response.status_code == 400
    assert "template" in response.context["form"].errors
    assert deployment_rows() == before


def test_a_user_in_no_team_is_warned_and_cannot_create(client, db):
    client.force_login(UserFactory(username="nobody"))
    response = client.get(reverse("deployment_create"))
    assert response.status_code == 200
    assert "You are not in a team yet: ask an administrator to add you." in text(response)
    before = deployment_rows()
    response = client.post(reverse("deployment_create"), create_form(TeamFactory()))
    assert response.status_code == 400
    assert "You are not in a team yet" in text(response)
    assert deployment_rows() == before


@pytest.mark.parametrize(
    ("view", "fields"),
    [
        ("deployment_create", {"service", "version", "environment", "team", "template"}),
        ("deployment_aws", {"aws_account_id", "aws_regions"}),
    ],
)
def test_an_empty_post_is_400_with_required_field_errors(member_client, deployment, view, fields):
    kwargs = {"pk": deployment.pk} if view == "deployment_aws" else {}
    before = deployment_rows()
    response = member_client.post(reverse(view, kwargs=kwargs), {})
    assert response.status_code == 400
    assert set(response.context["form"].errors) == fields
    assert "This field is required." in text(response)
    assert deployment_rows() == before
