import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from readiness.checklists.models import AwsAccount
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeResult, ProbeRun, ProbeRunState
from tests.factories import make_deployment, set_aws_target

HTMX = {"HTTP_HX_REQUEST": "true"}
ACCOUNT = "123456789012"


def with_target(deployment):
    return set_aws_target(deployment, account_id=ACCOUNT)


def finished_run(deployment, results: int) -> ProbeRun:
    run = ProbeRun.objects.create(
        deployment=deployment,
        requested_by=deployment.owner,
        state=ProbeRunState.SUCCEEDED,
        regions=["us-east-1"],
        accounts=[{"account_id": ACCOUNT, "name": "", "role_arn": "", "regions": ["us-east-1"]}],
        total=results,
        completed=results,
    )
    item = deployment.sections.get(title="Security").items.get(title="IAM Policies")
    ProbeResult.objects.bulk_create(
        ProbeResult(
            run=run,
            item=item,
            probe_key=f"test.probe{index}",
            region="us-east-1",
            section_title="Security",
            item_title="IAM Policies",
            title="A test probe",
            severity="high",
            state="done",
            status="fail" if index % 2 else "pass",
            summary="summary",
            findings=[
                {"id": f"arn:aws:iam::{ACCOUNT}:user/u{index}", "status": "fail", "reason": "r"}
            ],
            facts={"read": index},
            remediation="Fix it",
        )
        for index in range(results)
    )
    return run


# Starting a run


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_login_to_start_a_run(client, deployment):
    response = client.post(f"/deployments/{deployment.pk}/probes/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_another_team_cannot_start_a_run(outsider_client, deployment):
    with_target(deployment)
    assert outsider_client.post(f"/deployments/{deployment.pk}/probes/").status_code == 404
    assert not ProbeRun.objects.exists()


@pytest.mark.django_db
def test_starting_without_a_target_explains_what_is_missing(member_client, deployment):
    plain = member_client.post(f"/deployments/{deployment.pk}/probes/", follow=True)
    assert "Add the AWS accounts and regions" in plain.content.decode()
    htmx = member_client.post(f"/deployments/{deployment.pk}/probes/", **HTMX)
    assert htmx.status_code == 400
    assert "Add the AWS accounts and regions" in htmx.content.decode()
    assert not ProbeRun.objects.exists()


@pytest.mark.django_db
def test_a_member_starts_a_run_plain_and_with_htmx(member_client, deployment):
    with_target(deployment)
    plain = member_client.post(f"/deployments/{deployment.pk}/probes/")
    run = ProbeRun.objects.get()
    assert plain.status_code == 302
    assert plain["Location"] == f"/deployments/{deployment.pk}/probes/{run.pk}/"
    htmx = member_client.post(f"/deployments/{deployment.pk}/probes/", **HTMX)
    body = htmx.content.decode()
    assert htmx.status_code == 200 and "<html" not in body
    assert 'hx-trigger="every 1s"' in body and f"0 of {run.total} checks done" in body
    assert ProbeRun.objects.count() == 1  # the second click joined the first run


# Following a run


@pytest.mark.django_db
def test_run_pages_need_login_and_the_team(outsider, deployment):
    run = finished_run(deployment, 2)
    url = f"/deployments/{deployment.pk}/probes/{run.pk}/"
    assert Client().get(url)["Location"].startswith("/login/")
    other_team = Client()
    other_team.force_login(outsider)
    assert other_team.get(url).status_code == 404


@pytest.mark.django_db
def test_a_run_of_another_deployment_is_not_found_under_this_one(member_client, member, deployment):
    other = make_deployment(user=member, team=deployment.team, service="search-api")
    run = finished_run(other, 1)
    response = member_client.get(f"/deployments/{deployment.pk}/probes/{run.pk}/")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_results_page_groups_results_with_evidence_and_remediation(member_client, deployment):
    run = finished_run(deployment, 2)
    body = member_client.get(f"/deployments/{deployment.pk}/probes/{run.pk}/").content.decode()
    assert "<h2>Security</h2>" in body and "IAM Policies" in body
    assert f"arn:aws:iam::{ACCOUNT}:user/u1" in body
    assert "What to change:" in body and "Fix it" in body


@pytest.mark.django_db
def test_the_progress_panel_polls_while_active_and_reloads_when_done(member_client, deployment):
    with_target(deployment)
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=deployment.owner)
    url = f"/deployments/{deployment.pk}/probes/{run.pk}/?refresh=1"
    polling = member_client.get(url, HTTP_HX_TARGET="probe-run-panel", **HTMX)
    assert 'hx-trigger="every 1s"' in polling.content.decode()
    assert "HX-Refresh" not in polling
    ProbeRun.objects.filter(pk=run.pk).update(state=ProbeRunState.SUCCEEDED, completed=run.total)
    done = member_client.get(url, HTTP_HX_TARGET="probe-run-panel", **HTMX)
    assert done["HX-Refresh"] == "true"
    assert "every 1s" not in done.content.decode()


