"""Every page: anonymous, wrong team or role, right role, htmx variant, and bad input."""

import re
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from readiness.checklists import selectors, services
from readiness.checklists.models import (
    ChecklistItem,
    ChecklistTemplate,
    DecisionSource,
    Deployment,
    DeploymentSection,
    DeploymentState,
    ItemChange,
    ItemStatus,
    TemplateItem,
    TemplateSection,
)
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import (
    ProbeOutcome,
    ProbeResult,
    ProbeResultState,
    ProbeRun,
    ProbeRunState,
)
from tests.factories import TeamFactory, UserFactory, make_deployment

pytestmark = pytest.mark.django_db

SEED = services.DEFAULT_TEMPLATE_FILE.read_bytes()
SEED_TITLE = b"# Production Readiness Checklist"
HTMX = {"HX-Request": "true"}
PLAIN_AND_HTMX = pytest.mark.parametrize(
    "headers", [pytest.param({}, id="plain"), pytest.param(HTMX, id="htmx")]
)


# Helpers


def login_url(path: str) -> str:
    return f"/login/?next={quote(path, safe='/')}"


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


def history_url(deployment, item) -> str:
    return reverse("item_history", args=[deployment.pk, item.pk])


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


def results_services(response) -> list[str]:
    return [deployment.service for deployment in response.context["page"].object_list]


# Fixtures


@pytest.fixture
def colleague(team):
    user = UserFactory(username="kim", first_name="Kim", last_name="Ode")
    team.members.add(user)
    return user


@pytest.fixture
def staff(db):
    return UserFactory(username="ada", first_name="Ada", last_name="Admin", is_staff=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


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
        account_id="123456789012",
        finished_at=timezone.now(),
    )


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
    assert deployment.aws_account_id == ""
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
    assert text(page).count('<article class="item') == 56


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"service": ""}, "service", id="empty-service"),
        pytest.param({"service": "payments api"}, "service", id="service-with-space"),
        pytest.param({"version": "1 .0"}, "version", id="version-with-space"),
        pytest.param({"environment": ""}, "environment", id="empty-environment"),
        pytest.param({"planned_date": "next tuesday"}, "planned_date", id="garbage-date"),
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


# The checklist page


def test_checklist_page_shows_every_item_and_the_overall_progress(member_client, deployment):
    response = member_client.get(detail_url(deployment))
    assert response.status_code == 200
    assert is_full_page(response)
    body = text(response)
    assert body.count('<article class="item') == 56
    assert 'id="overall-progress"' in body
    assert "0% complete" in body
    assert "hx-swap-oob" not in body


# Editing an item


def test_plain_item_post_saves_and_redirects_to_the_item_anchor(member_client, member, deployment):
    item = item_of(deployment)
    data = item_form(
        item,
        status=ItemStatus.DONE,
        note="  Access Analyzer clean  ",
        evidence_url="https://wiki.example.com/iam",
    )
    response = member_client.post(item_url(deployment, item), data)
    assert response.status_code == 302
    assert response["Location"] == f"{detail_url(deployment)}#item-{item.pk}"
    item.refresh_from_db()
    assert (item.status, item.note, item.evidence_url) == (
        ItemStatus.DONE,
        "Access Analyzer clean",
        "https://wiki.example.com/iam",
    )
    assert (item.version, item.updated_by, item.source) == (2, member, DecisionSource.PERSON)
    change = ItemChange.objects.get(item=item)
    assert (change.version, change.changed_by, change.previous_status, change.status) == (
        2,
        member,
        ItemStatus.OPEN,
        ItemStatus.DONE,
    )
    page = member_client.get(response["Location"])
    assert "Saved “IAM Policies”." in text(page)


def test_evidence_url_without_scheme_is_saved_as_https(member_client, deployment):
    item = item_of(deployment)
    data = item_form(item, status=ItemStatus.DONE, evidence_url="wiki.example.com/iam")
    assert member_client.post(item_url(deployment, item), data).status_code == 302
    item.refresh_from_db()
    assert item.evidence_url == "https://wiki.example.com/iam"


