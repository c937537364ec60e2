"""The dashboard at scale: progress read from the deployments' counters, so its page query
and the paginator's count never aggregate checklist items, and every kind of page (first,
filtered, searched, last) costs the same queries for 3 deployments as for 40."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readiness.checklists.models import ChecklistItem, Deployment, DeploymentState, ItemStatus
from readiness.checklists.progress import refresh_progress
from tests.factories import TeamFactory, UserFactory, make_deployment

pytestmark = pytest.mark.django_db

# Session and user; the paginator's count and the page; the page's standings (roles, items,
# latest probe results, CI evidence, waivers in force, sign-offs, AWS accounts); the team
# filter's choices.
DASHBOARD_PAGE_MAX = 12
PAGE_SIZE = 10


def captured(client, query: dict) -> tuple[list[str], object]:
    with CaptureQueriesContext(connection) as context:
        response = client.get("/", query)
    return [q["sql"] for q in context.captured_queries], response


@pytest.fixture
def few_and_many(client, settings):
    settings.DASHBOARD_PAGE_SIZE = PAGE_SIZE
    few_user, many_user = UserFactory(username="few"), UserFactory(username="many")
    few_team = TeamFactory(name="Few", slug="few", members=[few_user])
    many_teams = [
        TeamFactory(name=f"Many {n}", slug=f"many-{n}", members=[many_user]) for n in range(2)
    ]
    for number in range(3):
        make_deployment(user=few_user, team=few_team, service=f"api-{number}")
    for number in range(40):
        make_deployment(user=many_user, team=many_teams[number % 2], service=f"api-{number}")
    Deployment.objects.filter(service__in=["api-1", "api-2"]).update(
        state=DeploymentState.IN_REVIEW
    )
    return few_user, many_user


CASES = {
    "first page": ({}, {}),
    "filter": ({"state": "in_review"}, {"state": "in_review"}),
    "search": ({"text": "api"}, {"text": "api"}),
    "last page": ({"page": "1"}, {"page": "4"}),
}


@pytest.mark.parametrize("case", CASES)
def test_dashboard_queries_stay_flat_from_3_to_40_deployments(
    client, few_and_many, case, django_assert_max_num_queries
):
    few_user, many_user = few_and_many
    few_query, many_query = CASES[case]
    client.force_login(few_user)
    client.get("/")  # warm the session
    few_sql, few = captured(client, few_query)
    client.force_login(many_user)
    client.get("/")
    many_sql, many = captured(client, many_query)
    assert few.status_code == many.status_code == 200
    if case in ("first page", "search"):
        assert len(many.context["page"].object_list) == PAGE_SIZE
        assert many.context["page"].paginator.count == 40
    if case == "last page":
        assert many.context["page"].number == 4
    assert len(few_sql) == len(many_sql) <= DASHBOARD_PAGE_MAX
    with django_assert_max_num_queries(DASHBOARD_PAGE_MAX):
        client.get("/", many_query)


def test_the_page_query_and_the_count_never_read_checklist_items(client, few_and_many):
    _, many_user = few_and_many
    client.force_login(many_user)
    sql, response = captured(client, {"text": "api", "page": "2"})
    assert response.status_code == 200
    reading_deployments = [q for q in sql if 'FROM "readiness_deployment"' in q]
    assert any("COUNT(" in q for q in reading_deployments)
    assert reading_deployments
    assert not any("readiness_checklistitem" in q for q in reading_deployments)
    # Items are read only for a badge whose signature is in force (is it fresh?): none here.
    assert not [q for q in sql if 'FROM "readiness_checklistitem"' in q]


def test_progress_shown_follows_item_edits_made_through_the_services(client, member, deployment):
    from readiness.checklists import services

    items = list(
        ChecklistItem.objects.filter(section__deployment=deployment).select_related(
            "section__deployment__team"
        )[:2]
    )
    for item, status in zip(items, [ItemStatus.DONE, ItemStatus.FAILED], strict=True):
        services.item_update(
            item=item,
            user=member,
            expected_version=item.version,
            status=status,
            note="",
            evidence_url="",
            na_reason="",
        )
    client.force_login(member)
    row = client.get("/").context["page"].object_list[0]
    assert (row.progress.done, row.progress.failed, row.progress.total) == (1, 1, 56)


def test_the_dashboard_shows_the_counters_not_a_fresh_count(client, member, deployment):
    ChecklistItem.objects.filter(section__deployment=deployment).update(status=ItemStatus.DONE)
    client.force_login(member)
    assert client.get("/").context["page"].object_list[0].progress.percent == 0
    refresh_progress(deployment.pk)
    assert client.get("/").context["page"].object_list[0].progress.percent == 100
