"""A check is claimed for a lease (PROBE_CHECK_TIMEOUT): another delivery takes it over only
once the lease ran out, and the sweeper sends such checks again whatever the broker did."""

from datetime import timedelta

import pytest
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeResult, ProbeResultState, ProbeRun, ProbeRunState
from readiness.probes.base import registry
from tests.readiness.probe_runs.test_probe_runs import taken_off_the_broker, target

pytestmark = pytest.mark.django_db


def claimed_by_a_worker(result_ids, *, seconds_ago: float) -> None:
    """What a worker that claimed these checks `seconds_ago` and then died leaves behind."""
    ProbeResult.objects.filter(pk__in=result_ids).update(
        state=ProbeResultState.RUNNING,
        attempts=1,
        started_at=timezone.now() - timedelta(seconds=seconds_ago),
    )


def regional_checks(run) -> list[int]:
    """The ids of one regional probe's checks in this run, as one task carries them."""
    regional = next(
        p.key for p in sorted(registry().values(), key=lambda p: p.key) if p.scope != "global"
    )
    return list(run.results.filter(probe_key=regional).order_by("pk").values_list("pk", flat=True))


def test_a_check_whose_claim_ran_out_is_taken_over_and_counted_once(
    aws, deployment, member, settings
):
    target(deployment, regions=("us-east-1", "eu-west-1"))
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    checks = regional_checks(run)
    claimed_by_a_worker(checks, seconds_ago=settings.PROBE_CHECK_TIMEOUT + 1)

    assert probe_runs.probe_results_execute(result_ids=checks) is None
    results = ProbeResult.objects.filter(pk__in=checks)
    assert [(r.state, r.attempts, bool(r.status)) for r in results] == [("done", 2, True)] * 2
    run.refresh_from_db()
    assert run.completed == 2
    # The message delivered once more finds nothing left to do.
    assert probe_runs.probe_results_execute(result_ids=checks) is None
    run.refresh_from_db()
    assert run.completed == 2


def test_a_check_claimed_moments_ago_is_left_to_its_holder(aws, deployment, member, settings):
    target(deployment, regions=("us-east-1", "eu-west-1"))
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    checks = regional_checks(run)
    claimed_by_a_worker(checks[:1], seconds_ago=1)

    # The free check runs here; the held one is looked at again when its lease runs out.
    wait = probe_runs.probe_results_execute(result_ids=checks)
    assert settings.PROBE_CHECK_TIMEOUT - 5 < wait <= settings.PROBE_CHECK_TIMEOUT
    held, free = ProbeResult.objects.filter(pk__in=checks).order_by("pk")
    assert (held.state, held.attempts) == ("running", 1)
    assert (free.state, free.attempts) == ("done", 1)
    run.refresh_from_db()
    assert run.completed == 1


def test_the_sweeper_sends_again_the_checks_whose_claim_ran_out(aws, deployment, member, settings):
    target(deployment, regions=("us-east-1", "eu-west-1"))
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    expired = regional_checks(run)
    claimed_by_a_worker(expired, seconds_ago=settings.PROBE_CHECK_TIMEOUT + 1)
    fresh = run.results.filter(region="global").values_list("pk", flat=True).first()
    claimed_by_a_worker([fresh], seconds_ago=1)
    taken_off_the_broker("readiness.probe_results_execute")  # leftovers of earlier tests

    assert probe_runs.probe_runs_sweep() == 0
    sent = taken_off_the_broker("readiness.probe_results_execute")
    assert sent == [([expired], {})]
    run.refresh_from_db()
    assert run.is_active


def test_a_timed_out_run_names_its_unfinished_checks_in_its_error_and_the_audit(
    aws, deployment, member, settings
):
    target(deployment)
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    first, second, *never = run.results.order_by("probe_key", "region")
    probe_runs.probe_results_execute(result_ids=[first.pk])
    first.refresh_from_db()
    claimed_by_a_worker([second.pk], seconds_ago=settings.PROBE_CHECK_TIMEOUT + 1)
    ProbeRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))

    assert probe_runs.probe_runs_sweep() == 1
    run.refresh_from_db()
    assert run.state == ProbeRunState.FAILED and run.completed == run.total
    names = [f"{r.probe_key} [{r.account_id} {r.region}]" for r in [second, *never]]
    assert run.error == (
        f"{len(names)} probe(s) did not finish within {settings.PROBE_RUN_TIMEOUT} s; the run "
        f"was closed by the sweeper. Unfinished: {', '.join(names[:20])} "
        f"and {len(names) - 20} more"
    )
    event = AuditEvent.objects.get(action="probe_run.timed_out", object_id=str(run.pk))
    assert event.after["unfinished"] == names
    assert event.after["never_started"] == len(never)
    second.refresh_from_db()
    assert "stopped before it finished" in second.summary
    # The check that finished keeps its result.
    assert ProbeResult.objects.get(pk=first.pk).summary == first.summary
