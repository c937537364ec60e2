"""The dashboard: the user's teams' deployments, filters, search, pages and the htmx results."""

import pytest

from readiness.checklists.models import ChecklistItem, Deployment, DeploymentState, ItemStatus
from readiness.checklists.progress import refresh_progress
from tests.factories import TeamFactory, make_deployment
from tests.readiness.web.conftest import HTMX, is_full_page, text

pytestmark = pytest.mark.django_db


def results_services(response) -> list[str]:
    return [deployment.service for deployment in response.context["page"].object_list]


# Dashboard


def test_dashboard_lists_only_the_users_teams_deployments(
    member_client, member, team, deployment, outsider
):
    platform = TeamFactory(name="Platform", slug="platform", members=[member])
    make_deployment(user=member, team=platform, service="gateway")
    make_deployment(user=outsider, service="search-api")
    response = member_client.get("/")
    assert response.status_code == 200
    assert is_full_page(response)
    assert sorted(results_services(response)) == ["gateway", "payments-api"]
    assert "search-api" not in text(response)


def test_dashboard_filters_by_team_slug(member_client, member, team, deployment):
    platform = TeamFactory(name="Platform", slug="platform", members=[member])
    make_deployment(user=member, team=platform, service="gateway")
    response = member_client.get("/", {"team": "platform"})
    assert results_services(response) == ["gateway"]
    response = member_client.get("/", {"team": "payments"})
    assert results_services(response) == ["payments-api"]


def test_dashboard_filter_on_a_team_the_user_is_not_in_never_shows_its_deployments(
    member_client, deployment, outsider
):
    make_deployment(user=outsider, team=outsider.teams.get(), service="search-api")
    response = member_client.get("/", {"team": "search"})
    assert response.status_code == 200
    assert "search-api" not in results_services(response)


def test_dashboard_filters_by_state(member_client, member, team, deployment):
    approved = make_deployment(user=member, team=team, service="ledger-api")
    Deployment.objects.filter(pk=approved.pk).update(state=DeploymentState.APPROVED)
    assert results_services(member_client.get("/", {"state": "approved"})) == ["ledger-api"]
    assert results_services(member_client.get("/", {"state": "draft"})) == ["payments-api"]


def test_dashboard_text_search_matches_service_environment_and_version_words(
    member_client, member, team, deployment
):
    make_deployment(user=member, team=team, service="ledger-api", environment="staging")
    make_deployment(user=member, team=team, service="ledger-worker", version="3.1.0")
    assert sorted(results_services(member_client.get("/", {"text": "LEDGER"}))) == [
        "ledger-api",
        "ledger-worker",
    ]
    assert results_services(member_client.get("/", {"text": "staging"})) == ["ledger-api"]
    assert results_services(member_client.get("/", {"text": "ledger 3.1"})) == ["ledger-worker"]
    response = member_client.get("/", {"text": "nothing-like-this"})
    assert results_services(response) == []
    assert "No deployment matches these filters." in text(response)


@pytest.mark.parametrize(
    "query", [{"state": "bogus"}, {"team": "no-such-team"}, {"page": "x"}, {"page": "-1"}]
)
def test_dashboard_ignores_garbage_filters_instead_of_failing(member_client, deployment, query):
    response = member_client.get("/", query)
    assert response.status_code == 200
    assert results_services(response) == ["payments-api"]


def test_dashboard_paginates_newest_first_and_keeps_filters_in_page_links(
    member_client, member, team, settings
):
    settings.DASHBOARD_PAGE_SIZE = 2
    for number in range(1, 6):
        make_deployment(user=member, team=team, service=f"svc-{number}")
    first = member_client.get("/")
    assert results_services(first) == ["svc-5", "svc-4"]
    assert "Page 1 of 3 · 5 deployments" in text(first)
    assert results_services(member_client.get("/", {"page": 2})) == ["svc-3", "svc-2"]
    assert results_services(member_client.get("/", {"page": 3})) == ["svc-1"]
    assert results_services(member_client.get("/", {"page": 99})) == ["svc-1"]
    filtered = member_client.get("/", {"text": "svc", "page": 2})
    assert 'href="?text=svc&amp;page=3"' in text(filtered)
    assert 'href="?text=svc&amp;page=1"' in text(filtered)


def test_dashboard_shows_percent_done_and_failed_count(member_client, deployment):
    ids = list(
        ChecklistItem.objects.filter(section__deployment=deployment).values_list("pk", flat=True)
    )
    ChecklistItem.objects.filter(pk__in=ids[:14]).update(status=ItemStatus.DONE)
    ChecklistItem.objects.filter(pk__in=ids[14:28]).update(
        status=ItemStatus.NOT_APPLICABLE, na_reason="no such component"
    )
    ChecklistItem.objects.filter(pk__in=ids[28:30]).update(status=ItemStatus.FAILED)
    # Raw updates skip the services, which keep the counters the dashboard reads.
    refresh_progress(deployment.pk)
    body = text(member_client.get("/"))
    assert 'aria-valuenow="50"' in body
    assert '<span class="num">50%</span>' in body
    assert "2 failed" in body


def test_dashboard_with_no_deployments_invites_creating_one(member_client, team):
    body = text(member_client.get("/"))
    assert "No deployments yet." in body
    assert "Create the first one" in body


def test_dashboard_htmx_request_for_the_results_returns_only_the_results_fragment(
    member_client, member, team, deployment
):
    make_deployment(user=member, team=team, service="ledger-api")
    response = member_client.get(
        "/", {"text": "ledger"}, headers={**HTMX, "HX-Target": "deployment-results"}
    )
    assert response.status_code == 200
    assert not is_full_page(response)
    body = text(response)
    assert body.lstrip().startswith('<div id="deployment-results">')
    assert "ledger-api" in body and "payments-api" not in body
    assert 'role="search"' not in body


def test_dashboard_htmx_request_aimed_elsewhere_gets_the_full_page(member_client, deployment):
    response = member_client.get("/", headers={**HTMX, "HX-Target": "main"})
    assert response.status_code == 200
    assert is_full_page(response)
