import json
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from readiness.checklists import services
from readiness.checklists.models import ChecklistItem, DecisionSource, ItemChange, ItemStatus
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeResult, ProbeRun, ProbeRunState
from readiness.probes.base import registry
from readiness.project.celery import app as celery_app
from tests.factories import make_deployment, set_aws_target

ACCOUNT = "123456789012"  # moto's default account
ADMIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def target(deployment, regions=("us-east-1",), **extra):
    return set_aws_target(deployment, account_id=ACCOUNT, regions=regions, **extra)


def item(deployment, title) -> ChecklistItem:
    return ChecklistItem.objects.get(section__deployment=deployment, title=title)


def execute_all(run):
    """Do what the workers do, in this process: every (probe, region) of the run."""
    for result_id in run.results.values_list("pk", flat=True):
        probe_runs.probe_results_execute(result_ids=[result_id])
    run.refresh_from_db()
    return run


def admin_user(aws):
    iam = aws.client("iam")
    iam.create_user(UserName="legacy-admin")
    iam.put_user_policy(UserName="legacy-admin", PolicyName="all", PolicyDocument=json.dumps(ADMIN))


@pytest.mark.django_db
def test_a_run_needs_an_aws_target(deployment, member):
    with pytest.raises(ValidationError, match="AWS accounts and regions"):
        probe_runs.probe_run_start(deployment=deployment, user=member)


@pytest.mark.django_db
def test_only_team_members_can_start_a_run(deployment, outsider):
    target(deployment)
    with pytest.raises(PermissionDenied):
        probe_runs.probe_run_start(deployment=deployment, user=outsider)


@pytest.mark.django_db
def test_a_run_plans_global_probes_once_and_regional_ones_per_region(deployment, member):
    target(deployment, regions=("us-east-1", "eu-west-1"))
    run, created = probe_runs.probe_run_start(deployment=deployment, user=member)
    assert created and run.state == ProbeRunState.QUEUED
    probes = registry()
    expected = sum(1 if p.scope == "global" else 2 for p in probes.values())
    assert run.total == expected == run.results.count()
    for result in run.results.select_related("item__section"):
        assert (result.item.section.title, result.item.title) == (
            result.section_title,
            result.item_title,
        )
        assert result.region == "global" or result.region in ("us-east-1", "eu-west-1")


@pytest.mark.django_db
def test_a_second_click_joins_the_active_run(deployment, member):
    target(deployment)
    first, created = probe_runs.probe_run_start(deployment=deployment, user=member)
    second, created_again = probe_runs.probe_run_start(deployment=deployment, user=member)
    assert created and not created_again
    assert first.pk == second.pk
    assert ProbeRun.objects.filter(deployment=deployment).count() == 1


@pytest.mark.django_db
def test_probes_only_run_for_items_the_checklist_has(member, team):
    from readiness.checklists.services import template_import

    template = template_import(source="# Mini\n## Security\n- [ ] **MFA:** on\n").template
    deployment = make_deployment(user=member, team=team, template=template)
    target(deployment)
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    assert set(run.results.values_list("item_title", flat=True)) == {"MFA"}


@pytest.mark.django_db
def test_a_failed_probe_fails_its_item_with_the_reason(aws, deployment, member):
    admin_user(aws)
    target(deployment)
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    run = execute_all(run)
    assert run.state == ProbeRunState.SUCCEEDED and run.completed == run.total
    iam_item = item(deployment, "IAM Policies")
    assert iam_item.status == ItemStatus.FAILED
    assert iam_item.source == DecisionSource.PROBE
    assert "legacy-admin" in json.dumps(
        list(run.results.filter(probe_key="iam.least_privilege").values_list("findings", flat=True))
    )
    assert iam_item.status_reason.startswith("Probe failed: 1 of 1 principals")
    change = ItemChange.objects.get(item=iam_item)
    assert change.changed_by is None and change.source == DecisionSource.PROBE
    assert change.probe_run == run


@pytest.mark.django_db
def test_a_passing_probe_marks_its_item_done_verified_by_probe(aws, deployment, member):
    aws.client("iam").create_user(UserName="reader")
    target(deployment)
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    execute_all(run)
    iam_item = item(deployment, "IAM Policies")
    assert iam_item.status == ItemStatus.DONE
    assert iam_item.status_reason.startswith("Verified by probe:")


