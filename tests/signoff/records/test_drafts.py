"""Drafts of the record: asked for in a request, rendered by a worker, kept by state digest.

The worker's part runs here as the task itself (`record_draft_render.apply`) after the
request, the way a worker would take it from the outbox; every request is watched so that
it never renders (pdf.render_record counted while the request runs).
"""

import subprocess
import threading
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from readiness.checklists import services as readiness_services
from readiness.checklists.models import ChecklistItem, ItemStatus
from readiness.outbox.models import OutboxMessage
from readiness.project.celery import app as celery_app
from signoff.records import pdf
from signoff.records.drafts import TASK_NAME
from signoff.records.models import SignedRecord
from signoff.records.tasks import record_draft_render
from signoff.teams.models import RoleMembership
from tests.factories import UserFactory
from tests.signoff_helpers import give_role

PREPARING = "Preparing the draft…"
# The panel's reads: session and user, the deployment, its snapshot (about fifteen), the
# outbox row; independent of the number of items.
QUERIES = 30
# Every wait on the real worker is bounded.
WAIT = 60


class Renders(list):
    """Every render of the record (True for a draft), and the thread each ran in."""

    def __init__(self):
        super().__init__()
        self.threads: list[int] = []

    def in_thread(self, ident: int) -> int:
        return self.threads.count(ident)


@pytest.fixture
def renders(monkeypatch):
    calls = Renders()
    real = pdf.render_record

    def counted(*args, **kwargs):
        calls.append(kwargs.get("draft"))
        calls.threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(pdf, "render_record", counted)
    return calls


class Browser:
    """A logged-in client whose requests must not render."""

    def __init__(self, user, deployment, renders):
        self.client = Client()
        self.client.force_login(user)
        self.deployment = deployment
        self.renders = renders

    def get(self, what: str, **headers):
        return self._watched(self.client.get, what, headers)

    def post(self, what: str, **headers):
        return self._watched(self.client.post, what, headers)

    def _watched(self, send, what, headers):
        # The test client runs the view in this thread; a worker renders in its own.
        here = threading.get_ident()
        before = self.renders.in_thread(here)
        response = send(self.url(what), headers=headers)
        assert self.renders.in_thread(here) == before, f"the request {what} rendered the record"
        return response

    def url(self, what: str) -> str:
        return {
            "pdf": f"/deployments/{self.deployment.pk}/draft.pdf",
            "status": f"/deployments/{self.deployment.pk}/draft/",
            "retry": f"/deployments/{self.deployment.pk}/draft/retry/",
        }[what]


@pytest.fixture
def viewer(member, deployment, renders, media):
    return Browser(member, deployment, renders)


def asked_renders():
    return list(OutboxMessage.objects.filter(task_name=TASK_NAME).order_by("id"))


def work(message: OutboxMessage) -> None:
    """What a worker does with the message the outbox sends."""
    record_draft_render.apply(args=message.args, throw=True)


def drafts_stored(deployment) -> list[str]:
    try:
        return sorted(default_storage.listdir(f"drafts/{deployment.pk}")[1])
    except FileNotFoundError:
        return []


def pdf_text(data: bytes, tmp_path) -> list[str]:
    """The text of each page, read by poppler's pdftotext."""
    path = tmp_path / "draft.pdf"
    path.write_bytes(data)
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, timeout=60
    ).stdout.decode()
    return [page for page in out.split("\f") if page.strip()]


def change_an_item(deployment, user, note: str) -> None:
    item = ChecklistItem.objects.filter(section__deployment=deployment).order_by("pk").first()
    if (
        item.owner_role is not None
        and not RoleMembership.objects.filter(
            user=user, team=deployment.team, role=item.owner_role
        ).exists()
    ):
        # An item is changed by those holding its owning role.
        give_role(user, deployment.team, item.owner_role.slug)
    readiness_services.item_update(
        item=item,
        user=user,
        expected_version=item.version,
        status=ItemStatus.DONE,
        note=note,
        evidence_url="",
        na_reason="",
        reason="",
    )


