"""A broker outage at the moment of approval: the work the approval calls for (the record, the
mails) is kept in the outbox and done once when the broker is back.

The test runs its own Redis on a free port, stops it, signs the last role, starts it again
on the same port and lets the sweeper and a real worker catch up.
"""

import socket
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction
from django.utils import timezone

from readiness.checklists.models import DeploymentState
from readiness.dev.demo_aws import free_port
from readiness.outbox.models import OutboxMessage
from readiness.outbox.selectors import outbox_pending
from readiness.outbox.services import outbox_sweep
from readiness.project.celery import app as celery_app
from readiness.project.tasks import worker_ping
from signoff.lifecycle import services
from signoff.notifications.services import announce
from signoff.notifications.tasks import notification_email_send
from signoff.records.models import SignedRecord
from tests.factories import TeamFactory, UserFactory, make_deployment
from tests.signoff_helpers import complete_items, sign, signers_for

REDIS_SERVER = "/usr/bin/redis-server"
# Every wait in this test is bounded: a hung broker or worker fails it, never stalls CI.
WAIT = 60


class PrivateRedis:
    """A redis-server of this test's own, stopped and started again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_broker(tmp_path):
    """The Celery app pointed at a private Redis for the test, then back at its own."""
    if not Path(REDIS_SERVER).exists():
        pytest.fail(f"{REDIS_SERVER} is needed for the broker fault test (apt-get install redis)")
    redis = PrivateRedis(tmp_path)
    redis.start()
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = redis.url
    # Connections already pooled point at the configured broker: make new ones.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    try:
        yield redis
    finally:
        redis.stop()
        celery_app.pool.force_close_all()
        celery_app.conf.broker_url = previous
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {WAIT} s: {what}")


def everything_done() -> bool:
    """Every row sent, and every row of a mail task done (the mail went out)."""
    return not outbox_pending().exists() and not (
        OutboxMessage.objects.filter(
            task_name="signoff.notification_email_send", done_at__isnull=True
        ).exists()
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_signature_made_while_the_broker_is_down_gets_its_record_and_mails_once(
    redis_broker, media, mailoutbox, settings
):
    settings.NOTIFY_WEBHOOK_URL = ""
    owner = UserFactory(username="owen")
    team = TeamFactory(slug="payments", members=[owner])
    deployment = make_deployment(user=owner, team=team)
    signers = signers_for(team)
    complete_items(deployment)

    # Up to the last signature with the broker up and a worker consuming it.
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        services.signoff_request(deployment=deployment, user=signers["tech-lead"])
        for slug in ("tech-lead", "security", "devops"):
            sign(deployment, signers[slug], slug)
        wait_until(everything_done, "the mails of the first three signatures")
    before = len(mailoutbox)

    redis_broker.stop()
    started = timezone.now()
    sign(deployment, signers["product"], "product")
    waited = (timezone.now() - started).total_seconds()

    # The signature stands and approved the deployment; its work waits in the outbox.
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.APPROVED
    assert waited < 5, f"signing took {waited:.1f} s with the broker down"
    assert sorted((m.task_name, m.key.split(":")[1]) for m in outbox_pending()) == [
        ("signoff.notification_email_send", "approved"),
        ("signoff.notification_email_send", "signed"),
        ("signoff.record_generate", str(deployment.pk)),
    ]
    assert not SignedRecord.objects.exists()
    assert len(mailoutbox) == before

    # The broker is back on the same address: the sweeper sends, a worker does the work.
    redis_broker.start()
    assert outbox_sweep(min_age=timedelta(0)) == 3
    assert outbox_sweep(min_age=timedelta(0)) == 0  # a second sweep sends nothing again
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        wait_until(
            lambda: SignedRecord.objects.exists() and everything_done(),
            "the record and the mails of the last signature",
        )
        # Whatever reaches the broker again (a second publish) is done once.
        for message in OutboxMessage.objects.filter(sent_at__gte=started):
            celery_app.send_task(message.task_name, args=message.args, kwargs=message.kwargs)
        # The solo worker takes messages in order: its answer to this one comes after them.
        assert worker_ping.apply_async().get(timeout=WAIT) == "pong"

    record = SignedRecord.objects.get(deployment=deployment)
    assert record.deployment_state == DeploymentState.APPROVED
    assert sorted(message.subject for message in mailoutbox[before:]) == [
        f"[Readiness] Deployment approved: {deployment}",
        f"[Readiness] Product sign-off approved: {deployment}",
    ]
    assert not outbox_pending().exists()


@pytest.fixture
def silent_broker(settings):
    """A 'Redis' that accepts connections and never answers (a hung server, a half-open
    network path); the Celery app is pointed at it for the test."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        # The read timeout is the Redis transport's, set when Redis is the broker (CI).
        pytest.skip("needs REDIS_URL: checks the timeouts of the Redis transport settings")
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    try:
        yield
    finally:
        server.close()
        for connection in held:
            connection.close()
        celery_app.pool.force_close_all()
        celery_app.conf.broker_url = previous
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


@pytest.mark.django_db
def test_a_broker_that_never_answers_holds_the_request_a_few_seconds_at_most(
    silent_broker, django_capture_on_commit_callbacks
):
    owner = UserFactory(username="owen")
    team = TeamFactory(slug="payments", members=[owner])
    deployment = make_deployment(user=owner, team=team)
    signers = signers_for(team)
    complete_items(deployment)
    services.signoff_request(deployment=deployment, user=signers["tech-lead"])
    for slug in ("tech-lead", "security", "devops"):
        sign(deployment, signers[slug], slug)

    started = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        sign(deployment, signers["product"], "product")
    waited = (timezone.now() - started).total_seconds()

    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.APPROVED
    # One publish is tried (the socket timeout), the rest of the commit's rows are left.
    assert waited < 8, f"signing took {waited:.1f} s with a broker that never answers"
    rows = outbox_pending().filter(created_at__gte=started)
    assert [(row.task_name, row.attempts) for row in rows] == [
        ("signoff.notification_email_send", 1),  # signed: tried, timed out
        ("signoff.notification_email_send", 0),  # approved: left to the sweeper
        ("signoff.record_generate", 0),
    ]
    assert "Timeout" in rows[0].last_error


@pytest.mark.django_db
def test_a_mail_delivered_twice_is_sent_once_with_the_outbox_key_as_message_id(
    deployment, mailoutbox, settings
):
    settings.SITE_URL = "https://readiness.example.org"
    with transaction.atomic():
        announce("reprobe_errors", deployment_id=deployment.pk, changes=["s3"], event="probe-run-7")
    message = OutboxMessage.objects.get()
    assert message.key == f"notify:reprobe_errors:{deployment.pk}:probe-run-7:email"

    # Two deliveries of one row (a second publish, a redelivery), under different task ids.
    assert notification_email_send.apply(kwargs=message.kwargs, task_id="first").get() == 1
    assert notification_email_send.apply(kwargs=message.kwargs, task_id="again").get() == 0

    [mail] = mailoutbox
    assert mail.extra_headers["Message-ID"] == (
        f"<notification.notify.reprobe_errors.{deployment.pk}.probe-run-7.email"
        "@readiness.example.org>"
    )
    message.refresh_from_db()
    assert message.done_at is not None