@pytest.mark.django_db
def test_a_person_decision_is_never_overwritten_by_a_run(aws, deployment, member, client):
    admin_user(aws)
    target(deployment)
    decided = item(deployment, "IAM Policies")
    services.item_update(
        item=decided,
        user=member,
        expected_version=decided.version,
        status=ItemStatus.DONE,
        note="reviewed by hand",
        evidence_url="",
        na_reason="",
    )
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    execute_all(run)
    decided.refresh_from_db()
    assert decided.status == ItemStatus.DONE and decided.source == DecisionSource.PERSON
    client.force_login(member)
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    row = page.split(f'id="row-{decided.pk}-summary"', 1)[1].split("</summary>", 1)[0]
    assert "Probe disagrees" in row
    card = client.get(f"/deployments/{deployment.pk}/items/{decided.pk}/").content.decode()
    assert "Probe disagrees." in card
    assert "The latest probe run failed this item; a person marked it done" in card


@pytest.mark.django_db
def test_overriding_a_probe_verdict_needs_a_reason_and_records_it(aws, deployment, member):
    admin_user(aws)
    target(deployment)
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    execute_all(run)
    failed = item(deployment, "IAM Policies")
    edit = {
        "item": failed,
        "user": member,
        "expected_version": failed.version,
        "status": ItemStatus.DONE,
        "note": "",
        "evidence_url": "",
        "na_reason": "",
    }
    with pytest.raises(ValidationError, match="override the probe"):
        services.item_update(**edit)
    services.item_update(**edit, reason="break-glass user, access reviewed monthly")
    failed.refresh_from_db()
    assert failed.source == DecisionSource.PERSON
    assert failed.status_reason == "break-glass user, access reviewed monthly"
    change = ItemChange.objects.filter(item=failed).order_by("-version").first()
    assert change.changed_by == member
    assert change.reason == "break-glass user, access reviewed monthly"


@pytest.mark.django_db
def test_executing_a_result_twice_stores_it_once(aws, deployment, member):
    target(deployment)
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    result_id = run.results.values_list("pk", flat=True).first()
    probe_runs.probe_results_execute(result_ids=[result_id])
    probe_runs.probe_results_execute(result_ids=[result_id])
    run.refresh_from_db()
    assert run.completed == 1
    assert ProbeResult.objects.get(pk=result_id).attempts == 1


@pytest.mark.django_db
def test_an_unreachable_endpoint_gives_errors_not_passes(aws, deployment, member, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setattr("django.conf.settings.PROBE_CALL_TIMEOUT", 1.0)
    monkeypatch.setattr("django.conf.settings.PROBE_MAX_ATTEMPTS", 1)
    probe_runs._sessions.clear()
    target(deployment)
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    run = execute_all(run)
    assert run.state == ProbeRunState.SUCCEEDED
    assert set(run.results.values_list("status", flat=True)) == {"error"}
    assert "connect" in run.results.first().summary.lower()
    assert item(deployment, "IAM Policies").status == ItemStatus.OPEN


@pytest.mark.django_db
def test_the_sweeper_closes_a_run_whose_workers_died(aws, deployment, member, settings):
    target(deployment)
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    first = run.results.order_by("pk").first()
    probe_runs.probe_results_execute(result_ids=[first.pk])  # one finished, the rest never ran
    ProbeRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert probe_runs.probe_runs_sweep() == 1
    run.refresh_from_db()
    assert run.state == ProbeRunState.FAILED and run.completed == run.total
    assert f"{run.total - 1} probe(s) did not finish" in run.error
    lost = run.results.exclude(pk=first.pk)
    assert set(lost.values_list("status", flat=True)) == {"error"}
    assert "no worker started this check" in lost.first().summary
    assert probe_runs.probe_runs_sweep() == 0  # a closed run is left alone


@pytest.mark.django_db
def test_a_role_is_assumed_with_a_session_name_naming_the_deployment(aws, deployment, member):
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
        ],
    }
    role = aws.client("iam").create_role(
        RoleName="readiness", AssumeRolePolicyDocument=json.dumps(trust)
    )
    target(deployment, role_arn=role["Role"]["Arn"], external_id="ext-123")
    probe_runs._sessions.clear()
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    session = probe_runs._session_for(run, ACCOUNT)
    identity = session.client("sts").get_caller_identity()
    assert identity["Arn"].endswith(f"assumed-role/readiness/readiness-deployment-{deployment.pk}")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_whole_run_completes_on_a_real_worker(aws, member, team):
    deployment = make_deployment(user=member, team=team)
    admin_user(aws)
    target(deployment, regions=("us-east-1", "eu-west-1"))
    probe_runs._sessions.clear()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        started = time.monotonic()
        run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
        while time.monotonic() - started < 60:
            run.refresh_from_db()
            if not run.is_active:
                break
            time.sleep(0.1)
    assert run.state == ProbeRunState.SUCCEEDED, (run.state, run.completed, run.total)
    assert run.completed == run.total > 0
    assert not run.results.exclude(state="done").exists()
    assert item(deployment, "IAM Policies").status == ItemStatus.FAILED


