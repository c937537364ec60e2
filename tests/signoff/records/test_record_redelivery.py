"""A record its task's retries gave up on is asked for again until it is made: the request
for it reports the record made (`outbox_key`), so the sweeper sends a request still open
half an hour after it was sent (readiness.outbox.services.outbox_redeliver)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from readiness.checklists.models import DeploymentState
from readiness.outbox.models import OutboxMessage
from readiness.outbox.services import outbox_redeliver, outbox_sweep
from readiness.project.celery import app
from signoff.records import services as records
from signoff.records.models import SignedRecord
from tests.signoff_helpers import approve_all, signers_for


@pytest.fixture
def eager_tasks():
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield
    app.conf.task_always_eager = app.conf.task_eager_propagates = False


@pytest.mark.django_db
def test_a_record_the_task_gave_up_on_is_made_when_asked_again(
    deployment, team, media, eager_tasks, monkeypatch, django_capture_on_commit_callbacks
):
    def authority_down(**kwargs):
        raise OSError("the time-stamping authority is away")

    monkeypatch.setattr(records, "record_generate", authority_down)
    with django_capture_on_commit_callbacks(execute=True):
        approve_all(deployment, signers_for(team))
    assert deployment.state == DeploymentState.APPROVED
    request = OutboxMessage.objects.get(task_name="signoff.record_generate")
    assert request.kwargs == {"outbox_key": request.key}
    assert request.sent_at is not None and request.done_at is None
    assert not SignedRecord.objects.exists()

    monkeypatch.undo()  # the authority is back
    long_ago = timezone.now() - timedelta(minutes=31)
    OutboxMessage.objects.filter(pk=request.pk).update(sent_at=long_ago, created_at=long_ago)
    assert outbox_redeliver() == 1
    assert outbox_sweep() == 1
    record = SignedRecord.objects.get(deployment=deployment)
    assert record.deployment_state == DeploymentState.APPROVED
    request.refresh_from_db()
    assert request.done_at is not None
    assert outbox_redeliver() == 0