@pytest.mark.django_db
def test_the_checklist_shows_evidence_of_the_latest_run_on_its_item(member_client, deployment):
    finished_run(deployment, 2)
    item = deployment.sections.get(title="Security").items.get(title="IAM Policies")
    # The checklist's row carries the run's chips; the item's card, opened in place or on
    # its own page, the evidence.
    page = member_client.get(f"/deployments/{deployment.pk}/").content.decode()
    row = page.split(f'id="row-{item.pk}-summary"', 1)[1].split("</summary>", 1)[0]
    assert "probe-chip" in row
    body = member_client.get(f"/deployments/{deployment.pk}/items/{item.pk}/").content.decode()
    assert "Probe evidence:" in body
    assert f"arn:aws:iam::{ACCOUNT}:user/u1" in body


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_results_page_query_count_is_flat_in_the_number_of_results(member_client, member, team):
    small, large = (make_deployment(user=member, team=team, service=s) for s in ("a", "b"))
    few, many = finished_run(small, 2), finished_run(large, 40)
    counts = [
        _count_queries(member_client, f"/deployments/{d.pk}/probes/{r.pk}/")
        for d, r in ((small, few), (large, many))
    ]
    assert counts[0] == counts[1] <= 12, counts


@pytest.mark.django_db
def test_checklist_query_count_is_flat_with_probe_results(member_client, member, team):
    small, large = (make_deployment(user=member, team=team, service=s) for s in ("a", "b"))
    finished_run(small, 2)
    finished_run(large, 40)
    counts = [_count_queries(member_client, f"/deployments/{d.pk}/") for d in (small, large)]
    assert counts[0] == counts[1], counts


# The AWS target


@pytest.mark.django_db
def test_aws_target_page_permissions(outsider, member, deployment):
    url = f"/deployments/{deployment.pk}/aws/"
    assert Client().get(url)["Location"].startswith("/login/")
    other_team, team_member = Client(), Client()
    other_team.force_login(outsider)
    team_member.force_login(member)
    assert other_team.get(url).status_code == 404
    assert other_team.post(url, {"aws_account_id": ACCOUNT}).status_code == 404
    assert team_member.get(url).status_code == 200


@pytest.mark.django_db
def test_a_member_saves_an_aws_target(member_client, deployment):
    response = member_client.post(
        f"/deployments/{deployment.pk}/aws/",
        {
            "aws_account_id": ACCOUNT,
            "aws_regions": "eu-west-1, us-east-1, eu-west-1",
            "aws_role_arn": f"arn:aws:iam::{ACCOUNT}:role/readiness-probe",
            "aws_external_id": "team-payments",
        },
    )
    assert response.status_code == 302
    account = AwsAccount.objects.get(deployment=deployment)
    assert account.account_id == ACCOUNT
    assert account.regions == ["eu-west-1", "us-east-1"]
    assert account.role_arn.endswith(":role/readiness-probe")
    assert account.external_id == "team-payments"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"aws_account_id": "12345", "aws_regions": "us-east-1"},
            "An AWS account id is 12 digits.",
        ),
        (
            {"aws_account_id": ACCOUNT, "aws_regions": "mars-north-1"},
            "Unknown region: mars-north-1.",
        ),
        ({"aws_account_id": ACCOUNT, "aws_regions": " , "}, "Name at least one region."),
        (
            {
                "aws_account_id": ACCOUNT,
                "aws_regions": "us-east-1",
                "aws_role_arn": "arn:aws:iam::999999999999:role/x",
            },
            "The role must be in the account above.",
        ),
        (
            {"aws_account_id": ACCOUNT, "aws_regions": "us-east-1", "aws_role_arn": "not-an-arn"},
            "Expected arn:aws:iam::",
        ),
        (
            {"aws_account_id": ACCOUNT, "aws_regions": "us-east-1", "aws_external_id": "x-1"},
            "An external id is only used with a role.",
        ),
    ],
)
@pytest.mark.django_db
def test_a_bad_aws_target_is_refused_with_a_message(member_client, deployment, data, message):
    response = member_client.post(f"/deployments/{deployment.pk}/aws/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not AwsAccount.objects.filter(deployment=deployment).exists()
