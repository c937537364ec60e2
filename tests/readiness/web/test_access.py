"""Who reaches the checklist pages: anonymous visitors, other teams, foreign ids, methods."""

from urllib.parse import quote

import pytest
from django.urls import reverse
from django.utils import timezone

from readiness.checklists.models import ItemChange, ItemStatus
from readiness.probe_runs.models import ProbeRun, ProbeRunState
from tests.factories import make_deployment
from tests.readiness.web.conftest import (
    PLAIN_AND_HTMX,
    SEED,
    SEED_TITLE,
    create_form,
    deployment_rows,
    item_form,
    item_of,
    item_url,
    template_rows,
    upload,
)

pytestmark = pytest.mark.django_db


def login_url(path: str) -> str:
    return f"/login/?next={quote(path, safe='/')}"


@pytest.fixture
def other_deployment(member, team):
    """A second deployment of the same team: its items must not be reachable through the first."""
    return make_deployment(user=member, team=team, service="ledger-api")


def url_of(name: str, deployment, item, run) -> str:
    kwargs = {
        "deployment_detail": {"pk": deployment.pk},
        "item_update": {"pk": deployment.pk, "item_id": item.pk},
        "item_history": {"pk": deployment.pk, "item_id": item.pk},
        "deployment_aws": {"pk": deployment.pk},
        "probe_run_start": {"pk": deployment.pk},
        "probe_run_detail": {"pk": deployment.pk, "run_id": run.pk},
        "template_detail": {"pk": deployment.template_id},
    }.get(name, {})
    return reverse(name, kwargs=kwargs)


def post_data_of(method: str, name: str, item) -> dict:
    """Input that would be accepted from a member, so only the caller's identity is refused."""
    if method != "post":
        return {}
    return {
        "item_update": item_form(item, status=ItemStatus.DONE, note="outsider"),
        "deployment_aws": {"aws_account_id": "123456789012", "aws_regions": "eu-west-1"},
        "deployment_create": {"service": "x", "version": "1", "environment": "production"},
    }.get(name, {})


# Anonymous visitors

EVERY_VIEW = [
    ("get", "dashboard"),
    ("get", "deployment_create"),
    ("post", "deployment_create"),
    ("get", "deployment_detail"),
    ("get", "item_update"),
    ("post", "item_update"),
    ("get", "item_history"),
    ("get", "deployment_aws"),
    ("post", "deployment_aws"),
    ("post", "probe_run_start"),
    ("get", "probe_run_detail"),
    ("get", "template_list"),
    ("get", "template_import"),
    ("post", "template_import"),
    ("get", "template_detail"),
]


@pytest.mark.parametrize(("method", "name"), EVERY_VIEW)
@PLAIN_AND_HTMX
def test_anonymous_visitor_is_redirected_to_login_with_next(
    client, deployment, item, run, method, name, headers
):
    url = url_of(name, deployment, item, run)
    response = getattr(client, method)(url, post_data_of(method, name, item), headers=headers)
    if headers:
        # htmx would swap the login page into the fragment: it is told to leave instead.
        assert response.status_code == 200
        assert response["HX-Redirect"] == login_url(url)
    else:
        assert response.status_code == 302
        assert response["Location"] == login_url(url)


def test_anonymous_redirect_keeps_the_query_string_in_next(client, db):
    response = client.get("/?state=draft&text=api")
    assert response["Location"] == "/login/?next=/%3Fstate%3Ddraft%26text%3Dapi"


def test_anonymous_posts_change_nothing(client, deployment, item):
    before = deployment_rows(), template_rows()
    client.post(item_url(deployment, item), item_form(item, status=ItemStatus.DONE))
    client.post(reverse("deployment_create"), create_form(deployment.team))
    upload(client, SEED.replace(SEED_TITLE, b"# Anonymous", 1))
    item.refresh_from_db()
    assert (item.status, item.version) == (ItemStatus.OPEN, 1)
    assert not ItemChange.objects.exists()
    assert (deployment_rows(), template_rows()) == before


# Members of other teams

DEPLOYMENT_SCOPED = [
    ("get", "deployment_detail"),
    ("get", "item_update"),
    ("post", "item_update"),
    ("get", "item_history"),
    ("get", "deployment_aws"),
    ("post", "deployment_aws"),
    ("post", "probe_run_start"),
    ("get", "probe_run_detail"),
]


@pytest.mark.parametrize(("method", "name"), DEPLOYMENT_SCOPED)
@PLAIN_AND_HTMX
def test_member_of_another_team_gets_404_for_a_deployment_page(
    outsider_client, deployment, item, run, method, name, headers
):
    url = url_of(name, deployment, item, run)
    response = getattr(outsider_client, method)(
        url, post_data_of(method, name, item), headers=headers
    )
    assert response.status_code == 404
    item.refresh_from_db()
    deployment.refresh_from_db()
    assert (item.status, item.version) == (ItemStatus.OPEN, 1)
    assert not deployment.aws_accounts.exists()
    assert list(deployment.probe_runs.all()) == [run]


@pytest.mark.parametrize(
    ("method", "name"), [("get", "item_update"), ("post", "item_update"), ("get", "item_history")]
)
@PLAIN_AND_HTMX
def test_an_item_of_another_deployment_is_404_even_for_a_member(
    member_client, deployment, other_deployment, method, name, headers
):
    foreign_item = item_of(other_deployment)
    url = reverse(name, args=[deployment.pk, foreign_item.pk])
    data = item_form(foreign_item, status=ItemStatus.DONE) if method == "post" else {}
    response = getattr(member_client, method)(url, data, headers=headers)
    assert response.status_code == 404
    foreign_item.refresh_from_db()
    assert (foreign_item.status, foreign_item.version) == (ItemStatus.OPEN, 1)


def test_an_item_of_another_teams_deployment_is_404(member_client, deployment, outsider):
    foreign_item = item_of(make_deployment(user=outsider, service="search-api"))
    response = member_client.get(reverse("item_history", args=[deployment.pk, foreign_item.pk]))
    assert response.status_code == 404


def test_a_probe_run_of_another_deployment_is_404(member_client, deployment, other_deployment):
    foreign_run = ProbeRun.objects.create(
        deployment=other_deployment, state=ProbeRunState.SUCCEEDED, finished_at=timezone.now()
    )
    url = reverse("probe_run_detail", args=[deployment.pk, foreign_run.pk])
    assert member_client.get(url).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/deployments/999999/",
        "/deployments/99999999999999999999/",
        "/deployments/{deployment}/items/999999/",
        "/deployments/{deployment}/items/99999999999999999999/history/",
        "/templates/999999/",
    ],
)
def test_unknown_or_out_of_range_ids_are_404_not_500(member_client, deployment, url):
    response = member_client.get(url.format(deployment=deployment.pk))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/"),
        ("put", "/deployments/new/"),
        ("get", "/deployments/{deployment}/probes/"),
        ("post", "/deployments/{deployment}/items/{item}/history/"),
        ("delete", "/deployments/{deployment}/items/{item}/"),
    ],
)
def test_wrong_http_methods_are_405(member_client, deployment, item, method, url):
    response = getattr(member_client, method)(url.format(deployment=deployment.pk, item=item.pk))
    assert response.status_code == 405
