"""Run probes from the browser: a real worker, the moto account, the progress bar, evidence."""

import json

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import Page, expect

from readiness.checklists import services
from readiness.checklists.models import ChecklistItem, ItemStatus
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeRun
from readiness.project.celery import app as celery_app
from tests.e2e.test_checklist_flow import item_article, log_in
from tests.factories import TeamFactory, UserFactory, make_deployment

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
    services.deployment_set_aws_target(
        deployment=deployment,
        user=user,
        aws_account_id="123456789012",
        aws_regions=["us-east-1"],
    )
    # moto loads each AWS service on its first call: a cold run takes seconds, not the
    # fraction of a second a warm one does.
    page.set_default_timeout(60_000)
    log_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")

    page.get_by_role("button", name="Run probes").click()
    # expect() keeps its own 5 s default; on a busy machine the first answer takes longer.
    expect(page.get_by_role("progressbar", name="Probe run progress")).to_be_visible(timeout=60_000)
    # The panel polls while the run is active, then reloads the page with the results.
    expect(page.get_by_text("Last run #")).to_be_visible(timeout=60_000)
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
