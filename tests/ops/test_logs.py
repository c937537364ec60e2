"""LOG_FORMAT=json: JSON lines carrying the request id, the user id and the deployment id,
and the tasks a request caused carrying its request id; text mode as it was."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from readiness.project import logs
from tests.factories import TeamFactory, UserFactory, make_deployment

ROOT = Path(__file__).resolve().parents[2]
PROXY_ID = "req-from-proxy-1234"
SWEPT_ID = "req-refused-at-commit-5678"

# Run in a process of its own with LOG_FORMAT=json (settings are read once per process):
# a logged-in request for a draft (which stores the render in the outbox and publishes it
# after the commit), a request with an X-Request-ID that is not sane, an outbox row whose
# publish was refused at its commit (sent later by the sweeper, in another context), then a
# real worker that runs both tasks. Every log line goes to stderr.
SCRIPT = """
import json, sys, time
import django
django.setup()
import structlog
from datetime import timedelta
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.test import Client
from readiness.audit.models import AuditVerification
from readiness.outbox.models import OutboxMessage
from readiness.outbox.services import outbox_sweep
from readiness.project.celery import app

from django.conf import settings
# As the tests' conftest does: static files from the finders, no collectstatic manifest.
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
user_pk, deployment_pk = int(sys.argv[1]), int(sys.argv[2])
app.control.purge()
client = Client(HTTP_HOST="localhost")
client.force_login(get_user_model().objects.get(pk=user_pk))
draft = client.get(f"/deployments/{deployment_pk}/draft.pdf", headers={"X-Request-ID": sys.argv[3]})
bad = client.get(f"/deployments/{deployment_pk}/", headers={"X-Request-ID": 'x" y\\\\n{}'})
draft_row = OutboxMessage.objects.get(task_name="signoff.record_draft_render")
OutboxMessage.objects.create(
    key="refused-at-commit", task_name="readiness.audit_verify", request_id=sys.argv[4]
)
with structlog.contextvars.bound_contextvars(task_id="the-sweeper"):
    swept = outbox_sweep(min_age=timedelta(0))
with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        draft_row.refresh_from_db()
        if draft_row.done_at and AuditVerification.objects.exists():
            break
        time.sleep(0.2)
