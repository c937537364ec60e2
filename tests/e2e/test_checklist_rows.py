"""The checklist as rows in a real browser (issue 17, point 3): filter and search through
the URL, open a row in place, set a status and save from the keyboard, bulk-set two items.
No CSP violation or script error on the way."""

import re

import pytest
from playwright.sync_api import Page, expect

from readiness.audit.models import AuditEvent
from readiness.checklists import services
from readiness.checklists.models import ChecklistItem, ItemStatus
from tests.e2e.test_checklist_flow import is_item_post, item_row, log_in
from tests.e2e.test_checklist_flow import user as user  # the fixture: Pat, every owning role
from tests.factories import make_deployment

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def stored(deployment, title) -> ChecklistItem:
    return ChecklistItem.objects.get(section__deployment=deployment, title=title)


@pytest.fixture
def page(page: Page) -> Page:
    page.set_default_timeout(10_000)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on(
        "console",
        lambda message: page.errors.append(message.text) if message.type == "error" else None,
    )
    return page


def test_filter_open_keyboard_and_bulk(page: Page, live_server, user):
    deployment = make_deployment(user=user, team=user.teams.get())
    services.item_update(
        item=stored(deployment, "MFA"),
        user=user,
        expected_version=1,
        status=ItemStatus.FAILED,
        note="root has no MFA",
        evidence_url="",
        na_reason="",
    )
    log_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    rows = page.locator(".item-row")
    expect(rows).to_have_count(56)

    # A filter is a link: the URL keeps it, the server lists only its rows.
    page.get_by_role("navigation", name="Filter items").get_by_role("link", name="Failed").click()
    expect(page).to_have_url(re.compile(r"\?show=failed$"))
    expect(rows).to_have_count(1)
    expect(item_row(page, "MFA")).to_be_visible()
    # Search within it, then drop the filter: the search stays.
    page.get_by_role("searchbox").fill("health")
    page.get_by_role("searchbox").press("Enter")
    expect(page.get_by_text("No item matches these filters.")).to_be_visible()
    page.get_by_role("navigation", name="Filter items").get_by_role("link", name="All").click()
    expect(page).to_have_url(re.compile(r"\?q=health$"))
    expect(page.locator(".shown-count")).to_contain_text(re.compile(r"Showing \d of 56 items"))
    health = item_row(page, "Health Checks")
    expect(health.locator(".status-pill")).to_have_text("Open")

    # The row opens in place: htmx fetches its card.
    health.locator(".row-summary").click()
    expect(health.locator("article.item")).to_be_visible()
    expect(health.get_by_role("radio", name="Open")).to_be_checked()

    # Keyboard: back to every item, move with j/k, set a status, save.
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    page.keyboard.press("Tab")  # nothing of the list has the focus yet: keys stay the page's
    first = rows.nth(0).locator(".row-summary")
    first.focus()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    second = rows.nth(1)
    expect(second.locator(".row-summary")).to_be_focused()
    title = second.locator(".row-title").inner_text().strip()
    with page.expect_response(is_item_post) as saved:
        page.keyboard.press("2")  # Done: opens the row, checks the radio, saves itself
    assert saved.value.status == 200
    expect(second.locator(".row-summary .status-pill")).to_have_text("Done")
    assert stored(deployment, title).status == ItemStatus.DONE

    # "Not applicable" waits for its reason; Ctrl+Enter in the field saves.
    page.keyboard.press("j")
    third = rows.nth(2)
    expect(third.locator(".row-summary")).to_be_focused()
    third_title = third.locator(".row-title").inner_text().strip()
    page.keyboard.press("3")
    reason = third.get_by_label("Why it does not apply")
    expect(reason).to_be_focused()
    reason.fill("no such component here")
    with page.expect_response(is_item_post) as saved:
        page.keyboard.press("Control+Enter")
    assert saved.value.status == 200
    expect(third.locator(".row-summary .status-pill")).to_have_text("Not applicable")
    assert stored(deployment, third_title).na_reason == "no such component here"
    page.keyboard.press("Escape")  # out of the field, back on the row
    expect(third.locator(".row-summary")).to_be_focused()

    # The shortcut help.
    page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()

    # Bulk: tick two rows (a click and the x key), one status, one reason.
    fourth, fifth = rows.nth(3), rows.nth(4)
    titles = [row.locator(".row-title").inner_text().strip() for row in (fourth, fifth)]
    fourth.get_by_role("checkbox").check()
    fifth.locator(".row-summary").focus()
    page.keyboard.press("x")
    expect(fifth.get_by_role("checkbox")).to_be_checked()
    expect(page.locator("#bulk-count")).to_have_text("2 items selected")
    bulk = page.locator("#bulk-form")
    bulk.get_by_label("Set status to").select_option("failed")
    bulk.get_by_label("Reason").fill("found in the game day")
    bulk.get_by_role("button", name="Apply to selected").click()
    expect(page.get_by_role("status").first).to_contain_text("Set 2 items to Failed.")
    for name in titles:
        expect(item_row(page, name).locator(".status-pill")).to_have_text("Failed")
        item = stored(deployment, name)
        assert (item.status, item.status_reason) == (ItemStatus.FAILED, "found in the game day")
    events = AuditEvent.objects.filter(action="item.updated", reason="found in the game day")
    assert events.count() == 2

    assert page.errors == [], page.errors