def test_htmx_item_post_returns_the_item_and_out_of_band_progress(member_client, deployment):
    item = item_of(deployment)
    data = item_form(item, status=ItemStatus.DONE, note="checked")
    response = member_client.post(item_url(deployment, item), data, headers=HTMX)
    assert response.status_code == 200
    assert not is_full_page(response)
    body = text(response)
    assert f'<article class="item status-done" id="item-{item.pk}"' in body
    assert body.count("<article") == 1
    assert re.search(
        rf'<div[^>]*id="section-progress-{item.section_id}"[^>]*hx-swap-oob="true"', body
    )
    assert re.search(r'<div[^>]*id="overall-progress"[^>]*hx-swap-oob="true"', body)
    assert '<span class="num">1/9</span>' in body
    assert "2% complete" in body
    assert f'name="item{item.pk}-version" value="2"' in body
    item.refresh_from_db()
    assert (item.status, item.version) == (ItemStatus.DONE, 2)
    assert ItemChange.objects.filter(item=item).count() == 1


def test_marking_an_item_not_applicable_with_a_reason_is_saved(member_client, deployment):
    item = item_of(deployment, "Penetration Test")
    data = item_form(item, status=ItemStatus.NOT_APPLICABLE, na_reason="internal tool")
    response = member_client.post(item_url(deployment, item), data, headers=HTMX)
    assert response.status_code == 200
    item.refresh_from_db()
    assert (item.status, item.na_reason) == (ItemStatus.NOT_APPLICABLE, "internal tool")


@PLAIN_AND_HTMX
@pytest.mark.parametrize("na_reason", [None, "", "   "])
def test_not_applicable_without_a_reason_is_400_and_saves_nothing(
    member_client, deployment, headers, na_reason
):
    item = item_of(deployment, "Penetration Test")
    data = item_form(item, status=ItemStatus.NOT_APPLICABLE, na_reason=na_reason, note="x")
    response = member_client.post(item_url(deployment, item), data, headers=headers)
    assert response.status_code == 400
    assert is_full_page(response) == (not headers)
    assert "Say why this item does not apply." in text(response)
    assert f'id="item-{item.pk}"' in text(response)
    item.refresh_from_db()
    assert (item.status, item.note, item.version) == (ItemStatus.OPEN, "", 1)
    assert not ItemChange.objects.exists()


@PLAIN_AND_HTMX
@pytest.mark.parametrize(
    "evidence_url",
    [
        "javascript:alert(1)",
        "not a url",
        "ftp://x",
        "ftp://files.example.com/evidence.pdf",
        "https://",
        "data:text/html,<script>alert(1)</script>",
    ],
)
def test_an_invalid_evidence_url_is_400_and_saves_nothing(
    member_client, deployment, headers, evidence_url
):
    item = item_of(deployment)
    data = item_form(item, status=ItemStatus.DONE, evidence_url=evidence_url)
    response = member_client.post(item_url(deployment, item), data, headers=headers)
    assert response.status_code == 400
    assert "Enter a valid URL." in text(response)
    item.refresh_from_db()
    assert (item.status, item.evidence_url, item.version) == (ItemStatus.OPEN, "", 1)
    assert not ItemChange.objects.exists()


@PLAIN_AND_HTMX
@pytest.mark.parametrize(
    ("values", "field"),
    [
        pytest.param({"status": "bogus"}, "status", id="unknown-status"),
        pytest.param({"status": None}, "status", id="missing-status"),
        pytest.param({"version": None}, "version", id="missing-version"),
        pytest.param({"version": "abc"}, "version", id="garbage-version"),
        pytest.param({"version": "1.5"}, "version", id="fractional-version"),
        pytest.param({"version": "0"}, "version", id="zero-version"),
        pytest.param({"version": "-3"}, "version", id="negative-version"),
        pytest.param({"note": "n" * 5001}, "note", id="note-too-long"),
    ],
)
def test_invalid_item_input_is_400_and_saves_nothing(
    member_client, deployment, headers, values, field
):
    item = item_of(deployment)
    data = item_form(item, **{"status": ItemStatus.DONE, **values})
    response = member_client.post(item_url(deployment, item), data, headers=headers)
    assert response.status_code == 400
    assert is_full_page(response) == (not headers)
    assert f'id="item-{item.pk}"' in text(response)
    item.refresh_from_db()
    assert (item.status, item.version) == (ItemStatus.OPEN, 1)
    assert not ItemChange.objects.exists()