def taken_off_the_broker(task_name: str) -> list[tuple[list, dict]]:
    """The (args, kwargs) of every `task_name` message waiting on the configured broker (Redis
    in CI), taken off its queue so no later worker runs them; other messages are dropped too."""
    found = []
    with celery_app.connection_for_read() as connection:
        queue = connection.SimpleQueue(celery_app.conf.task_default_queue)
        try:
            while True:
                try:
                    message = queue.get(block=False)
                except queue.Empty:
                    break
                args, kwargs, _ = message.decode()
                if message.headers["task"] == task_name:
                    found.append((args, kwargs))
                message.ack()
        finally:
            queue.close()
    return found


@pytest.mark.django_db
def test_a_run_sends_each_probe_once_with_all_its_regions(
    aws, deployment, member, django_capture_on_commit_callbacks
):
    target(deployment, regions=("us-east-1", "eu-west-1"))
    taken_off_the_broker("readiness.probe_results_execute")  # leftovers of earlier tests
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    sent = [args[0] for args, _ in taken_off_the_broker("readiness.probe_results_execute")]
    assert len(sent) == len(registry())
    assert sorted(pk for ids in sent for pk in ids) == sorted(
        run.results.values_list("pk", flat=True)
    )
    for ids in sent:
        results = list(ProbeResult.objects.filter(pk__in=ids))
        assert len({result.probe_key for result in results}) == 1
        probe = registry()[results[0].probe_key]
        regions = {"global"} if probe.scope == "global" else {"us-east-1", "eu-west-1"}
        assert {result.region for result in results} == regions

    regional = next(ids for ids in sent if len(ids) == 2)
    probe_runs.probe_results_execute(result_ids=regional)
    probe_runs.probe_results_execute(result_ids=regional)  # the message delivered again
    done = ProbeResult.objects.filter(pk__in=regional)
    assert [(r.state, r.attempts) for r in done] == [("done", 1), ("done", 1)]
    run.refresh_from_db()
    assert run.completed == 2 and run.state == ProbeRunState.RUNNING


def test_worker_tasks_keep_their_database_connection_under_django_rules(monkeypatch):
    from types import SimpleNamespace

    from celery.signals import task_postrun, task_prerun

    # Without this Celery's Django fixup closes every connection around every task.
    assert celery_app.conf.get("CELERY_DB_REUSE_MAX") >= 100
    closed = []
    monkeypatch.setattr("django.db.close_old_connections", lambda: closed.append(True))
    queued = SimpleNamespace(request=SimpleNamespace(is_eager=False))
    task_prerun.send(sender=None, task_id="t", task=queued)
    task_postrun.send(sender=None, task_id="t", task=queued)
    assert len(closed) == 2
    # An eager task runs inside its caller's transaction: its connection is the caller's.
    eager = SimpleNamespace(request=SimpleNamespace(is_eager=True))
    task_prerun.send(sender=None, task_id="e", task=eager)
    task_postrun.send(sender=None, task_id="e", task=eager)
    assert len(closed) == 2
