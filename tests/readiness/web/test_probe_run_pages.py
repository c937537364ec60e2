"""The AWS target page, starting probes, and the probe run page with its polling panel."""

import re

import pytest
from django.urls import reverse

from readiness.checklists.models import AwsAccount
from readiness.probe_runs.models import ProbeRun, ProbeRunState
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
    assert f"Probe run #{run.pk}" in text(page)
    panel = member_client.get(
        url, {"refresh": "1"}, headers={**HTMX, "HX-Target": "probe-run-panel"}
    )
    assert panel.status_code == 200
    assert not is_full_page(panel)
    assert text(panel).lstrip().startswith('<div id="probe-run-panel"')
    # The run finished while the page polled: the checklist reloads to show the verdicts.
    assert panel["HX-Refresh"] == "true"


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
