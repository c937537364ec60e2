"""Run control over accounts: pick the accounts a run reads, a run over part of the target
(partial) never verifies what it did not read, and the progress per account."""

import pytest
from django.core.exceptions import ValidationError
from django.db.models import F

from readiness.audit.models import AuditEvent
from readiness.checklists.models import ChecklistItem, ItemStatus
from readiness.checklists.targets import AccountSpec, deployment_set_aws_target
from readiness.probe_runs import selectors, services
from readiness.probe_runs.models import ProbeOutcome, ProbeResultState, ProbeRun
from signoff.signatures.selectors import latest_results

WORKLOAD, NETWORKING, LOGGING = "111111111111", "222222222222", "333333333333"
IAM = "iam.least_privilege"


def spans(deployment, member, *account_ids: str, regions=("us-east-1",)) -> None:
    """The target: these accounts, each read through a role in `regions`."""
    deployment_set_aws_target(
        deployment=deployment,
        user=member,
        accounts=[
            AccountSpec(
                account_id,
                list(regions),
                f"arn:aws:iam::{account_id}:role/ReadinessProbe",
                name=f"acct-{account_id[0]}",
            )
            for account_id in account_ids
        ],
    )


def finish(run: ProbeRun, *, failing: dict[str, str] | None = None) -> ProbeRun:
    """Store every check of the run as a worker would (pass, or the status `failing` gives
    the account's IAM check), then close it."""
    results = run.results.all()
    results.update(state=ProbeResultState.DONE, status=ProbeOutcome.PASS, summary="all good")
    for account_id, status in (failing or {}).items():
        results.filter(account_id=account_id, probe_key=IAM).update(
            status=status, summary=f"legacy-admin in {account_id}"
        )
    ProbeRun.objects.filter(pk=run.pk).update(completed=F("total"))
    assert services.probe_run_finish(run_id=run.pk)
    run.refresh_from_db()
    return run


def iam_item(deployment) -> ChecklistItem:
    return ChecklistItem.objects.get(section__deployment=deployment, title="IAM Policies")


# --- Picking accounts --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_reads_only_the_accounts_picked_and_the_audit_names_them(deployment, member):
    spans(deployment, member, WORKLOAD, NETWORKING, LOGGING)
    run, created = services.probe_run_start(
        deployment=deployment, user=member, accounts=[LOGGING, WORKLOAD, LOGGING]
    )
    assert created
    # In the target's order, once each.
    assert [account["account_id"] for account in run.accounts] == [WORKLOAD, LOGGING]
    assert set(run.results.values_list("account_id", flat=True)) == {WORKLOAD, LOGGING}
    assert run.partial
    event = AuditEvent.objects.get(action="probe_run.started")
    assert event.after["accounts"] == [WORKLOAD, LOGGING]
    assert event.after["partial"] is True


@pytest.mark.django_db
def test_an_account_the_run_does_not_read_is_named_by_what_the_run_reads(deployment, member):
    """Its words end up as a result's summary on the run's own page and in the record, where
    the run's id on this server would name nothing a reader knows."""
    spans(deployment, member, WORKLOAD, NETWORKING)
    run, _ = services.probe_run_start(deployment=deployment, user=member, accounts=[WORKLOAD])
    assert services.run_account(run, WORKLOAD)["account_id"] == WORKLOAD
    with pytest.raises(services.AccountUnavailable) as refused:
        services.run_account(run, NETWORKING)
    assert str(refused.value) == f"account {NETWORKING} is not among the accounts this run reads"


@pytest.mark.django_db
def test_without_a_pick_a_run_reads_every_account_and_is_whole(deployment, member):
    spans(deployment, member, WORKLOAD, NETWORKING)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    assert [account["account_id"] for account in run.accounts] == [WORKLOAD, NETWORKING]
    assert not run.partial
    assert AuditEvent.objects.get(action="probe_run.started").after["partial"] is False


@pytest.mark.django_db
def test_picking_every_account_and_region_is_a_whole_run(deployment, member):
    spans(deployment, member, WORKLOAD, NETWORKING, regions=("us-east-1", "eu-west-1"))
    run, _ = services.probe_run_start(
        deployment=deployment,
        user=member,
        accounts=[NETWORKING, WORKLOAD],
        regions=["eu-west-1", "us-east-1"],
    )
    assert not run.partial


@pytest.mark.django_db
def test_picking_some_regions_makes_a_partial_run(deployment, member):
    spans(deployment, member, WORKLOAD, regions=("us-east-1", "eu-west-1"))
    run, _ = services.probe_run_start(deployment=deployment, user=member, regions=["eu-west-1"])
    assert run.partial and run.accounts[0]["regions"] == ["eu-west-1"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        (["999999999999"], "Not an account of this deployment's AWS target: 999999999999"),
        ([WORKLOAD, "../etc"], "Not an account of this deployment's AWS target: ../etc"),
        ([], "Pick at least one account"),
    ],
)
def test_a_run_refuses_accounts_outside_its_target(deployment, member, accounts, message):
    spans(deployment, member, WORKLOAD, NETWORKING)
    with pytest.raises(ValidationError) as refused:
        services.probe_run_start(deployment=deployment, user=member, accounts=accounts)
    assert message in refused.value.message_dict["accounts"][0]
    assert not ProbeRun.objects.exists()


