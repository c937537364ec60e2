"""The operator commands against the demo account on the moto server."""

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from readiness.dev.demo_aws import DEMO_ACCOUNT, seed_account
from readiness.probe_runs.models import ProbeRun, ProbeRunState
from readiness.probe_runs.selectors import numbered
from readiness.probes.base import registry


@pytest.fixture
def demo_account(aws, moto_server):
    seed_account(moto_server, regions=("us-east-1", "eu-west-1"))


def probe_json(*args) -> list[dict]:
    out = StringIO()
    call_command("probe", *args, "--format", "json", stdout=out)
    return json.loads(out.getvalue())


def failing(row) -> set[str]:
    return {r["id"] for r in row["resources"] if r["status"] in ("fail", "warn")}


MOTO_GAPS = {
    "cost.anomaly_detection",
    "cost.budgets",
    "cost.commitments",
    "delivery.feature_flags",
}


def test_probe_json_reports_pass_and_fail_with_the_failing_resource_ids(demo_account):
    rows = probe_json("--region", "us-east-1", "--region", "eu-west-1")
    keys = {
        "probe",
        "section",
        "item",
        "region",
        "status",
        "summary",
        "resources",
        "remediation",
        "duration_ms",
    }
    assert all(set(row) == keys for row in rows)
    probes = registry()
    expected = sum(1 if p.scope == "global" else 2 for p in probes.values())
    assert len(rows) == expected
    by = {(row["probe"], row["region"]): row for row in rows}
    assert {row["region"] for row in rows if probes[row["probe"]].scope == "global"} == {"global"}
    # moto lacks Cost Explorer's anomaly and coverage reports, budget subscribers and
    # AppConfig's listing (STACK-NOTES): those probes say so, as they would on any endpoint
    # without the API; every other probe has a verdict.
    errors = {(r["probe"], r["region"]): r["summary"] for r in rows if r["status"] == "error"}
    assert {probe for probe, _ in errors} == MOTO_GAPS, errors
    # The emulator's gaps are named as such, and answered at once rather than retried.
    assert all("NotImplemented: The AWS emulator" in summary for summary in errors.values())

    iam = by[("iam.least_privilege", "global")]
    assert iam["status"] == "fail"
    assert failing(iam) == {f"arn:aws:iam::{DEMO_ACCOUNT}:user/legacy-admin"}
    assert iam["section"] == "Security" and iam["item"] == "IAM Policies"
    assert "Access Analyzer" in iam["remediation"]
    assert f"arn:aws:iam::{DEMO_ACCOUNT}:user/alice" in failing(by[("iam.mfa", "global")])
    assert by[("cloudtrail.trail", "global")]["status"] == "pass"
    for region in ("us-east-1", "eu-west-1"):
        s3 = by[("encryption.s3_at_rest", region)]
        assert s3["status"] == "fail"
        assert f"demo-assets-{region}-0" in {i.split(":")[-1] for i in failing(s3)}
        assert f"demo-records-{region}-0" not in {i.split(":")[-1] for i in failing(s3)}
        assert by[("encryption.dynamodb", region)]["status"] == "pass"
        assert by[("monitoring.cloudwatch_alarms", region)]["status"] == "pass"
        assert by[("secrets.rotation", region)]["status"] == "fail"
        assert any(
            "unused-topic" in i for i in failing(by[("monitoring.sns_subscriptions", region)])
        )
        rotation = by[("encryption.kms_rotation", region)]
        assert rotation["status"] == "fail" and len(failing(rotation)) == 1
    assert (
        by[("encryption.ebs", "us-east-1")]["summary"]
        != by[("encryption.ebs", "eu-west-1")]["summary"]
    )

    # The sections of AWS probes II, on what the demo account seeds.
    assert by[("compliance.password_policy", "global")]["status"] == "fail"  # 12 < 14
    assert by[("compliance.data_residency", "global")]["status"] == "warn"  # no SCP
    assert by[("compliance.config_recorder", "us-east-1")]["status"] == "pass"
    assert by[("compliance.config_recorder", "eu-west-1")]["status"] == "fail"  # no channel
    assert by[("compliance.root_keys", "global")]["status"] == "pass"
    assert by[("delivery.pipelines", "us-east-1")]["status"] == "pass"
    assert by[("performance.cache", "us-east-1")]["status"] == "pass"
    assert by[("performance.cache", "eu-west-1")]["status"] == "warn"
    assert by[("operational.runbooks", "us-east-1")]["status"] == "not_applicable"
    for region in ("us-east-1", "eu-west-1"):
        assert by[("cost.nat_endpoints", region)]["status"] == "warn"  # S3 endpoint only
        toggles = by[("cost.dev_toggles", region)]
        assert toggles["status"] == "fail" and failing(toggles) == {"staging-batch"}
        lifecycle = by[("cost.s3_lifecycle", region)]
        assert f"demo-records-{region}-0" not in failing(lifecycle)
        assert f"demo-assets-{region}-0" in failing(lifecycle)
        assert "/payments/worker-0" in failing(by[("compliance.log_retention", region)])
        assert by[("cost.right_sizing", region)]["status"] == "warn"  # no CPU datapoints


