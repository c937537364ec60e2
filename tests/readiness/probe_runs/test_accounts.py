"""A run over several AWS accounts (moto's organization and cross-account AssumeRole): the
checks spread per account, one account's refusal stays its own, item verdicts aggregate
across accounts, and evidence and drift are per account."""

import json
from datetime import timedelta

import boto3
import pytest
from django.urls import reverse
from django.utils import timezone

from readiness.checklists import targets
from readiness.checklists.models import ChecklistItem, ItemStatus
from readiness.checklists.targets import AccountSpec
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeOutcome, ProbeRunState
from signoff.signatures.selectors import latest_results
from tests.readiness.probe_runs.test_probe_runs import ADMIN, execute_all

MANAGEMENT = "123456789012"  # moto's account for the test credentials
PROBE_ROLE = "ReadinessProbe"
IAM = "iam.least_privilege"


def role_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{PROBE_ROLE}"


def session_in(aws, account_id: str) -> boto3.Session:
    """Act in a member account, as the demo and an administrator do: through the role AWS
    Organizations put there."""
    credentials = aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="test-setup",
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )


def member_account(aws, name: str, *, probe_role: bool = True) -> str:
    org = aws.client("organizations")
    status = org.create_account(Email=f"{name}@example.com", AccountName=name)
    account_id = status["CreateAccountStatus"]["AccountId"]
    if probe_role:
        session_in(aws, account_id).client("iam").create_role(
            RoleName=PROBE_ROLE,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )
    return account_id


def admin_user_in(session: boto3.Session) -> None:
    iam = session.client("iam")
    iam.create_user(UserName="legacy-admin")
    iam.put_user_policy(UserName="legacy-admin", PolicyName="all", PolicyDocument=json.dumps(ADMIN))


@pytest.fixture
def organization(aws):
    aws.client("organizations").create_organization(FeatureSet="ALL")
    probe_runs._sessions.clear()
    probe_runs._refusals.clear()
    yield
    probe_runs._sessions.clear()
    probe_runs._refusals.clear()


def spans(deployment, member, *accounts: AccountSpec) -> None:
    targets.deployment_set_aws_target(deployment=deployment, user=member, accounts=list(accounts))


def iam_item(deployment) -> ChecklistItem:
    return ChecklistItem.objects.get(section__deployment=deployment, title="IAM Policies")


@pytest.mark.django_db
def test_an_account_whose_role_is_denied_leaves_the_others_results_standing(
    aws, organization, deployment, member
):
    readable = member_account(aws, "workload")
    denied = member_account(aws, "logging", probe_role=False)  # no role to assume there
    admin_user_in(session_in(aws, readable))
    spans(
        deployment,
        member,
        AccountSpec(readable, ["us-east-1"], role_arn(readable), name="workload"),
        AccountSpec(denied, ["us-east-1", "eu-west-1"], role_arn(denied), name="logging"),
    )
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    # Every check of the run in each account, the denied one's regions included.
    assert set(run.results.values_list("account_id", flat=True)) == {readable, denied}
    assert set(run.results.filter(account_id=denied).values_list("region", flat=True)) == {
        "global",
        "us-east-1",
        "eu-west-1",
    }
    run = execute_all(run)
    assert run.state == ProbeRunState.SUCCEEDED and run.completed == run.total
    assert not run.results.filter(account_id=denied).exclude(status=ProbeOutcome.ERROR).exists()
    by_account = {r.account_id: r for r in run.results.filter(probe_key=IAM)}
    # The readable account's verdict landed, naming its own resource.
    assert by_account[readable].status == ProbeOutcome.FAIL
    assert "legacy-admin" in json.dumps(by_account[readable].findings)
    # The other says which account and why.
    assert by_account[denied].status == ProbeOutcome.ERROR
    assert by_account[denied].summary.startswith(
        f"Could not get AWS credentials for account {denied}:"
    )
    assert "AccessDenied" in by_account[denied].summary
    # Any failure fails the item, whatever another account could not say.
    item = iam_item(deployment)
    assert item.status == ItemStatus.FAILED
    assert item.status_reason.startswith(f"Probe failed: [{readable}] ")


@pytest.mark.django_db
def test_item_verdicts_aggregate_across_accounts(aws, organization, deployment, member):
    clean, failing = member_account(aws, "workload"), member_account(aws, "networking")
    session_in(aws, clean).client("iam").create_user(UserName="reader")
    admin_user_in(session_in(aws, failing))
    spans(
        deployment,
        member,
        AccountSpec(clean, ["us-east-1"], role_arn(clean), name="workload"),
        AccountSpec(failing, ["us-east-1"], role_arn(failing), name="networking"),
    )
    run = execute_all(probe_runs.probe_run_start(deployment=deployment, user=member)[0])
    statuses = dict(run.results.filter(probe_key=IAM).values_list("account_id", "status"))
    assert statuses == {clean: ProbeOutcome.PASS, failing: ProbeOutcome.FAIL}
    item = iam_item(deployment)
    assert item.status == ItemStatus.FAILED
    assert item.status_reason.startswith(f"Probe failed: [{failing}] ")

    # Fixed in the failing account: every account passes, the item is done.
    session_in(aws, failing).client("iam").delete_user_policy(
        UserName="legacy-admin", PolicyName="all"
    )
    probe_runs._sessions.clear()
    execute_all(probe_runs.probe_run_start(deployment=deployment, user=member)[0])
    item.refresh_from_db()
    assert item.status == ItemStatus.DONE
    assert f"[{clean}]" in item.status_reason and f"[{failing}]" in item.status_reason


