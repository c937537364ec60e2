"""Run control: the regions of a run, cancelling it (queued tasks revoked, checks in flight
stopped before their next AWS request), and the time left on its progress bar."""

import time
from datetime import timedelta

import boto3
import pytest
from celery.contrib.testing.worker import start_worker
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.checklists.models import ItemChange
from readiness.outbox.services import task_id_of
from readiness.probe_runs import selectors, services
from readiness.probe_runs.models import ProbeResultState, ProbeRun, ProbeRunState
from readiness.probes.base import ProbeContext, execute, registry
from readiness.project.celery import app as celery_app
from tests.factories import make_deployment
from tests.readiness.probe_runs.test_probe_runs import admin_user, taken_off_the_broker, target

TWO_REGIONS = ("us-east-1", "eu-west-1")


# --- Regions per run ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_reads_only_the_regions_picked(deployment, member):
    target(deployment, regions=TWO_REGIONS)
    run, _ = services.probe_run_start(deployment=deployment, user=member, regions=["eu-west-1"])
    assert run.regions == ["eu-west-1"]
    assert set(run.results.values_list("region", flat=True)) == {"global", "eu-west-1"}
    assert run.total == len(registry())


@pytest.mark.django_db
def test_without_a_pick_a_run_reads_every_region_of_the_target(deployment, member):
    target(deployment, regions=TWO_REGIONS)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    assert run.regions == list(TWO_REGIONS)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("regions", "message"),
    [
        (["ap-south-1"], "Not a region of this deployment's AWS target: ap-south-1"),
        (["us-east-1", "../etc"], "Not a region of this deployment's AWS target: ../etc"),
        ([], "Pick at least one region"),
    ],
)
def test_a_run_refuses_regions_outside_its_target(deployment, member, regions, message):
    target(deployment, regions=TWO_REGIONS)
    with pytest.raises(ValidationError, match=message):
        services.probe_run_start(deployment=deployment, user=member, regions=regions)
    assert not ProbeRun.objects.filter(deployment=deployment).exists()


@pytest.mark.django_db
def test_picked_regions_keep_the_targets_order_and_come_once(deployment, member):
    target(deployment, regions=TWO_REGIONS)
    run, _ = services.probe_run_start(
        deployment=deployment, user=member, regions=["eu-west-1", "us-east-1", "eu-west-1"]
    )
    assert run.regions == list(TWO_REGIONS)


# --- Cancel ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cancelling_keeps_finished_checks_and_runs_no_other(aws, deployment, member):
    admin_user(aws)
    target(deployment)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    first = run.results.get(probe_key="iam.least_privilege")
    services.probe_results_execute(result_ids=[first.pk])

    assert services.probe_run_cancel(run=run, user=member) is True
    run.refresh_from_db()
    assert run.state == ProbeRunState.CANCELLED and run.cancelled_by == member
    assert run.finished_at is not None and run.completed == 1
    first.refresh_from_db()
    assert first.state == ProbeResultState.DONE and first.status == "fail"
    others = run.results.exclude(pk=first.pk)
    assert set(others.values_list("state", flat=True)) == {ProbeResultState.CANCELLED}

    # A task delivered after the cancel (a revoke the worker missed) claims nothing.
    for result_id in others.values_list("pk", flat=True)[:5]:
        services.probe_results_execute(result_ids=[result_id])
    assert set(others.values_list("state", flat=True)) == {ProbeResultState.CANCELLED}
    assert run.results.filter(attempts__gt=0).count() == 1

    # A partial run proves nothing about the checklist: no item changed, and the run is not
    # what the checklist, signatures and records read.
    assert not ItemChange.objects.filter(probe_run=run).exists()
    assert selectors.latest_finished_run(deployment) is None
    assert selectors.last_run(deployment) == run
    event = AuditEvent.objects.get(action="probe_run.cancelled")
    assert event.actor == member
    assert event.after == {"checks": run.total, "finished": 1, "not_run": run.total - 1}