def test_probe_table_format_and_only(demo_account):
    out = StringIO()
    call_command("probe", "--region", "us-east-1", "--only", "iam.least_privilege", stdout=out)
    text = out.getvalue()
    assert text.startswith("FAIL")
    assert f"- arn:aws:iam::{DEMO_ACCOUNT}:user/legacy-admin:" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", "mars-1"], "unknown region: mars-1"),
        (["--region", "us-east-1", "--only", "nope.nothing"], "unknown probe: nope.nothing"),
    ],
)
def test_probe_refuses_bad_arguments_with_exit_code_2(args, message):
    with pytest.raises(CommandError, match=message) as caught:
        call_command("probe", *args)
    assert caught.value.returncode == 2


def test_probe_list_names_every_probe():
    out = StringIO()
    call_command("probe", "--region", "us-east-1", "--list", stdout=out)
    assert len(out.getvalue().splitlines()) == len(registry())


@pytest.mark.django_db
def test_run_probes_enqueues_a_run_and_refuses_bad_ids(deployment):
    from tests.factories import set_aws_target

    with pytest.raises(CommandError, match="no deployment 999999"):
        call_command("run_probes", "999999")
    with pytest.raises(CommandError, match="Add the AWS accounts and regions"):
        call_command("run_probes", str(deployment.pk))
    set_aws_target(deployment, account_id=DEMO_ACCOUNT)
    out = StringIO()
    call_command("run_probes", str(deployment.pk), stdout=out)
    run = ProbeRun.objects.get(deployment=deployment)
    assert out.getvalue().startswith(f"Started probe run 1 (#{run.pk} on this server): {run.total}")
    with pytest.raises(CommandError, match="is not in team"):
        call_command("run_probes", str(deployment.pk), "--user", "nobody")


@pytest.mark.django_db
def test_run_probes_names_the_run_as_the_deployments_pages_do(
    deployment, member, team, monkeypatch
):
    from tests.factories import make_deployment, set_aws_target

    # Ids count every run on the server; the deployment's numbering its own runs only.
    for earlier in (make_deployment(user=member, team=team), deployment):
        ProbeRun.objects.create(
            deployment=earlier, state=ProbeRunState.SUCCEEDED, finished_at=timezone.now()
        )
    set_aws_target(deployment, account_id=DEMO_ACCOUNT)
    out = StringIO()
    call_command("run_probes", str(deployment.pk), stdout=out)
    run = deployment.probe_runs.get(state=ProbeRunState.QUEUED)
    name = f"probe run 2 (#{run.pk} on this server)"
    assert out.getvalue().startswith(f"Started {name}: {run.total} checks"), out.getvalue()
    out = StringIO()
    call_command("run_probes", str(deployment.pk), stdout=out)
    assert out.getvalue().startswith(f"Joined active {name}: "), out.getvalue()
    with pytest.raises(
        CommandError, match=re.escape(f"Probe run 2 (#{run.pk} on this server) still")
    ):
        call_command("run_probes", str(deployment.pk), "--wait", "--timeout", "0", stdout=out)

    def the_worker_finishes_it(seconds):
        ProbeRun.objects.filter(pk=run.pk).update(
            state=ProbeRunState.SUCCEEDED, finished_at=timezone.now()
        )

    monkeypatch.setattr(
        "readiness.management.commands.run_probes.time.sleep", the_worker_finishes_it
    )
    out = StringIO()
    call_command("run_probes", str(deployment.pk), "--wait", stdout=out)
    assert (
        out.getvalue()
        .splitlines()[-1]
        .startswith(f"Probe run 2 (#{run.pk} on this server) finished in ")
    ), out.getvalue()
    # Its name in the shell and the logs: the same, once read with its number.
    assert str(numbered(ProbeRun.objects.filter(pk=run.pk)).get()) == (
        f"Probe run 2 (#{run.pk} on this server) of {deployment}"
    )
    assert str(ProbeRun.objects.get(pk=run.pk)) == f"Probe run #{run.pk} of {deployment}"


@pytest.mark.django_db
def test_run_probes_reads_the_accounts_and_regions_picked(deployment):
    from tests.factories import set_aws_target

    set_aws_target(deployment, account_id=DEMO_ACCOUNT, regions=("us-east-1", "eu-west-1"))
    with pytest.raises(CommandError, match="999999999999") as caught:
        call_command("run_probes", str(deployment.pk), "--account", "999999999999")
    assert caught.value.returncode == 2
    out = StringIO()
    call_command(
        "run_probes",
        str(deployment.pk),
        "--account",
        DEMO_ACCOUNT,
        "--region",
        "eu-west-1",
        stdout=out,
    )
    run = ProbeRun.objects.get(deployment=deployment)
    assert (run.regions, run.partial) == (["eu-west-1"], True)
    assert f"in eu-west-1 of {DEMO_ACCOUNT} (partial" in out.getvalue()


def test_sharing_answers_within_a_run_changes_no_verdict(demo_account, aws):
    """Every probe of the demo account, run together (answers shared) and one by one with no
    cache at all: the same status, summary and resources, region by region."""
    from readiness.probes.base import ProbeContext, ProbeSettings, execute
    from readiness.probes.runner import run_all

    regions = ["us-east-1", "eu-west-1"]
    together = run_all(session=aws, regions=regions, max_attempts=1)
    settings = ProbeSettings(approved_regions=tuple(regions))
    assert len(together) == 115
    for shared in together:
        context = ProbeContext(session=aws, region=shared.region, settings=settings, max_attempts=1)
        alone = execute(shared.probe, context).result
        assert (shared.probe.key, shared.region, shared.result.as_json()) == (
            shared.probe.key,
            shared.region,
            alone.as_json(),
        )
