"""The AWS target page, starting probes, and the probe run page with its polling panel."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from readiness.checklists.models import AwsAccount
from readiness.probe_runs.models import ProbeRun, ProbeRunState
from tests.factories import make_deployment
from tests.readiness.web.conftest import HTMX, detail_url, is_full_page, text

pytestmark = pytest.mark.django_db


# AWS target and probe runs


def test_aws_target_page_and_valid_save(member_client, deployment):
    url = reverse("deployment_aws", args=[deployment.pk])
    response = member_client.get(url)
    assert response.status_code == 200
    assert is_full_page(response)
    response = member_client.post(
        url, {"aws_account_id": "123456789012", "aws_regions": "eu-west-1, us-east-1, eu-west-1"}
    )
    assert response.status_code == 302
    assert response["Location"] == detail_url(deployment)
    assert list(deployment.aws_accounts.values_list("account_id", "regions")) == [
        ("123456789012", ["eu-west-1", "us-east-1"])
    ]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"aws_account_id": "12", "aws_regions": "eu-west-1"}, "aws_account_id"),
        ({"aws_account_id": "123456789012", "aws_regions": "mars-1"}, "aws_regions"),
        ({"aws_account_id": "123456789012", "aws_regions": " , "}, "aws_regions"),
        (
            {
                "aws_account_id": "123456789012",
                "aws_regions": "eu-west-1",
                "aws_role_arn": "arn:aws:iam::210987654321:role/readiness",
            },
            "aws_role_arn",
        ),
        (
            {
                "aws_account_id": "123456789012",
                "aws_regions": "eu-west-1",
                "aws_external_id": "abc",
            },
            "aws_external_id",
        ),
    ],
)
def test_invalid_aws_target_is_400_and_saves_nothing(member_client, deployment, data, field):
    response = member_client.post(reverse("deployment_aws", args=[deployment.pk]), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not deployment.aws_accounts.exists()


@pytest.fixture
def aws_deployment(deployment):
    AwsAccount.objects.create(
        deployment=deployment, account_id="123456789012", regions=["us-east-1"]
    )
    return deployment


def test_starting_probes_without_an_aws_target_explains_why(member_client, deployment):
    url = reverse("probe_run_start", args=[deployment.pk])
    response = member_client.post(url)
    assert response.status_code == 302
    assert response["Location"] == detail_url(deployment)
    assert "Add the AWS accounts and regions" in text(member_client.get(response["Location"]))
    response = member_client.post(url, headers=HTMX)
    assert response.status_code == 400
    assert not is_full_page(response)
    assert "Add the AWS accounts and regions" in text(response)
    assert not ProbeRun.objects.exists()


def test_run_probes_sits_at_the_top_of_the_checklist_as_a_form_that_also_posts_plainly(
    member_client, aws_deployment
):
    page = text(member_client.get(detail_url(aws_deployment)))
    # Under the title, above the sign-off block and the items.
    panel, signoff = page.index('id="probe-run-panel"'), page.index('id="signoff"')
    assert page.index("<h1>") < panel < signoff < page.index('class="checklist-layout"')
    url = reverse("probe_run_start", args=[aws_deployment.pk])
    form = re.search(rf'<form method="post" action="{url}"[^>]*>', page).group(0)
    # htmx disables the button while the request is in flight; the CSS swaps the labels.
    assert f'hx-post="{url}"' in form and 'hx-disabled-elt="find button"' in form
    assert 'class="run-probes-form"' in form
    button = page[page.index(form) :].split("</button>")[0]
    assert '<span class="idle-label">Run probes</span>' in button
    assert '<span class="busy-label">Starting…</span>' in button


def test_starting_probes_creates_a_run_and_a_second_click_joins_it(
    member_client, member, aws_deployment
):
    url = reverse("probe_run_start", args=[aws_deployment.pk])
    response = member_client.post(url)
    run = ProbeRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("probe_run_detail", args=[aws_deployment.pk, run.pk])
    assert (run.requested_by, run.state, [a["account_id"] for a in run.accounts]) == (
        member,
        ProbeRunState.QUEUED,
        ["123456789012"],
    )
    again = member_client.post(url)
    assert again["Location"] == response["Location"]
    assert ProbeRun.objects.count() == 1
    fragment = member_client.post(url, headers=HTMX)
    assert fragment.status_code == 200
    assert not is_full_page(fragment)
    assert 'id="probe-run-panel"' in text(fragment)


def test_probe_run_page_and_its_htmx_panel(member_client, deployment, run):
    url = reverse("probe_run_detail", args=[deployment.pk, run.pk])
    page = member_client.get(url)
    assert page.status_code == 200
    assert is_full_page(page)
    first = ProbeRun.objects.filter(deployment=deployment).order_by("created_at", "pk").first()
    assert first == run  # the deployment's first run, whatever its id on the server
    assert "<title>Probe run 1 ·" in text(page)
    assert f"of this deployment · #{run.pk} on this server" in text(page)
    panel = member_client.get(
        url, {"refresh": "1"}, headers={**HTMX, "HX-Target": "probe-run-panel"}
    )
    assert panel.status_code == 200
    assert not is_full_page(panel)
    assert text(panel).lstrip().startswith('<div id="probe-run-panel"')
    # The run finished while the page polled: the checklist reloads to show the verdicts.
    assert panel["HX-Refresh"] == "true"


def finished_run(deployment, user) -> ProbeRun:
    """A succeeded run of `deployment`: the tests below number runs across deployments."""
    return ProbeRun.objects.create(
        deployment=deployment,
        state=ProbeRunState.SUCCEEDED,
        finished_at=timezone.now(),
        requested_by=user,
    )


def test_the_panel_names_the_last_run_by_the_deployments_numbering(
    member_client, member, team, aws_deployment
):
    other = make_deployment(user=member, team=team)
    finished_run(aws_deployment, member)
    finished_run(other, member)  # ids count every deployment's
    last = finished_run(aws_deployment, member)
    link = reverse("probe_run_detail", args=[aws_deployment.pk, last.pk])
    said = (
        f'Last run: <a href="{link}">probe run 2</a> '
        f'<span class="muted">(#{last.pk} on this server)</span>, finished'
    )
    assert last.pk != 2
    assert said in text(member_client.get(detail_url(aws_deployment)))
    # The run's own page and its polled panel say the same.
    assert said in text(member_client.get(link))
    panel = member_client.get(link, headers={**HTMX, "HX-Target": "probe-run-panel"})
    assert said in text(panel)


def test_a_cancelled_runs_panel_names_it_by_the_deployments_numbering(
    member_client, aws_deployment, active_run
):
    url = reverse("probe_run_cancel", args=[aws_deployment.pk, active_run.pk])
    panel = text(member_client.post(url, headers=HTMX))
    assert f'probe run 1</a> <span class="muted">(#{active_run.pk} on this server)' in panel


def test_an_active_probe_run_panel_keeps_polling_without_refresh(member_client, aws_deployment):
    run = ProbeRun.objects.create(
        deployment=aws_deployment, state=ProbeRunState.RUNNING, total=4, completed=1
    )
    url = reverse("probe_run_detail", args=[aws_deployment.pk, run.pk])
    panel = member_client.get(
        url, {"refresh": "1"}, headers={**HTMX, "HX-Target": "probe-run-panel"}
    )
    assert panel.status_code == 200
    assert "HX-Refresh" not in panel
    assert 'hx-trigger="every 1s"' in text(panel)
    assert "1 of 4 checks done" in text(panel)


# Run control: regions per run, cancel, time left


def test_a_target_with_several_regions_offers_them_all_checked(member_client, aws_deployment):
    AwsAccount.objects.filter(deployment=aws_deployment).update(regions=["us-east-1", "eu-west-1"])
    page = text(member_client.get(detail_url(aws_deployment)))
    assert 'name="pick_regions"' in page
    for region in ("us-east-1", "eu-west-1"):
        assert f'name="regions" value="{region}" checked' in page


def test_a_target_with_one_region_has_no_picker(member_client, aws_deployment):
    assert 'name="regions"' not in text(member_client.get(detail_url(aws_deployment)))


def test_starting_a_run_in_the_regions_picked(member_client, aws_deployment):
    AwsAccount.objects.filter(deployment=aws_deployment).update(regions=["us-east-1", "eu-west-1"])
    url = reverse("probe_run_start", args=[aws_deployment.pk])
    response = member_client.post(url, {"pick_regions": "on", "regions": ["eu-west-1"]})
    assert response.status_code == 302
    assert ProbeRun.objects.get().regions == ["eu-west-1"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"pick_regions": "on"}, "Pick at least one region"),
        ({"pick_regions": "on", "regions": ["mars-1"]}, "mars-1 is not a region of this"),
        ({"regions": ["us-east-1", "<script>"]}, "is not a region of this"),
    ],
)
def test_a_bad_region_pick_is_refused_with_a_reason(member_client, aws_deployment, data, message):
    url = reverse("probe_run_start", args=[aws_deployment.pk])
    response = member_client.post(url, data, headers=HTMX)
    assert response.status_code == 400
    assert message in text(response) and "<script>" not in text(response)
    response = member_client.post(url, data)
    assert response.status_code == 302
    assert message in text(member_client.get(response["Location"]))
    assert not ProbeRun.objects.exists()


def test_an_active_run_shows_its_time_left_and_a_cancel_button(member_client, aws_deployment):
    from datetime import timedelta

    from django.utils import timezone

    run = ProbeRun.objects.create(
        deployment=aws_deployment,
        state=ProbeRunState.RUNNING,
        total=40,
        completed=10,
        started_at=timezone.now() - timedelta(seconds=30),
    )
    url = reverse("probe_run_detail", args=[aws_deployment.pk, run.pk])
    panel = text(member_client.get(url, headers={**HTMX, "HX-Target": "probe-run-panel"}))
    assert "about 90 s left" in panel or "about 2 min left" in panel
    assert reverse("probe_run_cancel", args=[aws_deployment.pk, run.pk]) in panel
    assert 'class="probe-eta"' in text(member_client.get(detail_url(aws_deployment)))


@pytest.fixture
def active_run(aws_deployment, member):
    from readiness.probe_runs import services

    run, _ = services.probe_run_start(deployment=aws_deployment, user=member)
    return run


def test_cancelling_a_run_from_its_page(member_client, aws_deployment, active_run):
    url = reverse("probe_run_cancel", args=[aws_deployment.pk, active_run.pk])
    response = member_client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "probe_run_detail", args=[aws_deployment.pk, active_run.pk]
    )
    page = text(member_client.get(response["Location"]))
    assert "Cancelled probe run" in page
    active_run.refresh_from_db()
    assert active_run.state == ProbeRunState.CANCELLED
    # Again: nothing changes, and the page says so.
    again = member_client.post(url)
    assert again.status_code == 302
    assert "was cancelled already" in text(member_client.get(again["Location"]))
    checklist_page = text(member_client.get(detail_url(aws_deployment)))
    assert "Cancelled by" in checklist_page


def test_cancelling_over_htmx_answers_the_panel(member_client, aws_deployment, active_run):
    url = reverse("probe_run_cancel", args=[aws_deployment.pk, active_run.pk])
    response = member_client.post(url, headers=HTMX)
    assert response.status_code == 200
    assert text(response).lstrip().startswith('<div id="probe-run-panel"')
    assert "Cancelled by" in text(response)


def test_cancelling_a_finished_run_is_a_conflict(member_client, deployment, run):
    url = reverse("probe_run_cancel", args=[deployment.pk, run.pk])
    for headers in ({}, HTMX):
        response = member_client.post(url, headers=headers)
        assert response.status_code == 409
        assert "already ended" in text(response)
    run.refresh_from_db()
    assert run.state == ProbeRunState.SUCCEEDED


def test_the_messages_name_the_run_by_the_deployments_numbering(
    member_client, member, team, aws_deployment
):
    from readiness.probe_runs import services

    other = make_deployment(user=member, team=team)
    ProbeRun.objects.create(deployment=other, requested_by=member)  # ids count every deployment's
    run, _ = services.probe_run_start(deployment=aws_deployment, user=member)
    assert run.pk != 1
    named = f"Probe run 1 (#{run.pk} on this server)"
    joined = member_client.post(reverse("probe_run_start", args=[aws_deployment.pk]))
    assert f"{named} was already running" in text(member_client.get(joined["Location"]))
    cancel = reverse("probe_run_cancel", args=[aws_deployment.pk, run.pk])
    cancelled = member_client.post(cancel)
    assert f"Cancelled probe run 1 (#{run.pk} on this server);" in text(
        member_client.get(cancelled["Location"])
    )
    again = member_client.post(cancel)
    assert f"{named} was cancelled already" in text(member_client.get(again["Location"]))


def test_a_conflict_names_the_run_by_the_deployments_numbering(
    member_client, member, team, aws_deployment
):
    other = make_deployment(user=member, team=team)
    finished_run(other, member)
    run = finished_run(aws_deployment, member)
    assert run.pk != 1
    url = reverse("probe_run_cancel", args=[aws_deployment.pk, run.pk])
    for headers in ({}, HTMX):
        response = member_client.post(url, headers=headers)
        assert response.status_code == 409
        assert f"Probe run 1 (#{run.pk} on this server) already ended" in text(response)


def test_cancel_is_post_only_and_hides_other_teams_runs(
    member_client, outsider_client, aws_deployment, active_run
):
    url = reverse("probe_run_cancel", args=[aws_deployment.pk, active_run.pk])
    assert member_client.get(url).status_code == 405
    assert outsider_client.post(url).status_code == 404
    missing = reverse("probe_run_cancel", args=[aws_deployment.pk, active_run.pk + 999])
    assert member_client.post(missing).status_code == 404
    active_run.refresh_from_db()
    assert active_run.is_active


# Run control: accounts per run, progress per account

WORKLOAD, LOGGING = "123456789012", "210987654321"


@pytest.fixture
def two_accounts(aws_deployment):
    AwsAccount.objects.filter(deployment=aws_deployment).update(name="workload")
    AwsAccount.objects.create(
        deployment=aws_deployment,
        account_id=LOGGING,
        name="logging",
        regions=["us-east-1"],
        role_arn=f"arn:aws:iam::{LOGGING}:role/ReadinessProbe",
    )
    return aws_deployment


def test_a_target_with_several_accounts_offers_them_all_checked(member_client, two_accounts):
    page = text(member_client.get(detail_url(two_accounts)))
    assert 'name="pick_accounts"' in page
    for account_id, name in ((WORKLOAD, "workload"), (LOGGING, "logging")):
        assert f'name="accounts" value="{account_id}" checked> {account_id} ({name})' in page


def test_a_target_with_one_account_has_no_account_picker(member_client, aws_deployment):
    assert 'name="accounts"' not in text(member_client.get(detail_url(aws_deployment)))


def test_starting_a_run_in_the_accounts_picked(member_client, two_accounts):
    url = reverse("probe_run_start", args=[two_accounts.pk])
    response = member_client.post(url, {"pick_accounts": "on", "accounts": [LOGGING]})
    assert response.status_code == 302
    run = ProbeRun.objects.get()
    assert [account["account_id"] for account in run.accounts] == [LOGGING]
    assert run.partial
    # The panel shows each account's progress while it runs.
    panel = text(member_client.get(response["Location"]))
    assert "Progress per account" not in panel  # one account read: the bar says it all


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"pick_accounts": "on"}, "Pick at least one account"),
        ({"pick_accounts": "on", "accounts": ["999999999999"]}, "999999999999 is not an account"),
        ({"accounts": [WORKLOAD, "<script>"]}, "is not an account of this"),
    ],
)
def test_a_bad_account_pick_is_refused_with_a_reason(member_client, two_accounts, data, message):
    url = reverse("probe_run_start", args=[two_accounts.pk])
    response = member_client.post(url, data, headers=HTMX)
    assert response.status_code == 400
    assert message in text(response) and "<script>" not in text(response)
    response = member_client.post(url, data)
    assert response.status_code == 302
    assert message in text(member_client.get(response["Location"]))
    assert not ProbeRun.objects.exists()


def test_the_panel_shows_progress_per_account(member_client, two_accounts, member):
    from readiness.probe_runs import services
    from readiness.probe_runs.models import ProbeOutcome, ProbeResultState

    run, _ = services.probe_run_start(deployment=two_accounts, user=member)
    first = run.results.filter(account_id=LOGGING).order_by("pk")[:2]
    run.results.filter(pk__in=[r.pk for r in first]).update(
        state=ProbeResultState.DONE, status=ProbeOutcome.FAIL
    )
    per_account = run.results.filter(account_id=LOGGING).count()
    url = reverse("probe_run_detail", args=[two_accounts.pk, run.pk])
    panel = text(member_client.get(url, headers={**HTMX, "HX-Target": "probe-run-panel"}))
    rows = re.findall(r"<tr><td><code>(\d+)</code> · (\w+)</td><td>(\d+) of (\d+)</td>", panel)
    assert rows == [
        (WORKLOAD, "workload", "0", str(per_account)),
        (LOGGING, "logging", "2", str(per_account)),
    ]
    assert "2 failed" in panel


def test_a_partial_run_says_what_it_read_and_what_it_may_claim(member_client, two_accounts, member):
    run = ProbeRun.objects.create(
        deployment=two_accounts,
        requested_by=member,
        state=ProbeRunState.SUCCEEDED,
        regions=["us-east-1"],
        accounts=[
            {"account_id": LOGGING, "name": "logging", "role_arn": "", "regions": ["us-east-1"]}
        ],
        partial=True,
    )
    page = text(member_client.get(reverse("probe_run_detail", args=[two_accounts.pk, run.pk])))
    assert f"account <code>{LOGGING}</code> · logging in us-east-1" in page
    assert "A run over part of the AWS target:" in page
    checklist = text(member_client.get(detail_url(two_accounts)))
    assert f"It read part of the AWS target ({LOGGING} in us-east-1)" in checklist


@pytest.mark.parametrize("accounts", [1, 3])
def test_the_polled_panel_queries_stay_flat_in_the_accounts(
    member_client, aws_deployment, member, django_assert_num_queries, accounts
):
    from readiness.probe_runs import services

    for n in range(1, accounts):
        AwsAccount.objects.create(
            deployment=aws_deployment,
            account_id=f"{n}" * 12,
            regions=["us-east-1"],
            role_arn=f"arn:aws:iam::{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}:role/ReadinessProbe",
        )
    run, _ = services.probe_run_start(deployment=aws_deployment, user=member)
    url = reverse("probe_run_detail", args=[aws_deployment.pk, run.pk])
    member_client.get(url, headers={**HTMX, "HX-Target": "probe-run-panel"})  # session warmed
    with django_assert_num_queries(PANEL_QUERIES):
        member_client.get(url, headers={**HTMX, "HX-Target": "probe-run-panel"})


# Session and user, deployment, run, counts, progress per account.
PANEL_QUERIES = 6