@pytest.mark.django_db
def test_cancelling_twice_changes_nothing_the_second_time(deployment, member):
    target(deployment)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    assert services.probe_run_cancel(run=run, user=member) is True
    finished_at = ProbeRun.objects.get(pk=run.pk).finished_at
    assert services.probe_run_cancel(run=run, user=member) is False
    assert ProbeRun.objects.get(pk=run.pk).finished_at == finished_at
    assert AuditEvent.objects.filter(action="probe_run.cancelled").count() == 1


@pytest.mark.django_db
def test_a_run_that_ended_cannot_be_cancelled(deployment, member):
    target(deployment)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    ProbeRun.objects.filter(pk=run.pk).update(state=ProbeRunState.SUCCEEDED)
    with pytest.raises(services.ProbeRunClosed, match="already ended \\(finished\\)"):
        services.probe_run_cancel(run=run, user=member)
    assert ProbeRun.objects.get(pk=run.pk).state == ProbeRunState.SUCCEEDED
    assert not AuditEvent.objects.filter(action="probe_run.cancelled").exists()


@pytest.mark.django_db
def test_only_team_members_can_cancel_a_run(deployment, member, outsider):
    target(deployment)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    with pytest.raises(PermissionDenied):
        services.probe_run_cancel(run=run, user=outsider)
    assert ProbeRun.objects.get(pk=run.pk).is_active


@pytest.mark.django_db
def test_a_new_run_can_start_once_one_is_cancelled(deployment, member):
    target(deployment)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    services.probe_run_cancel(run=run, user=member)
    again, created = services.probe_run_start(deployment=deployment, user=member)
    assert created and again.pk != run.pk


@pytest.mark.django_db
def test_cancelling_revokes_the_tasks_the_run_sent_by_their_ids(
    aws, deployment, member, django_capture_on_commit_callbacks, monkeypatch
):
    target(deployment, regions=TWO_REGIONS)
    taken_off_the_broker("readiness.probe_results_execute")  # leftovers of earlier tests
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = services.probe_run_start(deployment=deployment, user=member)
    sent_ids = set()
    with celery_app.connection_for_read() as connection:
        queue = connection.SimpleQueue(celery_app.conf.task_default_queue)
        try:
            while True:
                try:
                    message = queue.get(block=False)
                except queue.Empty:
                    break
                if message.headers["task"] == "readiness.probe_results_execute":
                    sent_ids.add(message.headers["id"])
                message.ack()
        finally:
            queue.close()
    assert len(sent_ids) == len(registry())

    # The broadcast itself is the broker's business: what matters is which ids it names.
    revoked = []
    monkeypatch.setattr(celery_app.control, "revoke", lambda ids, **_: revoked.extend(ids))
    with django_capture_on_commit_callbacks(execute=True):
        services.probe_run_cancel(run=run, user=member)
    assert set(revoked) == sent_ids

    # The sweeper's re-send of an expired claim carries the same id as the first send.
    probe_key = registry()["iam.least_privilege"].key
    assert task_id_of(services._intent_key(run.pk, "123456789012", probe_key)) in sent_ids