@pytest.mark.django_db
def test_the_first_request_answers_a_preparing_page_and_asks_for_one_render(viewer, renders):
    response = viewer.get("pdf")
    assert response.status_code == 202
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert PREPARING in body
    # htmx polls the panel every second; without JavaScript the page refreshes itself.
    assert 'hx-trigger="every 1s"' in body and viewer.url("status") in body
    assert '<meta http-equiv="refresh" content="2; url=' in body
    (asked,) = asked_renders()
    assert asked.args[:1] == [viewer.deployment.pk] and asked.args[3] == 1
    assert renders == []


@pytest.mark.django_db
def test_asking_again_before_the_render_ends_asks_for_no_second_render(
    viewer, deployment, team, renders
):
    teammate = UserFactory(username="kim")
    team.members.add(teammate)
    other = Browser(teammate, deployment, renders)
    assert viewer.get("pdf").status_code == 202
    assert viewer.get("pdf").status_code == 202
    assert other.get("pdf").status_code == 202
    assert PREPARING in other.get("status").content.decode()
    assert len(asked_renders()) == 1
    # Two deliveries of the one message (the outbox may publish twice) render once.
    (asked,) = asked_renders()
    work(asked)
    work(asked)
    assert renders == [True]


@pytest.mark.django_db
def test_after_the_render_the_draft_is_served_from_storage_watermarked_and_unsigned(
    viewer, deployment, renders, tmp_path
):
    assert viewer.get("pdf").status_code == 202
    pending = viewer.get("status", **{"HX-Request": "true", "HX-Target": "draft-panel"})
    assert PREPARING in pending.content.decode() and "<html" not in pending.content.decode()

    (asked,) = asked_renders()
    work(asked)
    assert renders == [True]
    assert drafts_stored(deployment) == [f"{asked.args[1]}-a4.pdf"]

    # The panel stops polling and offers the download.
    ready = viewer.get("status", **{"HX-Request": "true", "HX-Target": "draft-panel"}).content
    assert b"The draft is ready" in ready and b"hx-trigger" not in ready
    assert viewer.url("pdf").encode() in ready

    response = viewer.get("pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "DRAFT" in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    pages = pdf_text(data, tmp_path)
    assert pages and all("DRAFT" in page for page in pages)
    assert b"/Sig" not in data and b"/ByteRange" not in data
    assert not SignedRecord.objects.exists()
    # Served again without another render.
    assert viewer.get("pdf").status_code == 200
    assert renders == [True] and len(asked_renders()) == 1


@pytest.mark.django_db
def test_a_change_to_an_item_makes_a_new_digest_and_a_new_render(
    viewer, deployment, member, renders, tmp_path
):
    viewer.get("pdf")
    (first,) = asked_renders()
    work(first)
    assert viewer.get("pdf").status_code == 200

    change_an_item(deployment, member, "restore drill passed on 2 March")
    assert viewer.get("pdf").status_code == 202
    _, second = asked_renders()
    assert second.args[1] != first.args[1]
    work(second)
    assert renders == [True, True]
    # One deployment keeps the draft of its newest state only.
    assert drafts_stored(deployment) == [f"{second.args[1]}-a4.pdf"]
    response = viewer.get("pdf")
    assert response.status_code == 200
    text = " ".join(" ".join(pdf_text(b"".join(response.streaming_content), tmp_path)).split())
    assert "restore drill passed on 2 March" in text


@pytest.mark.django_db
def test_a_failed_render_shows_the_error_and_a_retry_that_renders_again(
    viewer, deployment, renders, monkeypatch
):
    viewer.get("pdf")
    (asked,) = asked_renders()
    real = pdf.render_record

    def broken(*args, **kwargs):
        raise RuntimeError("font cache unreadable")

    monkeypatch.setattr(pdf, "render_record", broken)
    work(asked)
    monkeypatch.setattr(pdf, "render_record", real)

    for what in ("pdf", "status"):
        response = viewer.get(what)
        assert response.status_code == (202 if what == "pdf" else 200)
        body = response.content.decode()
        assert "The draft could not be prepared" in body
        assert "RuntimeError: font cache unreadable" in body
        assert viewer.url("retry") in body and "Try again" in body
        assert "hx-trigger" not in body and PREPARING not in body
    assert len(asked_renders()) == 1

    retried = viewer.post("retry")
    assert retried.status_code == 302 and retried["Location"] == viewer.url("status")
    assert viewer.get("status").content.decode().count(PREPARING) == 1
    first, second = asked_renders()
    assert second.args[1] == first.args[1] and second.args[3] == 2
    work(second)
    assert viewer.get("pdf").status_code == 200
    assert drafts_stored(deployment) == [f"{second.args[1]}-a4.pdf"]


@pytest.mark.django_db
def test_a_render_not_done_after_the_timeout_is_reported_failed_and_can_be_retried(
    viewer, settings
):
    settings.RECORD_DRAFT_TIMEOUT = 30
    viewer.get("pdf")
    assert PREPARING in viewer.get("status").content.decode()
    # Nobody took it (no worker running) and half a minute went by.
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(seconds=31))
    body = viewer.get("status").content.decode()
    assert "not ready 30 s after it was asked for (no worker took it)" in body
    assert "Try again" in body and "hx-trigger" not in body

    panel = viewer.post("retry", **{"HX-Request": "true", "HX-Target": "draft-panel"})
    assert panel.status_code == 200 and PREPARING in panel.content.decode()
    assert [m.args[3] for m in asked_renders()] == [1, 2]


