"""Stale notices and change lines name a probe run by the deployment's own numbering (its
1st, 2nd… run), as its pages do: a run's id numbers every run on the server."""

import pytest
from django.utils import timezone

from readiness.checklists.models import ChecklistItem, DecisionSource, ItemChange, ItemStatus
from readiness.probe_runs.models import ProbeRun, ProbeRunState
from readiness.probe_runs.selectors import run_numbers
from signoff.signatures.selectors import ChangeHistory
from tests.factories import TeamFactory, make_deployment


def finished_run(deployment) -> ProbeRun:
    return ProbeRun.objects.create(deployment=deployment, state=ProbeRunState.SUCCEEDED)


@pytest.mark.django_db
def test_runs_are_numbered_within_their_deployment(deployment, member):
    other = make_deployment(user=member, team=TeamFactory(members=[member]), service="other")
    first_elsewhere = finished_run(other)
    first, second = finished_run(deployment), finished_run(deployment)
    second_elsewhere = finished_run(other)
    assert run_numbers({second.pk, second_elsewhere.pk, first.pk}) == {
        first.pk: 1,
        second.pk: 2,
        second_elsewhere.pk: 2,
    }
    assert run_numbers({first_elsewhere.pk}) == {first_elsewhere.pk: 1}
    assert run_numbers(set()) == {}


@pytest.mark.django_db
def test_a_change_made_by_a_probe_run_names_the_run_by_its_number_here(deployment, member):
    other = make_deployment(user=member, team=TeamFactory(members=[member]), service="other")
    for _ in range(3):
        finished_run(other)  # the server's ids move on; this deployment's numbering does not
    finished_run(deployment)
    run = finished_run(deployment)
    item = ChecklistItem.objects.filter(section__deployment=deployment).first()
    ItemChange.objects.create(
        item=item,
        version=item.version + 1,
        source=DecisionSource.PROBE,
        probe_run=run,
        changed_at=timezone.now(),
        previous_status=item.status,
        status=ItemStatus.FAILED,
    )
    line = ChangeHistory().attribution(item.pk, "status", ItemStatus.FAILED)
    assert line.startswith(" — probe run 2 of this deployment, ")
    assert f"#{run.pk}" not in line