print(json.dumps({
    "draft": [draft.status_code, draft.get("X-Request-ID")],
    "bad": [bad.status_code, bad.get("X-Request-ID")],
    "stored_request_id": draft_row.request_id,
    "swept": swept,
    "rendered": bool(draft_row.done_at),
    "verified": AuditVerification.objects.exists(),
}))
"""


def _database_url() -> str:
    database = django_settings.DATABASES["default"]
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    return (
        f"postgres://{credentials}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
        f"/{database['NAME']}"
    )


_RUN: dict = {}


@pytest.fixture
def json_run(transactional_db, django_db_serialized_rollback, tmp_path_factory):
    """One run of SCRIPT for the module's tests: (its outcome, its log lines, user,
    deployment)."""
    if not _RUN:
        _RUN["run"] = _json_run(tmp_path_factory.mktemp("json-logs"))
    return _RUN["run"]


def _json_run(tmp_path):
    assert django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), (
        "the process under test must see the test database: PostgreSQL (DATABASE_URL)"
    )
    assert django_settings.CELERY_BROKER_URL.startswith("redis://"), "needs REDIS_URL"
    user = UserFactory(username="lee")
    deployment = make_deployment(user=user, team=TeamFactory(members=[user]))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LOG_")}
    environment.update(
        LOG_FORMAT="json",
        DATABASE_URL=_database_url(),
        REDIS_URL=django_settings.CELERY_BROKER_URL,
        DATA_DIR=str(tmp_path / "data"),
        DJANGO_SETTINGS_MODULE="readiness.project.settings",
        PYTHONWARNINGS="ignore",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(user.pk), str(deployment.pk), PROXY_ID, SWEPT_ID],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    return json.loads(done.stdout.splitlines()[-1]), lines, user, deployment


def test_json_lines_carry_the_request_id_user_and_deployment(json_run):
    outcome, lines, user, deployment = json_run
    assert outcome["draft"] == [202, PROXY_ID]
    of_request = [line for line in lines if line.get("request_id") == PROXY_ID]
    events = {line["event"] for line in of_request}
    assert {"request_started", "request_finished"} <= events
    for line in of_request:
        if "task_id" not in line:  # the request's own lines, not the worker's
            assert line["user_id"] == user.pk
            assert line["deployment_id"] == deployment.pk
            assert line["level"] and line["timestamp"]


def test_a_request_id_that_is_not_sane_is_replaced(json_run):
    outcome, lines, _, deployment = json_run
    status, request_id = outcome["bad"]
    assert status == 200
    assert logs.SANE_REQUEST_ID.fullmatch(request_id) and len(request_id) == 32
    finished = [line for line in lines if line["event"] == "request_finished"]
    assert any(
        line["request_id"] == request_id and line["request"] == f"GET /deployments/{deployment.pk}/"
        for line in finished
    )
    assert not any('x" y' in str(line.get("request_id")) for line in lines)


def test_a_task_sent_after_the_commit_logs_the_request_id(json_run):
    outcome, lines, _, _ = json_run
    assert outcome["stored_request_id"] == PROXY_ID
    assert outcome["rendered"], "the worker did not render the draft"
    render = [line for line in lines if line.get("task") == "signoff.record_draft_render"]
    assert render, "no task_started line for the render"
    assert all(line["request_id"] == PROXY_ID for line in render)
    task_ids = {line["task_id"] for line in render}
    succeeded = [
        line
        for line in lines
        if line["event"] == "task_succeeded" and line.get("task_id") in task_ids
    ]
    assert succeeded and all(line["request_id"] == PROXY_ID for line in succeeded)


def test_a_task_the_sweeper_sends_later_logs_the_request_id_of_its_row(json_run):
    outcome, lines, _, _ = json_run
    assert outcome["swept"] >= 1 and outcome["verified"]
    started = [line for line in lines if line.get("task") == "readiness.audit_verify"]
    assert started and all(line["request_id"] == SWEPT_ID for line in started)
    # The sweeper's own context went along as the parent, not as the request.
    assert all(line.get("parent_task_id") == "the-sweeper" for line in started)
    # A finished task's context is not left on the worker's next lines.
    received = [
        line
        for line in lines
        if line["event"].startswith("Task readiness.audit_verify[")
        and line["event"].endswith("received")
    ]
    assert received and all(line.get("request_id") != PROXY_ID for line in received)


@pytest.mark.django_db
def test_text_mode_is_unchanged(client, member, deployment):
    """The default: the plain format, no structlog middleware, no X-Request-ID."""
    assert django_settings.LOG_FORMAT == "text"
    assert django_settings.LOGGING["handlers"]["console"]["formatter"] == "plain"
    assert django_settings.LOGGING["formatters"]["plain"] == {
        "format": "%(asctime)s %(levelname)s %(name)s %(message)s"
    }
    assert "django_structlog" not in django_settings.INSTALLED_APPS
    assert not any("structlog" in name or "logs." in name for name in django_settings.MIDDLEWARE)
    client.force_login(member)
    response = client.get(f"/deployments/{deployment.pk}/", headers={"X-Request-ID": PROXY_ID})
    assert response.status_code == 200
    assert not response.has_header("X-Request-ID")
    (console,) = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    formatter = console.formatter
    record = logging.LogRecord(
        "readiness.example", logging.WARNING, __file__, 1, "hi %s", ("x",), None
    )
    line = formatter.format(record)
    assert line.endswith(" WARNING readiness.example hi x") and not line.startswith("{")


def test_json_mode_keeps_every_logger_and_level_of_text_mode():
    text = django_settings.LOGGING
    json_config = logs.json_logging(text)
    assert json_config["loggers"] == text["loggers"] and json_config["root"] == text["root"]
    assert json_config["handlers"]["console"]["formatter"] == "json"
    assert text["handlers"]["console"]["formatter"] == "plain"
