"""Progress counters on the deployment's row: kept equal to a fresh count of its items by
every write path, and checked (and repaired) by `manage.py check_progress`."""

import random

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from readiness.checklists import selectors, services
from readiness.checklists.models import (
    ChecklistItem,
    DecisionSource,
    Deployment,
    DeploymentState,
    ItemStatus,
)
from readiness.checklists.progress import drifted, refresh_progress, repair_progress
from readiness.evidence.services import Upload, evidence_upload
from tests.factories import make_deployment
from tests.readiness.api.samples import cobertura, trivy

pytestmark = pytest.mark.django_db


def fresh_progress(deployment) -> selectors.Progress:
    """What the counters must say: the items counted now, in Python."""
    return selectors.Progress.of(ChecklistItem.objects.filter(section__deployment=deployment))


def counters(deployment) -> selectors.Progress:
    return selectors.Progress.of_deployment(Deployment.objects.get(pk=deployment.pk))


def person_edit(item, user, rng):
    status = rng.choice(ItemStatus.values)
    services.item_update(
        item=item,
        user=user,
        expected_version=item.version,
        status=status,
        note=rng.choice(["", "checked", "see ticket"]),
        evidence_url="",
        na_reason="out of scope" if status == ItemStatus.NOT_APPLICABLE else "",
        # Overriding a probe, or changing after review was asked, needs one.
        reason="re-checked by hand",
    )


def probe_verdict(item, deployment, rng):
    services.item_set_by_machine(
        item=item,
        status=rng.choice([ItemStatus.DONE, ItemStatus.FAILED]),
        source=DecisionSource.PROBE,
        reason=f"Verified by probe: run {rng.randint(1, 10_000)}",
        deployment=deployment,
    )


def evidence(deployment, user, rng):
    kind, data = rng.choice(
        [
            ("cobertura", cobertura(rng.randint(0, 10), 10)),
            ("trivy", trivy(*rng.sample(["LOW", "HIGH", "CRITICAL"], rng.randint(0, 2)))),
        ]
    )
    evidence_upload(
        deployment=deployment, user=user, kind=kind, upload=Upload(f"{kind}.file", data)
    )


def test_a_new_deployment_counts_its_snapshot_items(deployment):
    assert counters(deployment) == selectors.Progress(total=56, done=0, not_applicable=0, failed=0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counters_equal_a_fresh_count_after_random_edits_through_every_write_path(
    member, team, seed
):
    rng = random.Random(seed)
    deployments = [make_deployment(user=member, team=team, service=f"svc-{n}") for n in range(2)]
    for step in range(40):
        deployment = Deployment.objects.get(pk=rng.choice(deployments).pk)
        if step == 20:
            # Past draft, so that later edits of decided items take the reason path.
            Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.IN_REVIEW)
            deployment.refresh_from_db()
        item = rng.choice(
            list(
                ChecklistItem.objects.filter(section__deployment=deployment).select_related(
                    "section__deployment__team"
                )
            )
        )
        path = rng.choice(["person", "probe", "evidence"])
        if path == "person":
            person_edit(item, member, rng)
        elif path == "probe":
            probe_verdict(item, deployment, rng)
        else:
            evidence(deployment, member, rng)
    for deployment in deployments:
        assert counters(deployment) == fresh_progress(deployment)
    assert not drifted().exists()


def test_a_stale_edit_leaves_the_counters_as_they_were(deployment, member):
    item = ChecklistItem.objects.select_related("section__deployment__team").filter(
        section__deployment=deployment
    )[0]
    with pytest.raises(services.StaleEdit):
        services.item_update(
            item=item,
            user=member,
            expected_version=item.version + 5,
            status=ItemStatus.DONE,
            note="",
            evidence_url="",
            na_reason="",
        )
    assert counters(deployment).done == 0


def test_a_rolled_back_edit_rolls_back_its_counters(deployment, member):
    from django.db import transaction

    item = ChecklistItem.objects.select_related("section__deployment__team").filter(
        section__deployment=deployment
    )[0]
    with pytest.raises(RuntimeError), transaction.atomic():
        services.item_update(
            item=item,
            user=member,
            expected_version=item.version,
            status=ItemStatus.FAILED,
            note="",
            evidence_url="",
            na_reason="",
        )
        assert counters(deployment).failed == 1
        raise RuntimeError("the request failed after the save")
    assert counters(deployment) == fresh_progress(deployment)
    assert counters(deployment).failed == 0


def test_deployment_progress_reads_the_counters_as_committed(deployment, member):
    item = ChecklistItem.objects.select_related("section__deployment__team").filter(
        section__deployment=deployment
    )[0]
    services.item_update(
        item=item,
        user=member,
        expected_version=item.version,
        status=ItemStatus.DONE,
        note="",
        evidence_url="",
        na_reason="",
    )
    # `deployment` was read before the edit; the selector reads the row again.
    assert deployment.items_done == 0
    assert selectors.deployment_progress(deployment).done == 1


def drift(deployment, **counts):
    Deployment.objects.filter(pk=deployment.pk).update(**counts)


def test_drift_is_found_and_repaired_in_batches(member, team):
    deployments = [make_deployment(user=member, team=team, service=f"s{n}") for n in range(5)]
    ChecklistItem.objects.filter(section__deployment=deployments[1]).update(
        status=ItemStatus.FAILED
    )
    drift(deployments[3], items_total=3)
    drift(deployments[4], items_done=7, items_not_applicable=1)
    expected = [deployments[1].pk, deployments[3].pk, deployments[4].pk]
    assert repair_progress(batch_size=2) == expected
    assert set(drifted().values_list("pk", flat=True)) == set(expected)
    assert repair_progress(batch_size=2, fix=True) == expected
    assert repair_progress() == []
    assert counters(deployments[1]).failed == 56
    assert counters(deployments[3]) == counters(deployments[0])


def test_check_progress_command_reports_drift_fails_then_fixes_it(deployment, capsys):
    call_command("check_progress")
    assert "match" in capsys.readouterr().out
    drift(deployment, items_failed=9)
    with pytest.raises(CommandError, match="check_progress --fix"):
        call_command("check_progress")
    assert f"#{deployment.pk}" in capsys.readouterr().err
    call_command("check_progress", "--fix")
    assert f"recounted 1 deployment(s): #{deployment.pk}" in capsys.readouterr().out
    assert counters(deployment).failed == 0
    call_command("check_progress", "--batch-size", "1")
    assert "match" in capsys.readouterr().out


def test_check_progress_refuses_a_batch_size_below_one(db):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("check_progress", "--batch-size", "0")


def test_refresh_progress_counts_a_deployment_without_items_as_zero(deployment):
    ChecklistItem.objects.filter(section__deployment=deployment).delete()
    refresh_progress(deployment.pk)
    assert counters(deployment) == selectors.Progress(total=0, done=0, not_applicable=0, failed=0)


def test_the_data_migration_fills_existing_rows_in_batches(member, team, monkeypatch):
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("readiness.migrations.0015_deployment_progress_fill")
    deployments = [make_deployment(user=member, team=team, service=f"s{n}") for n in range(3)]
    ChecklistItem.objects.filter(section__deployment=deployments[2]).update(status=ItemStatus.DONE)
    # As the rows were before the counters existed.
    Deployment.objects.update(items_total=0, items_done=0)
    monkeypatch.setattr(migration, "BATCH", 2)
    migration.fill(apps, SimpleNamespace(connection=connection))
    for deployment in deployments:
        assert counters(deployment) == fresh_progress(deployment)
    assert counters(deployments[2]).done == 56
