"""No lost input (issue 17, point 1): a save in flight never replaces what is being typed.

Measured before: "Failed" opens the note, the auto-save ~800 ms later replaced the whole
card mid-typing, and only a prefix ("Quer") was stored, with no sign of the rest. Here the
server holds the save until the test has typed on (an Event, not a sleep), so the typing
always lands while the save is in flight.
"""

import threading

import pytest
from playwright.sync_api import Page, expect

from readiness.checklists import services
from readiness.checklists.models import ChecklistItem, ItemStatus
from tests.e2e.test_checklist_flow import is_item_post, item_article, log_in, status_label
from tests.factories import TeamFactory, UserFactory, make_deployment
from tests.signoff_helpers import give_role

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PREFIX = "Quer"
REST = "y of the MFA report: root has no hardware key; break-glass user unchecked."


@pytest.fixture
def security_holder():
    user = UserFactory(username="sam", first_name="Sam", last_name="Sec")
    give_role(user, TeamFactory(name="Payments", slug="payments", members=[user]), "security")
    return user


@pytest.fixture
def held_save(monkeypatch):
    """item_update, held at its start until `release` is set; `entered` says it is held.

    The live server runs in this process (a thread), so the view finds the wrapper."""
    entered, release = threading.Event(), threading.Event()
    original = services.item_update

    def held(**kwargs):
        entered.set()
        assert release.wait(30), "the test never released the save"
        return original(**kwargs)

    monkeypatch.setattr(services, "item_update", held)
    return entered, release


@pytest.fixture
def page(page: Page) -> Page:
    page.set_default_timeout(10_000)
    return page


def test_typing_while_a_save_is_in_flight_is_kept_marked_unsaved_and_then_stored(
    page: Page, live_server, security_holder, held_save
):
    entered, release = held_save
    deployment = make_deployment(user=security_holder, team=security_holder.teams.get())
    log_in(page, live_server.url, security_holder)
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    item = item_article(page, "MFA")
    note = item.get_by_label("Note")
    unsaved = note.locator("xpath=ancestor::div[contains(@class, 'field')][1]").locator(
        ".unsaved-mark"
    )

    item.get_by_text("Note and evidence").click()
    note.press_sequentially(PREFIX)
    expect(unsaved).to_be_visible()  # typed, not saved
    with page.expect_response(is_item_post) as first:
        status_label(item, "Failed").click()  # saves itself 800 ms later, note "Quer"
        assert entered.wait(10), "the auto-save never reached the server"
        note.press_sequentially(REST)  # while the save is held on the server
        release.set()
    assert first.value.status == 200

    expect(item.locator(".status-pill")).to_have_text("Failed")
    expect(note).to_have_value(PREFIX + REST)  # nothing replaced the field
    expect(unsaved).to_be_visible()  # the rest is not stored yet, and says so
    stored = ChecklistItem.objects.get(section__deployment=deployment, title="MFA")
    assert (stored.status, stored.note) == (ItemStatus.FAILED, PREFIX)
    expect(page.locator("#overall-progress")).to_contain_text("1 failed")

    with page.expect_response(is_item_post) as second:
        item.get_by_role("button", name="Save").click()
    assert second.value.status == 200
    expect(unsaved).to_be_hidden()
    expect(item.locator(".save-status")).to_have_text("Saved")
    stored.refresh_from_db()
    assert (stored.status, stored.note, stored.version) == (ItemStatus.FAILED, PREFIX + REST, 3)

    page.reload()
    item = item_article(page, "MFA")
    expect(item.get_by_label("Note")).to_have_value(PREFIX + REST)
    expect(item.get_by_role("radio", name="Failed")).to_be_checked()


def test_the_card_of_another_roles_item_is_read_only(page: Page, live_server, security_holder):
    deployment = make_deployment(user=security_holder, team=security_holder.teams.get())
    lead = UserFactory(username="tia", first_name="Tia", last_name="Lead")
    give_role(lead, deployment.team, "tech-lead")
    log_in(page, live_server.url, lead)
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    mfa = item_article(page, "MFA")
    expect(mfa).to_contain_text("owned by Security")
    expect(mfa.get_by_role("radio")).to_have_count(0)
    expect(mfa.get_by_role("button", name="Save")).to_have_count(0)
    unit_tests = item_article(page, "Unit Tests")
    expect(unit_tests.get_by_role("radio", name="Done")).to_be_enabled()