@pytest.mark.django_db
def test_accounts_picked_that_are_not_read_in_the_regions_picked_are_refused(deployment, member):
    deployment_set_aws_target(
        deployment=deployment,
        user=member,
        accounts=[
            AccountSpec(WORKLOAD, ["us-east-1"], f"arn:aws:iam::{WORKLOAD}:role/R"),
            AccountSpec(NETWORKING, ["eu-west-1"], f"arn:aws:iam::{NETWORKING}:role/R"),
        ],
    )
    with pytest.raises(ValidationError) as refused:
        services.probe_run_start(
            deployment=deployment, user=member, accounts=[NETWORKING], regions=["us-east-1"]
        )
    assert "None of the accounts picked" in refused.value.message_dict["accounts"][0]
    # Picking the region alone drops the account not read there.
    run, _ = services.probe_run_start(deployment=deployment, user=member, regions=["us-east-1"])
    assert [account["account_id"] for account in run.accounts] == [WORKLOAD]
    assert run.regions == ["us-east-1"] and run.partial


# --- What a partial run may claim --------------------------------------------------------


@pytest.mark.django_db
def test_a_partial_run_that_passes_marks_nothing_done_nor_replaces_the_whole_runs_verdicts(
    deployment, member
):
    spans(deployment, member, WORKLOAD, NETWORKING)
    whole = finish(
        services.probe_run_start(deployment=deployment, user=member)[0],
        failing={NETWORKING: ProbeOutcome.FAIL},
    )
    item = iam_item(deployment)
    assert item.status == ItemStatus.FAILED
    bound = latest_results([deployment.pk])[deployment.pk][item.pk]

    # Only the account that failed is read again, and it passes now.
    partial = finish(
        services.probe_run_start(deployment=deployment, user=member, accounts=[NETWORKING])[0]
    )
    assert partial.partial
    item.refresh_from_db()
    # It says nothing of the workload account: the item is not verified by it.
    assert item.status == ItemStatus.FAILED
    # The checklist, signatures and records keep the verdicts of the run over the whole
    # target.
    assert selectors.latest_finished_run(deployment) == whole
    assert latest_results([deployment.pk])[deployment.pk][item.pk] == bound

    # A run over the whole target verifies it.
    finish(services.probe_run_start(deployment=deployment, user=member)[0])
    item.refresh_from_db()
    assert item.status == ItemStatus.DONE
    assert f"[{WORKLOAD}]" in item.status_reason and f"[{NETWORKING}]" in item.status_reason


@pytest.mark.django_db
def test_a_partial_run_that_finds_a_failure_fails_the_item_and_says_what_it_read(
    deployment, member
):
    spans(deployment, member, WORKLOAD, NETWORKING)
    finish(services.probe_run_start(deployment=deployment, user=member)[0])
    item = iam_item(deployment)
    assert item.status == ItemStatus.DONE
    partial = finish(
        services.probe_run_start(deployment=deployment, user=member, accounts=[WORKLOAD])[0],
        failing={WORKLOAD: ProbeOutcome.FAIL},
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.status_reason.startswith(
        f"Probe failed (a run over part of the AWS target: {WORKLOAD} in us-east-1): "
        f"[{WORKLOAD}] legacy-admin in {WORKLOAD}"  # IAM is global
    )
    assert item.changes.order_by("-pk").first().probe_run_id == partial.pk


# --- Progress per account ----------------------------------------------------------------


@pytest.mark.django_db
def test_progress_per_account_counts_done_failed_and_errors(deployment, member):
    spans(deployment, member, WORKLOAD, NETWORKING)
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    per_account = run.results.filter(account_id=WORKLOAD).count()
    workload = run.results.filter(account_id=WORKLOAD).order_by("pk")
    done = list(workload.values_list("pk", flat=True)[:3])
    run.results.filter(pk__in=done).update(state=ProbeResultState.DONE, status=ProbeOutcome.PASS)
    run.results.filter(pk=done[0]).update(status=ProbeOutcome.FAIL)
    run.results.filter(pk=done[1]).update(status=ProbeOutcome.ERROR)
    progress = selectors.account_progress(run)
    assert [(p.account_id, p.name, p.done, p.total, p.failed, p.errors) for p in progress] == [
        (WORKLOAD, "acct-1", 3, per_account, 1, 1),
        (NETWORKING, "acct-2", 0, per_account, 0, 0),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("accounts", [1, 3])
def test_progress_per_account_is_one_query_whatever_the_accounts(
    deployment, member, django_assert_num_queries, accounts
):
    spans(deployment, member, *(WORKLOAD, NETWORKING, LOGGING)[:accounts])
    run, _ = services.probe_run_start(deployment=deployment, user=member)
    with django_assert_num_queries(1):
        assert len(selectors.account_progress(run)) == accounts