@PLAIN_AND_HTMX
def test_a_note_over_the_limit_shows_the_error(member_client, deployment, headers):
    item = item_of(deployment)
    data = item_form(item, status=ItemStatus.DONE, note="n" * 5001)
    response = member_client.post(item_url(deployment, item), data, headers=headers)
    assert response.status_code == 400
    assert "Ensure this value has at most 5000 characters (it has 5001)." in text(response)


@PLAIN_AND_HTMX
@pytest.mark.parametrize("version", ["2", "99999999999999999999"])
def test_a_version_the_item_never_had_is_refused_without_a_500(
    member_client, deployment, headers, version
):
    member_client.raise_request_exception = False
    item = item_of(deployment)
    data = item_form(item, status=ItemStatus.DONE, version=version)
    response = member_client.post(item_url(deployment, item), data, headers=headers)
    assert response.status_code in (400, 409)
    item.refresh_from_db()
    assert (item.status, item.version) == (ItemStatus.OPEN, 1)


@PLAIN_AND_HTMX
def test_changing_a_probe_set_status_without_a_reason_is_400(member_client, deployment, headers):
    item = item_of(deployment)
    ChecklistItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.FAILED, source=DecisionSource.PROBE, status_reason="2 roles with *:*"
    )
    item.refresh_from_db()
    response = member_client.post(
        item_url(deployment, item), item_form(item, status=ItemStatus.DONE), headers=headers
    )
    assert response.status_code == 400
    assert "Say why you override the probe" in text(response)
    item.refresh_from_db()
    assert (item.status, item.version) == (ItemStatus.FAILED, 1)


@PLAIN_AND_HTMX
def test_a_stale_edit_is_409_shows_the_current_values_and_keeps_the_other_users_edit(
    member_client, colleague, deployment, headers
):
    item = item_of(deployment)
    stale = item_form(item, status=ItemStatus.FAILED, note="my note")
    save_item(
        item_of(deployment),
        colleague,
        status=ItemStatus.DONE,
        note="Checked by Kim",
        evidence_url="https://wiki.example.com/kim",
    )
    response = member_client.post(item_url(deployment, item), stale, headers=headers)
    assert response.status_code == 409
    assert is_full_page(response) == (not headers)
    body = text(response)
    assert "Not saved" in body
    assert "Kim Ode saved it" in body
    assert "Status: <strong>Done</strong>" in body
    assert "Note: Checked by Kim" in body
    assert "https://wiki.example.com/kim" in body
    assert "Your edit (not saved): status failed" in body
    # The form now carries the current version, so saving again is possible.
    assert f'name="item{item.pk}-version" value="2"' in body
    item.refresh_from_db()
    assert (item.status, item.note, item.version, item.updated_by) == (
        ItemStatus.DONE,
        "Checked by Kim",
        2,
        colleague,
    )
    assert ItemChange.objects.filter(item=item).count() == 1


@PLAIN_AND_HTMX
def test_an_edit_made_stale_by_a_probe_run_is_409_not_500(member_client, deployment, headers):
    member_client.raise_request_exception = False
    item = item_of(deployment)
    stale = item_form(item, status=ItemStatus.FAILED, note="my note")
    run = ProbeRun.objects.create(
        deployment=deployment, state=ProbeRunState.SUCCEEDED, finished_at=timezone.now()
    )
    ProbeResult.objects.create(
        run=run,
        item=item,
        probe_key="iam.least_privilege",
        region="global",
        section_title="Security",
        item_title="IAM Policies",
        title="Least privilege",
        severity="high",
        state=ProbeResultState.DONE,
        status=ProbeOutcome.PASS,
        summary="no wildcard policies",
    )
    assert probe_runs.apply_run(run) == 1
    response = member_client.post(item_url(deployment, item), stale, headers=headers)
    assert response.status_code == 409
    body = text(response)
    assert "Not saved" in body
    assert "Status: <strong>Done</strong>" in body
    item.refresh_from_db()
    assert (item.status, item.source, item.version) == (
        ItemStatus.DONE,
        DecisionSource.PROBE,
        2,
    )


