"""Work its task's own retries gave up on is sent again until it is done: a row whose
consumer reports work done (`outbox_key`, `outbox_once`) and has not, long after it was
sent, becomes pending for the sweeper; done work, work under way and rows with no way to
report are left alone."""

from datetime import timedelta

import pytest
from celery import shared_task
from django.db import transaction
from django.utils import timezone

from readiness.outbox import services as outbox
from readiness.outbox.models import OutboxMessage
from readiness.outbox.services import outbox_enqueue, outbox_once, outbox_redeliver, outbox_sweep
from readiness.outbox.tasks import outbox_sweep as sweep_task
from readiness.project.celery import app as celery_app

work_done: list = []
failing: set = set()


@shared_task(name="tests.outbox_reported_work")
def reported_work(value, outbox_key=None) -> None:
    def work():
        if value in failing:
            raise OSError("the server is away")
        work_done.append(value)

    outbox_once(outbox_key, work)


@pytest.fixture
def tasks_inline():
    work_done.clear()
    failing.clear()
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = True, False
    yield work_done
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


def enqueue(value, *, reports: bool = True) -> OutboxMessage:
    key = f"reported:{value}"
    with transaction.atomic():
        outbox_enqueue(
            "tests.outbox_reported_work",
            key=key,
            args=[value],
            kwargs={"outbox_key": key} if reports else {},
        )
    return OutboxMessage.objects.get(key=key)


def sent_ago(message, minutes: float) -> None:
    when = timezone.now() - timedelta(minutes=minutes)
    OutboxMessage.objects.filter(pk=message.pk).update(sent_at=when, created_at=when)


def send_now(message) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(minutes=1)
    )
    assert outbox_sweep() == 1


@pytest.mark.django_db
def test_work_given_up_on_is_sent_again_and_done_once(tasks_inline):
    message = enqueue("record")
    failing.add("record")
    send_now(message)  # delivered; its work fails and the task's retries end
    message.refresh_from_db()
    assert message.sent_at is not None and message.done_at is None
    assert work_done == []

    sent_ago(message, 10)
    assert outbox_redeliver() == 0, "its own retries may still be running"
    sent_ago(message, 31)
    failing.clear()  # the server is back
    assert outbox_redeliver() == 1
    message.refresh_from_db()
    assert message.sent_at is None and "sent again" in message.last_error
    send_now(message)
    message.refresh_from_db()
    assert work_done == ["record"] and message.done_at is not None
    # Done: never again, however old.
    sent_ago(message, 600)
    assert outbox_redeliver() == 0


@pytest.mark.django_db
def test_rows_that_cannot_report_or_are_at_work_or_tried_enough_are_left(tasks_inline):
    silent = enqueue("silent", reports=False)
    busy = enqueue("busy")
    tired = enqueue("tired")
    for message in (silent, busy, tired):
        sent_ago(message, 60)
    OutboxMessage.objects.filter(pk=busy.pk).update(claimed_at=timezone.now())
    OutboxMessage.objects.filter(pk=tired.pk).update(attempts=outbox.REDELIVER_MAX_ATTEMPTS)
    assert outbox_redeliver() == 0
    # A delivery that died while at work leaves a claim that expires: then it is sent again.
    OutboxMessage.objects.filter(pk=busy.pk).update(
        claimed_at=timezone.now() - outbox.CLAIM_LEASE - timedelta(seconds=1)
    )
    assert outbox_redeliver() == 1
    assert OutboxMessage.objects.get(pk=busy.pk).sent_at is None


@pytest.mark.django_db
def test_the_beat_sweep_sends_again_what_was_not_done(tasks_inline):
    message = enqueue("mail")
    sent_ago(message, 45)
    assert sweep_task() == 1
    message.refresh_from_db()
    assert work_done == ["mail"] and message.done_at is not None