@pytest.mark.django_db
def test_evidence_is_grouped_by_account_on_the_run_and_checklist_pages(
    aws, organization, deployment, member, member_client
):
    clean, failing = member_account(aws, "workload"), member_account(aws, "networking")
    admin_user_in(session_in(aws, failing))
    spans(
        deployment,
        member,
        AccountSpec(clean, ["us-east-1"], role_arn(clean), name="workload"),
        AccountSpec(failing, ["us-east-1"], role_arn(failing), name="networking"),
    )
    run = execute_all(probe_runs.probe_run_start(deployment=deployment, user=member)[0])
    iam = deployment.sections.get(title="Security").items.get(title="IAM Policies")
    for url in (
        reverse("probe_run_detail", args=[deployment.pk, run.pk]),
        # The checklist's item card, as its row opens it (or its own page without JS).
        reverse("item_update", args=[deployment.pk, iam.pk]),
    ):
        page = member_client.get(url).content.decode()
        for account_id, name in ((clean, "workload"), (failing, "networking")):
            assert f"Account <code>{account_id}</code> · {name}" in page, url
        # The failing account's finding sits under its own heading.
        heading = page.index(f"Account <code>{failing}</code>")
        assert page.index("legacy-admin", heading) > heading


@pytest.mark.django_db
def test_drift_is_read_per_account_an_outage_carries_only_its_own_verdict(
    aws, organization, deployment, member
):
    first, second = member_account(aws, "workload"), member_account(aws, "networking")
    admin_user_in(session_in(aws, second))
    spans(
        deployment,
        member,
        AccountSpec(first, ["us-east-1"], role_arn(first)),
        AccountSpec(second, ["us-east-1"], role_arn(second)),
    )
    execute_all(probe_runs.probe_run_start(deployment=deployment, user=member)[0])
    # The second account's role goes away: its next result is an error.
    session_in(aws, second).client("iam").delete_role(RoleName=PROBE_ROLE)
    probe_runs._sessions.clear()
    execute_all(probe_runs.probe_run_start(deployment=deployment, user=member)[0])
    entries = latest_results([deployment.pk])[deployment.pk][iam_item(deployment).pk]
    by_account = {entry["account"]: entry for entry in entries}
    assert by_account[first]["status"] == ProbeOutcome.PASS and not by_account[first]["carried"]
    # Not knowing is not a change: the second account's own earlier failure stands in, not
    # the first account's pass.
    assert by_account[second]["status"] == ProbeOutcome.FAIL and by_account[second]["carried"]
    assert "AccessDenied" in by_account[second]["error"]


@pytest.mark.django_db
def test_accounts_share_one_session_each_client_reading_its_own_account(
    aws, organization, deployment, member
):
    first, second = member_account(aws, "workload"), member_account(aws, "networking")
    spans(
        deployment,
        member,
        AccountSpec(first, ["us-east-1"], role_arn(first)),
        AccountSpec(second, ["eu-west-1"], role_arn(second)),
    )
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    sessions = {account: probe_runs._session_for(run, account) for account in (first, second)}
    for account, session in sessions.items():
        assert session.client("sts").get_caller_identity()["Account"] == account
        assert session.expires_at > timezone.now() + timedelta(minutes=50)
    # Clients of both accounts come from the one botocore session of the process.
    assert sessions[second].client("ec2").meta.region_name == "eu-west-1"
    assert type(sessions[first].client("ec2")) is type(sessions[second].client("ec2"))


@pytest.mark.django_db
def test_a_session_whose_credentials_would_expire_during_a_check_is_replaced(
    aws, organization, deployment, member, settings
):
    account = member_account(aws, "workload")
    spans(deployment, member, AccountSpec(account, ["us-east-1"], role_arn(account)))
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    session = probe_runs._session_for(run, account)
    assert probe_runs._session_for(run, account) is session  # reused, STS not asked again
    # The assumed role's credentials are not refreshed: within a check's lease of their end,
    # the role is assumed again rather than a check failing halfway with expired credentials.
    session.expires_at = timezone.now() + timedelta(seconds=settings.PROBE_CHECK_TIMEOUT - 5)
    renewed = probe_runs._session_for(run, account)
    assert renewed is not session
    assert renewed.expires_at > timezone.now() + timedelta(minutes=50)
    assert renewed.client("sts").get_caller_identity()["Account"] == account
    assert probe_runs._session_for(run, account) is renewed