def test_saving_again_after_a_conflict_succeeds(member_client, member, colleague, deployment):
    item = item_of(deployment)
    stale = item_form(item, status=ItemStatus.FAILED)
    save_item(item_of(deployment), colleague, status=ItemStatus.DONE)
    assert member_client.post(item_url(deployment, item), stale).status_code == 409
    fresh = item_form(item_of(deployment), status=ItemStatus.FAILED)
    assert member_client.post(item_url(deployment, item), fresh).status_code == 302
    item.refresh_from_db()
    assert (item.status, item.version, item.updated_by) == (ItemStatus.FAILED, 3, member)


def test_htmx_get_of_an_item_returns_its_fragment(member_client, deployment):
    item = item_of(deployment)
    response = member_client.get(item_url(deployment, item), headers=HTMX)
    assert response.status_code == 200
    assert not is_full_page(response)
    body = text(response)
    assert f'id="item-{item.pk}"' in body
    assert body.count("<article") == 1
    assert "hx-swap-oob" not in body


def test_plain_get_of_an_item_redirects_to_its_anchor_on_the_checklist(member_client, deployment):
    item = item_of(deployment)
    response = member_client.get(item_url(deployment, item))
    assert response.status_code == 302
    assert response["Location"] == f"{detail_url(deployment)}#item-{item.pk}"


# Item history


def test_item_history_lists_changes_newest_first_with_who_and_statuses(
    member_client, member, colleague, deployment
):
    save_item(item_of(deployment), member, status=ItemStatus.FAILED, note="first-edit")
    save_item(item_of(deployment), colleague, status=ItemStatus.DONE, note="second-edit")
    save_item(item_of(deployment), member, note="third-edit")
    item = item_of(deployment)
    response = member_client.get(history_url(deployment, item))
    assert response.status_code == 200
    assert is_full_page(response)
    assert [change.version for change in response.context["changes"]] == [4, 3, 2]
    body = text(response)
    positions = [body.index(note) for note in ("third-edit", "second-edit", "first-edit")]
    assert positions == sorted(positions)
    assert "Kim Ode" in body and "Lee Tran" in body
    assert "Open → <strong>Failed</strong>" in body
    assert "Failed → <strong>Done</strong>" in body
    assert "Done → <strong>Done</strong>" in body


def test_item_history_htmx_returns_only_the_changes_fragment(member_client, member, deployment):
    save_item(item_of(deployment), member, status=ItemStatus.DONE)
    item = item_of(deployment)
    response = member_client.get(history_url(deployment, item), headers=HTMX)
    assert response.status_code == 200
    assert not is_full_page(response)
    assert text(response).lstrip().startswith('<div id="item-changes">')
    assert "Open → <strong>Done</strong>" in text(response)


def test_item_history_of_an_untouched_item_says_so(member_client, deployment, item):
    response = member_client.get(history_url(deployment, item))
    assert "No changes yet" in text(response)


# The snapshot rule


def test_editing_or_deleting_template_rows_never_changes_an_existing_checklist(
    member_client, deployment
):
    before = checklist(deployment)
    template = deployment.template
    TemplateItem.objects.filter(section__template=template, title="IAM Policies").update(
        title="Renamed", description="Rewritten"
    )
    TemplateItem.objects.filter(section__template=template, title="MFA").delete()
    TemplateSection.objects.filter(template=template, title="Security").update(title="Sec")
    assert checklist(deployment) == before
    body = text(member_client.get(detail_url(deployment)))
    assert "All roles follow least privilege principle" in body
    assert "Rewritten" not in body
    assert body.count('<article class="item') == 56


