"""Run probes from the browser: a real worker, the moto account, the progress bar, evidence."""

import json

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import Page, expect

from readiness.checklists.models import AwsAccount, ChecklistItem, ItemStatus
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeRun
from readiness.project.celery import app as celery_app
from tests.e2e.test_checklist_flow import item_article, log_in
from tests.factories import TeamFactory, UserFactory, make_deployment, set_aws_target

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ADMIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@pytest.fixture
def worker(aws):
    probe_runs._sessions.clear()
    with start_worker(
        celery_app, pool="threads", concurrency=8, perform_ping_check=False, shutdown_timeout=30
    ):
        yield


def test_run_probes_fills_the_bar_and_shows_evidence_on_items(page: Page, live_server, aws, worker):
    iam = aws.client("iam")
    iam.create_user(UserName="legacy-admin")
    iam.put_user_policy(UserName="legacy-admin", PolicyName="all", PolicyDocument=json.dumps(ADMIN))
    user = UserFactory(username="sam")
    team = TeamFactory(name="Payments", slug="payments", members=[user])
    deployment = make_deployment(user=user, team=team)
    set_aws_target(deployment, user=user)
    # moto loads each AWS service on its first call: a cold run takes seconds, not the
    # fraction of a second a warm one does.
    page.set_default_timeout(60_000)
    log_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")

    # Run probes is at the top: above the sign-off block, in view without scrolling.
    button = page.get_by_role("button", name="Run probes", exact=True)
    box = button.bounding_box()
    assert box["y"] + box["height"] <= page.viewport_size["height"]
    assert box["y"] < page.locator("#signoff").bounding_box()["y"]

    # A click answers at once: the start request is held until the page was looked at.
    held = []
    page.route("**/probes/", lambda route: held.append(route))
    starting = page.get_by_role("button", name="Starting…", exact=True)
    expect(starting).to_have_count(0)
    button.click()
    expect(starting).to_be_visible()
    expect(starting).to_be_disabled()
    assert held and held[0].request.method == "POST"
    assert not ProbeRun.objects.filter(deployment=deployment).exists()
    held[0].continue_()
    page.unroute("**/probes/")
    # expect() keeps its own 5 s default; on a busy machine the first answer takes longer.
    expect(page.get_by_role("progressbar", name="Probe run progress")).to_be_visible(timeout=60_000)
    # The panel polls while the run is active, then reloads the page with the results.
    expect(page.get_by_text("Last run: probe run 1")).to_be_visible(timeout=60_000)
    run = ProbeRun.objects.get(deployment=deployment)
    assert run.state == "succeeded" and run.completed == run.total

    iam_item = item_article(page, "IAM Policies")
    expect(iam_item.locator(".status-pill")).to_have_text("Failed · by probe")
    # A probe's failure opens its evidence on the item without a click.
    expect(iam_item.get_by_text("user/legacy-admin")).to_be_visible()
    expect(iam_item.get_by_text("What to change:")).to_be_visible()
    assert (
        ChecklistItem.objects.get(section__deployment=deployment, title="IAM Policies").status
        == ItemStatus.FAILED
    )


def test_a_refused_start_says_why_in_the_panel(page: Page, live_server):
    user = UserFactory(username="sam")
    team = TeamFactory(name="Payments", slug="payments", members=[user])
    deployment = make_deployment(user=user, team=team)
    AwsAccount.objects.create(
        deployment=deployment, account_id="123456789012", regions=["us-east-1"]
    )
    log_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    # Someone removes the AWS target after this page was loaded: the start is refused (400)
    # and the panel says why, instead of a button that seems to do nothing.
    AwsAccount.objects.filter(deployment=deployment).delete()
    page.get_by_role("button", name="Run probes", exact=True).click()
    expect(page.locator("#probe-run-panel [role=alert]")).to_have_text(
        "Add the AWS accounts and regions of this deployment first."
    )
    assert not ProbeRun.objects.filter(deployment=deployment).exists()
