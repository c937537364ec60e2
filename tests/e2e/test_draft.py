"""The draft record in a real browser: asked for, prepared by a worker while the page waits,
then downloaded; with JavaScript (htmx polls the panel) and without (the page refreshes)."""

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import expect

from readiness.outbox.models import OutboxMessage
from readiness.project.celery import app as celery_app
from signoff.records.drafts import TASK_NAME
from signoff.records.tasks import record_draft_render
from tests.e2e.test_checklist_flow import log_in
from tests.factories import TeamFactory, UserFactory, make_deployment

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

# A render takes a few seconds, more on a busy machine; every wait is bounded.
WAIT = 60_000


@pytest.fixture
def drafts_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }


@pytest.fixture
def member_deployment(db):
    user = UserFactory(username="sam")
    team = TeamFactory(name="Payments", slug="payments", members=[user])
    return user, make_deployment(user=user, team=team)


def test_the_draft_page_waits_for_the_worker_then_offers_the_download(
    page, live_server, drafts_storage, member_deployment
):
    user, deployment = member_deployment
    page.set_default_timeout(WAIT)
    log_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    celery_app.control.purge()  # leftovers of earlier runs would refer to other rows
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        page.get_by_role("link", name="Download draft").click()
        expect(page.get_by_role("heading", level=1, name="Draft record")).to_be_visible()
        # The panel swaps itself (htmx, every second) once the worker stored the draft.
        expect(page.get_by_text("The draft is ready")).to_be_visible(timeout=WAIT)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download draft (PDF)").click()
    assert "DRAFT" in download.value.suggested_filename
    with open(download.value.path(), "rb") as data:
        assert data.read(5) == b"%PDF-"
    assert OutboxMessage.objects.filter(task_name=TASK_NAME).count() == 1


def test_without_javascript_the_draft_page_refreshes_itself_until_ready(
    browser, live_server, drafts_storage, member_deployment
):
    user, deployment = member_deployment
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(WAIT)
    log_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/draft.pdf")
    expect(page.get_by_text("Preparing the draft…")).to_be_visible()
    # The worker's part, run here; the page's meta refresh (2 s) then finds the draft.
    (asked,) = OutboxMessage.objects.filter(task_name=TASK_NAME)
    record_draft_render.apply(args=asked.args, throw=True)
    expect(page.get_by_text("The draft is ready")).to_be_visible(timeout=WAIT)
    assert page.url.endswith(f"/deployments/{deployment.pk}/draft/")
    context.close()