@pytest.mark.django_db
def test_a_retry_while_the_draft_is_preparing_asks_for_nothing_more(viewer):
    viewer.get("pdf")
    assert viewer.post("retry").status_code == 302
    assert len(asked_renders()) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("what", ["pdf", "status", "retry"])
def test_only_members_of_the_deployments_team_reach_its_draft(
    what, deployment, member, outsider, renders, media
):
    address = Browser(member, deployment, renders).url(what)
    send = Client().post if what == "retry" else Client().get
    anonymous = send(address)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    other = Browser(outsider, deployment, renders)
    assert (other.post(what) if what == "retry" else other.get(what)).status_code == 404
    assert not asked_renders()
    mine = Browser(member, deployment, renders)
    answer = mine.post(what) if what == "retry" else mine.get(what)
    assert answer.status_code == {"pdf": 202, "status": 200, "retry": 302}[what]
    assert len(asked_renders()) == 1


@pytest.mark.django_db
def test_the_panel_reads_a_fixed_number_of_queries(
    viewer, deployment, member, django_assert_max_num_queries
):
    panel = {"HX-Request": "true", "HX-Target": "draft-panel"}
    viewer.get("pdf")
    with django_assert_max_num_queries(QUERIES) as polled:
        viewer.get("status", **panel)
    # Read now: the next request clears the connection's query log.
    pending = len(polled.captured_queries)
    work(asked_renders()[0])
    with django_assert_max_num_queries(pending):
        viewer.get("status", **panel)
    for n in range(5):
        change_an_item(deployment, member, f"note {n}")
    viewer.get("pdf")  # asks for the new state's render
    with django_assert_max_num_queries(pending):
        viewer.get("status", **panel)


# A real worker, from the configured broker (Redis in CI), fed by the outbox after commit.


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_renders_the_draft_the_request_asked_for(member, deployment, renders, media):
    viewer = Browser(member, deployment, renders)
    celery_app.control.purge()  # leftovers of earlier runs would refer to other rows
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        started = time.monotonic()
        first = viewer.get("pdf")
        asked_in = time.monotonic() - started
        assert first.status_code == 202 and PREPARING in first.content.decode()
        deadline = time.monotonic() + WAIT
        while b"The draft is ready" not in viewer.get("status").content:
            assert time.monotonic() < deadline, f"no draft within {WAIT} s"
            time.sleep(0.2)
    (asked,) = asked_renders()
    assert asked.sent_at is not None and asked.done_at is not None
    assert renders == [True] and renders.in_thread(threading.get_ident()) == 0
    response = viewer.get("pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    # The request stored its intent and published it; it did not wait for the render.
    assert asked_in < 0.5, f"the request took {asked_in:.2f} s"
