"""Query counts of the list and partial views stay flat as the data grows.

Each test renders the same page for a small and a large data set and requires the same
number of queries (an N+1 shows up as a difference), then holds the large one under a
fixed ceiling so a new constant query is noticed too.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from readiness.checklists import services
from readiness.checklists.models import ChecklistItem, ItemStatus
from tests.factories import TeamFactory, UserFactory, make_deployment
from tests.readiness.conftest import ITEM_OWNING_ROLES
from tests.signoff_helpers import give_role

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}

# Ceilings measured on SQLite and PostgreSQL, which run the same statements (savepoints
# included); raise one only with a reason, never to make room for a query per row.
# The checklist page's Final Sign-Off block reads, once for all roles: sign-offs, the
# viewer's roles, the post-deployment checks and the stored records (+4), and the roles
# (+1), which also name the rows' owners; its digests bind the items, waivers, newest CI
# evidence and latest run's results the rows read (not read again; none with no run). The
# rows read the waivers in force and which items were overridden (+2), and the newest CI
# verdicts, to flag evidence that disagrees with a person's decision (+1). The
# deployment's AWS accounts, once for the probe panel, its regions and the digests (+1).
# The newest run is read once for the panel and, when it judged the items, the rows.
CHECKLIST_PAGE_MAX = 15
# The role badges: the same reads for the whole page of deployments at once (+6).
DASHBOARD_MAX = 11
# An item save writes an audit event: the chain head, the insert, and on PostgreSQL the
# advisory lock that serializes appends (18 there, 17 on SQLite); then whether any sign-off
# could have turned stale, asked while re-reading the deployment under its lock (+1), the
# item's waiver and its newest CI evidence for its card (+2); the deployment's progress
# counters recounted with the item (+1); the editor's membership and roles, read once for
# the view's ownership check and the service's gate (+1). The saved item is not re-read:
# the UPDATE matched its version, so the row holds what was written (-3 on 24 before).
# Whether the item was overridden, for its row on the checklist (+1). The deployment read
# with the item, the same query being the access check (-1).
ITEM_SAVE_HTMX_MAX = 20
# A refused plain POST shows the item's own page: the item, the latest run and its results,
# the waivers, the CI evidence and the editor's roles, besides the session and the user.
ITEM_INVALID_PLAIN_MAX = 8
ITEM_HISTORY_MAX = 5


def checklist_markdown(name: str, *, sections: int, items_per_section: int) -> str:
    lines = [f"# {name}", "", "A checklist built for a test.", ""]
    for section in range(1, sections + 1):
        lines += [f"## Section {section}", ""]
        lines += [
            f"- [ ] **Item {section}.{number}:** Check `thing {number}` (if applicable)"
            for number in range(1, items_per_section + 1)
        ]
        lines.append("")
    return "\n".join(lines)


def queries_of(request) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as context:
        response = request()
    return len(context.captured_queries), response


def save(item: ChecklistItem, user, **values) -> ChecklistItem:
    fields = {
        "status": item.status,
        "note": item.note,
        "evidence_url": item.evidence_url,
        "na_reason": item.na_reason,
        **values,
    }
    return services.item_update(item=item, user=user, expected_version=item.version, **fields)


def touch_some_items(deployment, users) -> None:
    """Items changed by different people, so the page shows who changed what."""
    items = ChecklistItem.objects.filter(section__deployment=deployment).order_by("pk")[:4]
    for number, item in enumerate(items):
        save(item, users[number % len(users)], status=ItemStatus.DONE, note=f"note {number}")


@pytest.fixture
def colleague(team):
    """Another of the team's item owners."""
    user = UserFactory(username="kim", first_name="Kim", last_name="Ode")
    for slug in ITEM_OWNING_ROLES:
        give_role(user, team, slug)
    return user


@pytest.fixture
def ten_item_template():
    source = checklist_markdown("Ten Items", sections=2, items_per_section=5)
    return services.template_import(source=source).template


@pytest.fixture
def small_and_large(member, colleague, team, ten_item_template):
    """A 10-item deployment and a 56-item one (the default template), both partly edited."""
    small = make_deployment(user=member, team=team, template=ten_item_template, service="small")
    large = make_deployment(user=member, team=team, service="large")
    assert ChecklistItem.objects.filter(section__deployment=small).count() == 10
    assert ChecklistItem.objects.filter(section__deployment=large).count() == 56
    for deployment in (small, large):
        touch_some_items(deployment, [member, colleague])
    return small, large


def first_open_item(deployment) -> ChecklistItem:
    return (
        ChecklistItem.objects.filter(section__deployment=deployment, status=ItemStatus.OPEN)
        .order_by("section__position", "position")
        .first()
    )


def item_post(item, **values) -> dict:
    fields = {
        "status": item.status,
        "note": item.note,
        "evidence_url": item.evidence_url,
        "na_reason": item.na_reason,
        "version": item.version,
        **values,
    }
    return {f"item{item.pk}-{name}": value for name, value in fields.items()}


