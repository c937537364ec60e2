"""The checklist flow in a real browser: log in, create a deployment, work through items.

live_server needs transactional tests, and they flush the database afterwards, also the
default template the data migration loaded: without `serialized_rollback=True` the second
test finds no template. (Django's limit: a serialized test that follows a transactional test
without it fails on django_content_type, so keep every transactional test serialized.)
"""

import re

import pytest
from playwright.sync_api import Page, expect

from readiness.checklists.models import ChecklistItem, ChecklistTemplate, Deployment, ItemStatus
from tests.factories import PASSWORD, TeamFactory, UserFactory, make_deployment
from tests.signoff_helpers import give_role

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

NA_REASON = "No public endpoint: the service only consumes an internal queue."


@pytest.fixture
def user():
    """Pat fills in every item: only holders of an item's owning role change it."""
    user = UserFactory(username="pat", first_name="Pat", last_name="Lee")
    team = TeamFactory(name="Payments", slug="payments", members=[user])
    for slug in ("tech-lead", "security", "devops"):
        give_role(user, team, slug)
    return user


@pytest.fixture
def page(page: Page) -> Page:
    page.set_default_timeout(10_000)
    return page


def log_in(page: Page, base_url: str, user) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1, name="Deployments")).to_be_visible()


def item_row(page: Page, title: str):
    """The checklist's compact row of an item (<li id="row-<pk>">), found by its title."""
    title_pattern = re.compile(rf"^{re.escape(title)}(\s|$)")
    return page.locator(".item-row").filter(has=page.locator(".row-title", has_text=title_pattern))


def item_article(page: Page, title: str):
    """The item's card (<article id="item-<pk>">). On the checklist its row is opened first
    and htmx fetches the card into it; on a role page the cards are there, found through
    their heading.

    Located by id rather than by the heading: htmx replaces the whole article on a refusal.
    """
    row = item_row(page, title)
    if row.count():
        pk = row.get_attribute("id").removeprefix("row-")
        if not row.locator(".row-details").evaluate("details => details.open"):
            row.locator(".row-summary").click()
        card = page.locator(f"#item-{pk}")
        expect(card).to_be_attached()
        return card
    heading = page.get_by_role("heading", level=3, name=title)
    heading_id = heading.get_attribute("id")
    assert heading_id and heading_id.startswith("item-title-"), heading_id
    return page.locator(f"#item-{heading_id.removeprefix('item-title-')}")


def status_label(item, text: str):
    """The visible segment ("Done", "Failed"...) of an item's status radio group."""
    return item.get_by_role("group", name=re.compile("^Status of ")).locator("label", has_text=text)


def is_item_post(response) -> bool:
    return response.request.method == "POST" and re.search(r"/items/\d+/$", response.url)