def test_importing_a_new_template_version_never_changes_an_existing_checklist(
    client, staff, member, deployment
):
    before = checklist(deployment)
    client.force_login(staff)
    changed = SEED.replace(b"least privilege principle", b"zero trust", 1)
    response = upload(client, changed)
    assert response.status_code == 302
    new = ChecklistTemplate.objects.get(name="Production Readiness Checklist", version=2)
    renamed = TemplateItem.objects.get(section__template=new, title="IAM Policies")
    assert renamed.description == "All roles follow zero trust"
    deployment.refresh_from_db()
    assert deployment.template.version == 1
    assert checklist(deployment) == before
    client.force_login(member)
    body = text(client.get(detail_url(deployment)))
    assert "All roles follow least privilege principle" in body
    assert "zero trust" not in body


# AWS target and probe runs


def test_aws_target_page_and_valid_save(member_client, deployment):
    url = reverse("deployment_aws", args=[deployment.pk])
    response = member_client.get(url)
    assert response.status_code == 200
    assert is_full_page(response)
    response = member_client.post(
        url, {"aws_account_id": "123456789012", "aws_regions": "eu-west-1, us-east-1, eu-west-1"}
    )
    assert response.status_code == 302
    assert response["Location"] == detail_url(deployment)
    deployment.refresh_from_db()
    assert (deployment.aws_account_id, deployment.aws_regions) == (
        "123456789012",
        ["eu-west-1", "us-east-1"],
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"aws_account_id": "12", "aws_regions": "eu-west-1"}, "aws_account_id"),
        ({"aws_account_id": "123456789012", "aws_regions": "mars-1"}, "aws_regions"),
        ({"aws_account_id": "123456789012", "aws_regions": " , "}, "aws_regions"),
        (
            {
                "aws_account_id": "123456789012",
                "aws_regions": "eu-west-1",
                "aws_role_arn": "arn:aws:iam::210987654321:role/readiness",
            },
            "aws_role_arn",
        ),
        (
            {
                "aws_account_id": "123456789012",
                "aws_regions": "eu-west-1",
                "aws_external_id": "abc",
            },
            "aws_external_id",
        ),
    ],
)
def test_invalid_aws_target_is_400_and_saves_nothing(member_client, deployment, data, field):
    response = member_client.post(reverse("deployment_aws", args=[deployment.pk]), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    deployment.refresh_from_db()
    assert (deployment.aws_account_id, deployment.aws_regions) == ("", [])


@pytest.fixture
def aws_deployment(deployment):
    Deployment.objects.filter(pk=deployment.pk).update(
        aws_account_id="123456789012", aws_regions=["us-east-1"]
    )
    deployment.refresh_from_db()
    return deployment


def test_starting_probes_without_an_aws_target_explains_why(member_client, deployment):
    url = reverse("probe_run_start", args=[deployment.pk])
    response = member_client.post(url)
    assert response.status_code == 302
    assert response["Location"] == detail_url(deployment)
    assert "Set the AWS account and regions" in text(member_client.get(response["Location"]))
    response = member_client.post(url, headers=HTMX)
    assert response.status_code == 400
    assert not is_full_page(response)
    assert "Set the AWS account and regions" in text(response)
    assert not ProbeRun.objects.exists()


def test_starting_probes_creates_a_run_and_a_second_click_joins_it(
    member_client, member, aws_deployment
):
    url = reverse("probe_run_start", args=[aws_deployment.pk])
    response = member_client.post(url)
    run = ProbeRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("probe_run_detail", args=[aws_deployment.pk, run.pk])
    assert (run.requested_by, run.state, run.account_id) == (
        member,
        ProbeRunState.QUEUED,
        "123456789012",
    )
    again = member_client.post(url)
    assert again["Location"] == response["Location"]
    assert ProbeRun.objects.count() == 1
    fragment = member_client.post(url, headers=HTMX)
    assert fragment.status_code == 200
    assert not is_full_page(fragment)
    assert 'id="probe-run-panel"' in text(fragment)


def test_probe_run_page_and_its_htmx_panel(member_client, deployment, run):
    url = reverse("probe_run_detail", args=[deployment.pk, run.pk])
    page = member_client.get(url)
    assert page.status_code == 200
    assert is_full_page(page)
    assert f"Probe run #{run.pk}" in text(page)
    panel = member_client.get(
        url, {"refresh": "1"}, headers={**HTMX, "HX-Target": "probe-run-panel"}
    )
    assert panel.status_code == 200
    assert not is_full_page(panel)
    assert text(panel).lstrip().startswith('<div id="probe-run-panel"')
    # The run finished while the page polled: the checklist reloads to show the verdicts.
    assert panel["HX-Refresh"] == "true"


def test_an_active_probe_run_panel_keeps_polling_without_refresh(member_client, aws_deployment):
    run = ProbeRun.objects.create(
        deployment=aws_deployment, state=ProbeRunState.RUNNING, total=4, completed=1
    )
    url = reverse("probe_run_detail", args=[aws_deployment.pk, run.pk])
    panel = member_client.get(
        url, {"refresh": "1"}, headers={**HTMX, "HX-Target": "probe-run-panel"}
    )
    assert panel.status_code == 200
    assert "HX-Refresh" not in panel
    assert 'hx-trigger="every 1s"' in text(panel)
    assert "1 of 4 checks done" in text(panel)


# Templates


def test_template_list_and_detail_are_open_to_every_signed_in_user(outsider_client, db):
    response = outsider_client.get(reverse("template_list"))
    assert response.status_code == 200
    assert "Production Readiness Checklist" in text(response)
    assert "Import from Markdown" not in text(response)
    template = selectors.default_template()
    response = outsider_client.get(reverse("template_detail", args=[template.pk]))
    assert response.status_code == 200
    assert text(response).count("<li><strong>") == 56


def test_template_list_offers_import_to_staff(staff_client):
    assert "Import from Markdown" in text(staff_client.get(reverse("template_list")))


def test_template_import_is_forbidden_to_non_staff(member_client, team):
    response = member_client.get(reverse("template_import"))
    assert response.status_code == 403
    assert "Only administrators can import templates." in text(response)
    before = template_rows()
    response = upload(member_client, SEED.replace(SEED_TITLE, b"# Sneaky", 1))
    assert response.status_code == 403
    assert template_rows() == before


def test_template_import_page_is_shown_to_staff(staff_client):
    response = staff_client.get(reverse("template_import"))
    assert response.status_code == 200
    assert is_full_page(response)
    assert 'enctype="multipart/form-data"' in text(response)


def test_staff_import_of_a_new_checklist_creates_it_and_redirects_to_it(staff_client, staff):
    before = template_rows()
    response = upload(staff_client, SEED.replace(SEED_TITLE, b"# Platform Checklist", 1))
    template = ChecklistTemplate.objects.get(name="Platform Checklist")
    assert response.status_code == 302
    assert response["Location"] == reverse("template_detail", args=[template.pk])
    assert (template.version, template.is_default, template.created_by) == (1, False, staff)
    assert template_rows() == (before[0] + 1, before[1] + 9, before[2] + 56)
    page = staff_client.get(response["Location"])
    assert "Imported Platform Checklist v1." in text(page)


def test_the_name_field_overrides_the_files_title(staff_client):
    response = upload(staff_client, SEED, name="Renamed Checklist")
    template = ChecklistTemplate.objects.get(name="Renamed Checklist")
    assert response["Location"] == reverse("template_detail", args=[template.pk])
    assert template.version == 1


def test_reimporting_the_same_file_says_already_imported_and_adds_nothing(staff_client):
    source = SEED.replace(SEED_TITLE, b"# Platform Checklist", 1)
    first = upload(staff_client, source)
    before = template_rows()
    again = upload(staff_client, source)
    assert again.status_code == 302
    assert again["Location"] == first["Location"]
    assert template_rows() == before
    assert "Already imported: Platform Checklist v1." in text(staff_client.get(again["Location"]))


def test_reimporting_the_seed_finds_the_default_template(staff_client):
    before = template_rows()
    response = upload(staff_client, SEED)
    default = selectors.default_template()
    assert response["Location"] == reverse("template_detail", args=[default.pk])
    assert template_rows() == before


def test_importing_a_changed_file_makes_version_2(staff_client):
    source = SEED.replace(SEED_TITLE, b"# Platform Checklist", 1)
    upload(staff_client, source)
    changed = source.replace(
        b"## Reliability\n", b"## Reliability\n\n- [ ] **Chaos Day:** Run one a quarter\n", 1
    )
    response = upload(staff_client, changed)
    v2 = ChecklistTemplate.objects.get(name="Platform Checklist", version=2)
    assert response["Location"] == reverse("template_detail", args=[v2.pk])
    assert TemplateItem.objects.filter(section__template=v2).count() == 57
    assert ChecklistTemplate.objects.filter(name="Platform Checklist").count() == 2


MALFORMED = [
    pytest.param(
        b"# Broken\n\n- [ ] **Orphan:** before any section\n\n## Security\n\n"
        b"- [ ] **IAM:** least privilege\n",
        "line 3: a checklist item outside a section ('## Section')",
        id="item-outside-section",
    ),
    pytest.param(
        b"# Broken\n\n## Security\n\n- [ ] **IAM:** least privilege\n- [ ] **iam:** again\n",
        "line 6: duplicate item 'iam' in section 'Security' (first on line 5)",
        id="duplicate-item-title",
    ),
    pytest.param(
        b"# Broken\n\nJust prose, no headings at all.\n",
        "no sections found: a checklist needs '## Section' headings",
        id="no-sections",
    ),
    pytest.param(
        b"# Broken\n\n## Security\n\n- [ ] **IAM:** caf\xe9 least privilege\n",
        "line 5: the file is not UTF-8 text",
        id="not-utf8",
    ),
    pytest.param(
        b"# Broken\n\n## Security\n\n- [ ] IAM without a bold title\n",
        "line 5: a checklist item must read '- [ ] **Title:** description'",
        id="untitled-item",
    ),
    pytest.param(
        b"# Broken\n\n## Security\n\n## Reliability\n\n- [ ] **Multi-AZ:** yes\n",
        "line 3: section 'Security' has no items",
        id="empty-section",
    ),
    pytest.param(
        b"# Broken\n\n## Security\n\n- [ ] **IAM:** x\x00y\n",
        "the file is binary, not Markdown text",
        id="nul-byte",
    ),
]


@pytest.mark.parametrize(("content", "error"), MALFORMED)
def test_malformed_markdown_is_400_names_the_problem_and_imports_nothing(
    staff_client, content, error
):
    before = template_rows()
    response = upload(staff_client, content)
    assert response.status_code == 400
    body = text(response)
    assert "Nothing was imported." in body
    assert escape(error) in body
    assert template_rows() == before


def test_a_file_over_the_upload_limit_is_400_and_imports_nothing(staff_client, settings):
    settings.TEMPLATE_UPLOAD_MAX_BYTES = 1024
    before = template_rows()
    response = upload(staff_client, SEED.replace(SEED_TITLE, b"# Too Big", 1))
    assert response.status_code == 400
    assert "Nothing was imported." in text(response)
    assert "the limit is 1,024 bytes" in text(response)
    assert template_rows() == before


def test_the_upload_limit_error_states_the_files_real_size(staff_client, settings):
    settings.TEMPLATE_UPLOAD_MAX_BYTES = 1024
    content = SEED.replace(SEED_TITLE, b"# Too Big", 1)
    response = upload(staff_client, content)
    assert response.status_code == 400
    assert f"the file is {len(content):,} bytes; the limit is 1,024 bytes" in text(response)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({}, "file", id="no-file"),
        pytest.param(
            {"file": SimpleUploadedFile("empty.md", b"", content_type="text/markdown")},
            "file",
            id="empty-file",
        ),
        pytest.param(
            {
                "file": SimpleUploadedFile("ok.md", SEED, content_type="text/markdown"),
                "name": "n" * 201,
            },
            "name",
            id="name-too-long",
        ),
    ],
)
def test_an_invalid_import_form_is_400_with_field_errors(staff_client, data, field):
    before = template_rows()
    response = staff_client.post(reverse("template_import"), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert template_rows() == before


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