def test_checklist_page_queries_do_not_grow_with_the_number_of_items(
    member_client, small_and_large, django_assert_max_num_queries
):
    small, large = small_and_large

    def page(deployment):
        return lambda: member_client.get(reverse("deployment_detail", args=[deployment.pk]))

    page(small)()  # warm the session and any per-process caches
    small_count, small_response = queries_of(page(small))
    large_count, large_response = queries_of(page(large))
    assert small_response.status_code == large_response.status_code == 200
    assert small_response.content.count(b'<li class="item-row"') == 10
    assert large_response.content.count(b'<li class="item-row"') == 56
    assert small_count == large_count
    request = page(large)
    with django_assert_max_num_queries(CHECKLIST_PAGE_MAX):
        request()


def test_dashboard_queries_do_not_grow_with_the_number_of_deployments(
    client, settings, django_assert_max_num_queries
):
    settings.DASHBOARD_PAGE_SIZE = 50
    few_user = UserFactory(username="few")
    many_user = UserFactory(username="many")
    few_team = TeamFactory(name="Few", slug="few", members=[few_user])
    for number in range(3):
        make_deployment(user=few_user, team=few_team, service=f"few-{number}")
    # Thirty deployments over three teams and two owners: each row names its team.
    owners = [many_user, UserFactory(username="many-colleague")]
    teams = [TeamFactory(name=f"Many {n}", slug=f"many-{n}", members=owners) for n in range(3)]
    for number in range(30):
        make_deployment(user=owners[number % 2], team=teams[number % 3], service=f"many-{number}")

    def results(user, **headers):
        client.force_login(user)
        return lambda: client.get("/", headers=headers)

    results(few_user)()
    few_count, few_response = queries_of(results(few_user))
    results(many_user)()
    many_count, many_response = queries_of(results(many_user))
    assert len(few_response.context["page"].object_list) == 3
    assert len(many_response.context["page"].object_list) == 30
    assert few_count == many_count
    request = results(many_user)
    with django_assert_max_num_queries(DASHBOARD_MAX):
        request()

    fragment = {**HTMX, "HX-Target": "deployment-results"}
    results(few_user, **fragment)()
    few_count, _ = queries_of(results(few_user, **fragment))
    results(many_user, **fragment)()
    many_count, response = queries_of(results(many_user, **fragment))
    assert b"<html" not in response.content
    assert few_count == many_count <= DASHBOARD_MAX


def test_htmx_item_save_queries_do_not_grow_with_the_checklist(
    member_client, small_and_large, django_assert_max_num_queries
):
    small, large = small_and_large
    member_client.get(reverse("dashboard"))  # warm the session

    def save_first_open(deployment):
        item = first_open_item(deployment)
        url = reverse("item_update", args=[deployment.pk, item.pk])
        data = item_post(item, status=ItemStatus.DONE, note="checked")
        return lambda: member_client.post(url, data, headers=HTMX)

    small_count, small_response = queries_of(save_first_open(small))
    large_count, large_response = queries_of(save_first_open(large))
    assert small_response.status_code == large_response.status_code == 200
    assert b"hx-swap-oob" in large_response.content
    assert small_count == large_count
    request = save_first_open(large)
    with django_assert_max_num_queries(ITEM_SAVE_HTMX_MAX):
        response = request()
    assert response.status_code == 200


def test_an_invalid_plain_item_post_shows_the_items_page_in_flat_queries(
    member_client, small_and_large, django_assert_max_num_queries
):
    small, large = small_and_large
    member_client.get(reverse("dashboard"))

    def refuse(deployment):
        item = first_open_item(deployment)
        url = reverse("item_update", args=[deployment.pk, item.pk])
        data = item_post(item, status=ItemStatus.NOT_APPLICABLE, na_reason="")
        return lambda: member_client.post(url, data)

    small_count, small_response = queries_of(refuse(small))
    large_count, large_response = queries_of(refuse(large))
    assert small_response.status_code == large_response.status_code == 400
    assert small_count == large_count
    request = refuse(large)
    with django_assert_max_num_queries(ITEM_INVALID_PLAIN_MAX):
        request()


def test_item_history_queries_do_not_grow_with_the_number_of_changes(
    member_client, member, colleague, deployment, django_assert_max_num_queries
):
    few, many = ChecklistItem.objects.filter(section__deployment=deployment).order_by("pk")[:2]
    statuses = [ItemStatus.DONE, ItemStatus.FAILED]
    for item, changes in ((few, 2), (many, 20)):
        for number in range(changes):
            item = save(
                item,
                [member, colleague][number % 2],
                status=statuses[number % 2],
                note=f"change {number}",
            )

    def history(item, **headers):
        url = reverse("item_history", args=[deployment.pk, item.pk])
        return lambda: member_client.get(url, headers=headers)

    history(few)()
    for headers in ({}, HTMX):
        few_count, few_response = queries_of(history(few, **headers))
        many_count, many_response = queries_of(history(many, **headers))
        assert few_response.content.count(b'<td data-label="Version">') == 2
        assert many_response.content.count(b'<td data-label="Version">') == 20
        assert few_count == many_count
        request = history(many, **headers)
        with django_assert_max_num_queries(ITEM_HISTORY_MAX):
            request()