def test_create_deployment_and_work_through_the_checklist(page: Page, live_server, user):
    assert ChecklistTemplate.objects.filter(is_default=True).exists()
    log_in(page, live_server.url, user)

    page.get_by_role("main").get_by_role("link", name="New deployment").click()
    expect(page.get_by_role("heading", level=1, name="New deployment")).to_be_visible()
    page.get_by_label("Service").fill("payments-api")
    page.get_by_label("Version").fill("2.4.0")
    page.get_by_label("Environment").fill("production")
    page.get_by_label("Planned deployment date").fill("2026-12-10")
    page.get_by_role("button", name="Create deployment").click()

    expect(page).to_have_url(re.compile(r"/deployments/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("payments-api")
    expect(page.get_by_role("status")).to_contain_text("Created")
    deployment = Deployment.objects.get(service="payments-api", version="2.4.0")
    assert deployment.environment == "production"
    assert str(deployment.planned_date) == "2026-12-10"
    total = ChecklistItem.objects.filter(section__deployment=deployment).count()
    assert total == 56
    progress = page.locator("#overall-progress")
    expect(progress).to_contain_text("0% complete")
    expect(progress).to_contain_text(f"{total} open")

    # "Done" saves as soon as the radio changes (htmx).
    iam = item_article(page, "IAM Policies")
    with page.expect_response(is_item_post) as saved:
        status_label(iam, "Done").click()
    assert saved.value.status == 200
    expect(iam.locator(".status-pill")).to_have_text("Done")
    expect(iam.get_by_role("radio", name="Done")).to_be_checked()

    # "Not applicable" waits for a reason and the Save button.
    pentest = item_article(page, "Penetration Test")
    status_label(pentest, "Not applicable").click()
    reason = pentest.get_by_label("Why it does not apply")
    expect(reason).to_be_focused()  # static/js/app.js moves the cursor there
    reason.fill(NA_REASON)
    with page.expect_response(is_item_post) as saved:
        pentest.get_by_role("button", name="Save").click()
    assert saved.value.status == 200
    expect(pentest.locator(".status-pill")).to_have_text("Not applicable")

    percent = round(100 * 2 / total)  # 2 of 56 complete: 4%
    expect(progress).to_contain_text(f"{percent}% complete")
    expect(progress).to_contain_text("1 done")
    expect(progress).to_contain_text("1 not applicable")
    expect(progress).to_contain_text(f"{total - 2} open")
    expect(page.get_by_role("progressbar", name=f"Checklist {percent}% complete")).to_be_visible()

    page.reload()
    iam, pentest = item_article(page, "IAM Policies"), item_article(page, "Penetration Test")
    expect(iam.locator(".status-pill")).to_have_text("Done")
    expect(iam.get_by_role("radio", name="Done")).to_be_checked()
    expect(pentest.locator(".status-pill")).to_have_text("Not applicable")
    expect(pentest.get_by_role("radio", name="Not applicable")).to_be_checked()
    expect(pentest.get_by_label("Why it does not apply")).to_have_value(NA_REASON)
    expect(progress).to_contain_text(f"{percent}% complete")
    expect(progress).to_contain_text("1 done")
    expect(progress).to_contain_text("1 not applicable")

    items = ChecklistItem.objects.filter(section__deployment=deployment)
    iam_item = items.get(title="IAM Policies")
    assert (iam_item.status, iam_item.updated_by, iam_item.version) == (ItemStatus.DONE, user, 2)
    pentest_item = items.get(title="Penetration Test")
    assert pentest_item.status == ItemStatus.NOT_APPLICABLE
    assert pentest_item.na_reason == NA_REASON
    assert pentest_item.updated_by == user
    assert items.exclude(status=ItemStatus.OPEN).count() == 2


def test_item_form_works_without_javascript(new_context, live_server, user):
    deployment = make_deployment(user=user, team=user.teams.get())
    page = new_context(java_script_enabled=False).new_page()
    page.set_default_timeout(10_000)
    log_in(page, live_server.url, user)

    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    # The row opens (a <details>) to a link to the item's own page, which holds its form.
    row = item_row(page, "IAM Policies")
    row.locator(".row-summary").click()
    row.get_by_role("link", name="Open “IAM Policies”").click()
    expect(page).to_have_url(re.compile(rf"/deployments/{deployment.pk}/items/\d+/$"))
    item = page.locator("article.item")
    status_label(item, "Failed").click()
    item.get_by_label("Note").fill("Two roles still have iam:* on *.")
    with page.expect_navigation():
        item.get_by_role("button", name="Save").click()

    expect(page).to_have_url(re.compile(rf"/deployments/{deployment.pk}/#row-\d+$"))
    expect(page.get_by_role("status").first).to_contain_text("Saved “IAM Policies”.")
    expect(item_row(page, "IAM Policies").locator(".status-pill")).to_have_text("Failed")
    expect(page.locator("#overall-progress")).to_contain_text("1 failed")
    saved = ChecklistItem.objects.get(section__deployment=deployment, title="IAM Policies")
    assert (saved.status, saved.note) == (ItemStatus.FAILED, "Two roles still have iam:* on *.")
