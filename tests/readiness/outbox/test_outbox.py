"""The outbox: rows stored with the change, sent after commit or by the sweeper, done once."""

import subprocess
import sys
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from celery import shared_task
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from readiness.checklists import targets
from readiness.outbox import services as outbox
from readiness.outbox.models import OutboxMessage
from readiness.outbox.services import OutboxBusy, outbox_enqueue, outbox_once, outbox_sweep
from readiness.probe_runs import services as probe_runs
from readiness.project.celery import app as celery_app

# What the test task below was called with, in order (it runs inline: eager mode).
calls: list = []


@shared_task(name="tests.outbox_record_call")
def record_call(value, pause: float = 0) -> None:
    time.sleep(pause)
    calls.append(value)


@pytest.fixture
def tasks_inline():
    calls.clear()
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield calls
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def broker_down(monkeypatch):
    """Nothing listens on port 1: every publish meets a broker that is down."""
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)


def enqueue(value, **kwargs) -> OutboxMessage:
    outbox_enqueue("tests.outbox_record_call", key=f"test:{value}", args=[value], kwargs=kwargs)
    return OutboxMessage.objects.get(key=f"test:{value}")


def age(seconds: float = 60) -> None:
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(seconds=seconds))


# Stored with the change.


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_enqueuing_outside_a_transaction_is_a_bug_and_raises():
    with pytest.raises(RuntimeError, match="outside a transaction"):
        enqueue("alone")
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_a_row_rolls_back_with_its_transaction_and_nothing_is_sent(
    tasks_inline, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        enqueue("rolled back")
        raise RuntimeError("the change failed")
    assert callbacks == []
    assert not OutboxMessage.objects.exists()
    assert calls == []


@pytest.mark.django_db
def test_a_key_is_stored_and_sent_once(tasks_inline, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        first = enqueue("same")
        second = enqueue("same")
    assert first.pk == second.pk
    assert calls == ["same"]
    message = OutboxMessage.objects.get()
    assert message.sent_at is not None and message.attempts == 1 and message.last_error == ""


# After commit, and when the broker is away.


@pytest.mark.django_db
def test_a_refused_publish_keeps_the_row_and_leaves_the_rest_of_the_commit_to_the_sweeper(
    broker_down, django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        enqueue("a")
        enqueue("b")
        enqueue("c")
    rows = list(OutboxMessage.objects.order_by("id"))
    assert [row.sent_at for row in rows] == [None, None, None]
    # One failing publish per commit: the request does not wait for each row in turn.
    assert [row.attempts for row in rows] == [1, 0, 0]
    assert "OperationalError" in rows[0].last_error
    assert rows[0].sending_since is None  # the lease is released: the next sweep may try
    assert "it stays pending for the sweeper" in caplog.text


@pytest.mark.django_db
def test_the_sweeper_sends_pending_rows_in_order_once(tasks_inline):
    with transaction.atomic():
        for value in ("first", "second", "third"):
            enqueue(value)
    assert outbox_sweep() == 0, "rows younger than a few seconds are the after-commit send's"
    age()
    assert outbox_sweep() == 3
    assert outbox_sweep() == 0
    assert calls == ["first", "second", "third"]
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


@pytest.mark.django_db
def test_the_sweeper_stops_at_the_first_refusal_and_sends_later(broker_down, monkeypatch):
    with transaction.atomic():
        enqueue("a")
        enqueue("b")
    age()
    assert outbox_sweep() == 0
    assert list(OutboxMessage.objects.order_by("id").values_list("attempts", flat=True)) == [1, 0]
    monkeypatch.undo()  # the broker is back
    celery_app.conf.task_always_eager = True
    calls.clear()
    try:
        assert outbox_sweep() == 2
    finally:
        celery_app.conf.task_always_eager = False
    assert calls == ["a", "b"]


@pytest.mark.django_db
def test_a_row_a_sender_is_publishing_is_not_sent_by_another(tasks_inline):
    with transaction.atomic():
        message = enqueue("leased")
    age()
    OutboxMessage.objects.filter(pk=message.pk).update(sending_since=timezone.now())
    assert outbox_sweep() == 0
    # A sender that died mid-publish: its lease runs out and the row is sent again.
    OutboxMessage.objects.filter(pk=message.pk).update(
        sending_since=timezone.now() - outbox.SEND_LEASE - timedelta(seconds=1)
    )
    assert outbox_sweep() == 1
    assert calls == ["leased"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_sweepers_at_once_never_send_one_row_twice(tasks_inline):
    # Rows whose after-commit send did not happen (a broker that was away).
    OutboxMessage.objects.bulk_create(
        OutboxMessage(
            task_name="tests.outbox_record_call",
            key=f"test:{value}",
            args=[value],
            kwargs={"pause": 0.01},
            created_at=timezone.now() - timedelta(minutes=1),
        )
        for value in range(30)
    )
    sent = []
    start = threading.Barrier(2)

    def sweep():
        try:
            start.wait(timeout=10)
            sent.append(outbox_sweep())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(calls) == list(range(30))
    assert sum(sent) == 30
    if connection.vendor == "postgresql":
        # FOR UPDATE SKIP LOCKED: each took rows the other was not taking.
        assert all(count > 0 for count in sent), sent


@pytest.mark.django_db
def test_sent_rows_are_removed_after_a_while_pending_ones_never(tasks_inline):
    with transaction.atomic():
        enqueue("old")
        enqueue("recent")
        enqueue("pending")
    long_ago = timezone.now() - outbox.KEEP_SENT - timedelta(days=1)
    OutboxMessage.objects.filter(key="test:old").update(sent_at=long_ago)
    OutboxMessage.objects.filter(key="test:recent").update(sent_at=timezone.now())
    OutboxMessage.objects.filter(key="test:pending").update(created_at=long_ago)
    assert outbox.outbox_prune() == 1
    assert sorted(OutboxMessage.objects.values_list("key", flat=True)) == [
        "test:pending",
        "test:recent",
    ]


# Done once on the consumer's side.


@pytest.mark.django_db
def test_work_is_done_once_however_often_it_is_delivered():
    with transaction.atomic():
        message = enqueue("mail")
    done = []
    assert outbox_once(message.key, lambda: done.append(1) or "sent") == "sent"
    assert outbox_once(message.key, lambda: done.append(2) or "sent") is None
    assert done == [1]
    message.refresh_from_db()
    assert message.done_at is not None


@pytest.mark.django_db
def test_failed_work_can_be_tried_again():
    with transaction.atomic():
        message = enqueue("mail")

    def fail():
        raise OSError("mail server away")

    with pytest.raises(OSError):
        outbox_once(message.key, fail)
    assert outbox_once(message.key, lambda: "sent") == "sent"


@pytest.mark.django_db
def test_a_delivery_waits_while_another_is_at_work_and_takes_over_a_dead_one():
    with transaction.atomic():
        message = enqueue("mail")
    OutboxMessage.objects.filter(pk=message.pk).update(claimed_at=timezone.now())
    with pytest.raises(OutboxBusy):
        outbox_once(message.key, lambda: "sent")
    OutboxMessage.objects.filter(pk=message.pk).update(
        claimed_at=timezone.now() - outbox.CLAIM_LEASE - timedelta(seconds=1)
    )
    assert outbox_once(message.key, lambda: "sent") == "sent"


# Probe dispatch goes through it too; the backlog is visible.


@pytest.mark.django_db
def test_a_probe_run_stores_one_row_per_account_and_probe_in_its_transaction(deployment, member):
    targets.deployment_set_aws_target(
        deployment=deployment,
        user=deployment.owner,
        accounts=[
            targets.AccountSpec("123456789012", ["us-east-1", "eu-west-1"]),
            targets.AccountSpec(
                "210987654321", ["eu-west-1"], role_arn="arn:aws:iam::210987654321:role/r"
            ),
        ],
    )
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    rows = OutboxMessage.objects.filter(task_name="readiness.probe_results_execute")
    batches = set(run.results.values_list("account_id", "probe_key"))
    assert {account for account, _ in batches} == {"123456789012", "210987654321"}
    assert sorted(row.key for row in rows) == sorted(
        f"probe:{run.pk}:{account}:{key}" for account, key in batches
    )
    assert sorted(result for row in rows for result in row.args[0]) == sorted(
        run.results.values_list("pk", flat=True)
    )


@pytest.mark.django_db
def test_the_outbox_command_shows_the_backlog_and_sweeps_it(tasks_inline):
    out = StringIO()
    call_command("outbox", stdout=out)
    assert out.getvalue() == "outbox: nothing pending\n"
    with transaction.atomic():
        enqueue("waiting")
    out = StringIO()
    call_command("outbox", stdout=out)
    assert out.getvalue().startswith("outbox: 1 pending, oldest 0 s, 0 refused")
    assert "tests.outbox_record_call test:waiting" in out.getvalue()
    out = StringIO()
    call_command("outbox", "--sweep", stdout=out)
    assert out.getvalue() == "sent 1\noutbox: nothing pending\n"
    assert calls == ["waiting"]


def test_beat_runs_the_sweeper_and_the_worker_knows_it():
    """The schedule of every beat (the compose service, and `make run`'s worker --beat)."""
    code = (
        "from readiness.project.celery import app; app.loader.import_default_modules(); "
        "print('readiness.outbox_sweep' in app.tasks, "
        "app.conf.beat_schedule['outbox-sweep']['task'])"
    )
    listed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert listed.stdout.split() == ["True", "readiness.outbox_sweep"]