@pytest.mark.django_db
def test_a_revoke_the_broker_refuses_still_cancels_the_run(
    deployment, member, django_capture_on_commit_callbacks, monkeypatch
):
    target(deployment)
    run, _ = services.probe_run_start(deployment=deployment, user=member)

    def refuse(ids, **_):
        raise ConnectionError("broker away")

    monkeypatch.setattr(celery_app.control, "revoke", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.probe_run_cancel(run=run, user=member)
    assert ProbeRun.objects.get(pk=run.pk).state == ProbeRunState.CANCELLED


@pytest.mark.django_db
def test_a_check_in_flight_stops_before_its_next_aws_request(
    aws, deployment, member, django_capture_on_commit_callbacks
):
    admin_user(aws)
    target(deployment)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    check = run.results.get(probe_key="iam.least_privilege")

    # The run's session, with a hook that cancels the run as the check makes its first IAM
    # call, and counts the IAM answers the check still gets after that.
    session = boto3.Session(region_name="us-east-1")
    seen = {"cancelled": False, "answers_after": 0, "requests": 0}

    def cancel_now(**_):
        seen["requests"] += 1
        if not seen["cancelled"]:
            seen["cancelled"] = True
            with django_capture_on_commit_callbacks(execute=True):
                services.probe_run_cancel(run=run, user=member)

    def answered(**_):
        if seen["cancelled"]:
            seen["answers_after"] += 1

    session.events.register("before-call.iam", cancel_now)
    session.events.register("after-call.iam", answered)
    services._sessions[("", "", deployment.pk)] = session
    try:
        services.probe_results_execute(result_ids=[check.pk])
    finally:
        services._sessions.clear()
    assert seen["cancelled"] and seen["answers_after"] == 0
    check.refresh_from_db()
    assert check.state == ProbeResultState.CANCELLED and check.status == ""


def test_a_cancelled_context_sends_no_request_and_says_why(aws):
    probe = registry()["iam.least_privilege"]
    context = ProbeContext(session=boto3.Session(), region="global", cancelled=lambda: True)
    result = execute(probe, context).result
    assert result.status == "error"
    assert result.summary.startswith("Stopped before iam:")
    assert result.summary.endswith("the run was cancelled")


@pytest.mark.django_db
def test_workers_read_a_cancellation_at_most_once_a_second(deployment, member):
    target(deployment)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    services._cancel_checks.clear()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        for _ in range(50):
            assert services.run_cancelled(run) is False
    assert len(queries) == 1
    # Another process cancels: this one sees it once its answer is a second old.
    ProbeRun.objects.filter(pk=run.pk).update(state=ProbeRunState.CANCELLED)
    assert services.run_cancelled(run) is False
    key = (run.pk, run.created_at)
    services._cancel_checks[key] = (time.monotonic() - 1.5, False)
    assert services.run_cancelled(run) is True


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_run_cancelled_on_a_real_worker_ends_cancelled_keeping_what_finished(aws, member, team):
    deployment = make_deployment(user=member, team=team)
    target(deployment, regions=TWO_REGIONS)
    services._sessions.clear()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        run, _ = services.probe_run_start(deployment=deployment, user=member)
        started = time.monotonic()
        while time.monotonic() - started < 60:
            run.refresh_from_db()
            if run.completed >= 3 or not run.is_active:
                break
            time.sleep(0.02)
        assert run.is_active, "the run finished before the test could cancel it"
        services.probe_run_cancel(run=run, user=member)
        finished = set(run.results.filter(state="done").values_list("pk", flat=True))
        time.sleep(2)  # the worker goes on with its queue: every task finds the run cancelled
    run.refresh_from_db()
    assert run.state == ProbeRunState.CANCELLED
    assert set(run.results.filter(state="done").values_list("pk", flat=True)) == finished
    assert 3 <= len(finished) < run.total
    assert not run.results.exclude(state__in=["done", "cancelled"]).exists()
    assert run.completed == len(finished)


# --- Time left ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_time_left_follows_the_pace_so_far(deployment, member):
    target(deployment)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    now = timezone.now()
    assert selectors.eta_seconds(run, now=now) is None  # nothing finished yet
    run.state, run.started_at, run.total, run.completed = (
        "running",
        now - timedelta(seconds=10),
        15,
        5,
    )
    assert selectors.eta_seconds(run, now=now) == pytest.approx(20.0)
    run.completed = 15
    assert selectors.eta_seconds(run, now=now) == 0
    run.state = ProbeRunState.SUCCEEDED
    assert selectors.eta_seconds(run, now=now) is None
