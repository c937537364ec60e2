"""Scheduled re-probes and drift: a verdict that moves after signing makes the signature of
the role owning it stale, with the drift dated and named; an error changes nothing."""

from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from readiness.audit.models import AuditEvent
from readiness.checklists.models import ChecklistItem, DecisionSource, DeploymentState, ItemStatus
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeRun, ProbeRunTrigger
from signoff.lifecycle import services as signoff_services
from signoff.signatures.selectors import standing_of
from tests.factories import make_deployment
from tests.readiness.probe_runs.test_probe_runs import execute_all, target
from tests.signoff_helpers import approve_all, role, signers_for

SG_PROBE = "network.security_groups"


def _open_ssh_to_the_world(aws) -> str:
    ec2 = aws.client("ec2")
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    return group


def _approved(deployment, team, member, aws):
    """Probed (security groups pass on the fresh account, with an instance using the default
    group), decided by people item by item, and signed by all four."""
    signers = signers_for(team)
    aws.client("ec2").run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    target(deployment)
    run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    execute_all(run)
    sg = run.results.get(probe_key=SG_PROBE, region="us-east-1")
    assert sg.status == "pass", sg.summary
    ChecklistItem.objects.filter(section__deployment=deployment).update(
        status=ItemStatus.DONE, source=DecisionSource.PERSON
    )
    approve_all(deployment, signers)
    assert deployment.state == DeploymentState.APPROVED
    return signers


def _reprobe() -> ProbeRun:
    outcome = probe_runs.reprobe_watched()
    assert len(outcome["started"]) == 1, outcome
    return execute_all(ProbeRun.objects.get(pk=outcome["started"][0]))


@pytest.mark.django_db
def test_a_scheduled_reprobe_turns_the_owning_role_stale_with_the_drift(
    aws, deployment, team, member, client, django_capture_on_commit_callbacks
):
    signers = _approved(deployment, team, member, aws)
    group = _open_ssh_to_the_world(aws)

    with django_capture_on_commit_callbacks() as callbacks:
        run = _reprobe()
    assert run.trigger == ProbeRunTrigger.SCHEDULE and run.requested_by is None

    security = standing_of(deployment, role("security"))
    assert security.status == "stale"
    today = timezone.now().date().isoformat()
    drift = [change for change in security.changes if SG_PROBE in change]
    assert drift == [
        f"Security Groups: probe {SG_PROBE} [us-east-1] pass at signing → fail on {today}: "
        f"{group}: " + drift[0].split(f"{group}: ", 1)[1]
    ]
    assert "0.0.0.0/0" in drift[0] and "22" in drift[0]

    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.IN_REVIEW  # an approval that no longer holds
    event = AuditEvent.objects.get(
        action="signoff.stale", object_id=str(security.active.pk), deployment=deployment
    )
    assert drift[0] in event.after["changes"]
    started = AuditEvent.objects.get(action="probe_run.started", object_id=str(run.pk))
    assert started.actor is None and started.after["trigger"] == "schedule"
    assert callbacks, "the stale notification is enqueued after commit"

    client.force_login(signers["security"])
    page = client.get(reverse("role_detail", args=[deployment.pk, "security"]))
    assert page.status_code == 200
    assert drift[0] in " ".join(unescape(strip_tags(page.content.decode())).split())


@pytest.mark.django_db
def test_drift_on_a_deployed_release_is_recorded_and_it_stays_deployed(
    aws, deployment, team, member
):
    signers = _approved(deployment, team, member, aws)
    signoff_services.deployment_mark_deployed(
        deployment=deployment, user=signers["devops"], deployed_at=timezone.now()
    )
    _open_ssh_to_the_world(aws)
    _reprobe()
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.DEPLOYED
    security = standing_of(deployment, role("security"))
    assert security.status == "stale"
    assert AuditEvent.objects.filter(
        action="signoff.stale", object_id=str(security.active.pk)
    ).exists()


@pytest.mark.django_db
def test_a_reprobe_that_only_changes_counts_changes_nothing(aws, deployment, team, member):
    _approved(deployment, team, member, aws)
    # Another passing resource: the summary's count moves, the verdict does not.
    aws.client("ec2").create_security_group(GroupName="web", Description="no ingress")
    run = _reprobe()
    assert run.results.get(probe_key=SG_PROBE, region="us-east-1").status == "pass"
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.APPROVED
    assert not AuditEvent.objects.filter(action="signoff.stale").exists()


@pytest.mark.django_db
def test_a_reprobe_that_errors_makes_nothing_stale_and_is_reported(
    aws, deployment, team, member, monkeypatch, django_capture_on_commit_callbacks
):
    _approved(deployment, team, member, aws)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setattr("django.conf.settings.PROBE_CALL_TIMEOUT", 1.0)
    monkeypatch.setattr("django.conf.settings.PROBE_MAX_ATTEMPTS", 1)
    probe_runs._sessions.clear()
    with django_capture_on_commit_callbacks() as callbacks:
        run = _reprobe()
    assert set(run.results.values_list("status", flat=True)) == {"error"}

    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.APPROVED
    for slug in ("tech-lead", "security", "devops", "product"):
        assert standing_of(deployment, role(slug)).fresh, slug
    assert not AuditEvent.objects.filter(action="signoff.stale").exists()
    reported = AuditEvent.objects.get(action="probe_run.errors", object_id=str(run.pk))
    assert reported.after["errors"] == run.total
    assert "connect" in reported.reason.lower()
    assert callbacks, "the owner is told after commit"


@pytest.mark.django_db
def test_reprobe_errors_are_mailed_to_the_owner_only(deployment, team, member, settings):
    from signoff.notifications.services import notification_compose

    signers_for(team)
    message = notification_compose(
        "reprobe_errors",
        deployment_id=deployment.pk,
        changes=["iam.mfa [global]: Could not connect to the endpoint"],
    )
    assert message.recipients == (member.email,)
    assert "could not check 1 probe" in message.body
    assert "iam.mfa [global]: Could not connect" in message.body


@pytest.mark.django_db
def test_the_schedule_watches_approved_and_the_newest_deployed_release(aws, member, team):
    signers = signers_for(team)

    def approved(version: str, **fields):
        deployment = make_deployment(user=member, team=team, version=version, **fields)
        target(deployment)
        approve_all(deployment, signers)
        return deployment

    older = approved("1.0.0")
    signoff_services.deployment_mark_deployed(
        deployment=older, user=member, deployed_at=timezone.now() - timezone.timedelta(days=9)
    )
    newer = approved("1.1.0")
    signoff_services.deployment_mark_deployed(
        deployment=newer, user=member, deployed_at=timezone.now()
    )
    waiting = approved("1.2.0")
    staging = approved("1.2.0", environment="staging")
    draft = make_deployment(user=member, team=team, version="1.3.0")
    target(draft)
    no_target = make_deployment(user=member, team=team, version="1.4.0")
    approve_all(no_target, signers)

    watched = {d.pk for d in probe_runs.watched_deployments()}
    assert watched == {newer.pk, waiting.pk, staging.pk}
    assert older.pk not in watched and draft.pk not in watched and no_target.pk not in watched


@pytest.mark.django_db
def test_a_second_schedule_tick_joins_the_run_still_going(aws, deployment, team, member):
    _approved(deployment, team, member, aws)
    first = probe_runs.reprobe_watched()
    second = probe_runs.reprobe_watched()
    assert second == {"started": [], "joined": first["started"], "failed": []}


def test_the_reprobe_schedule_is_a_crontab_setting():
    from django.core.exceptions import ImproperlyConfigured

    from readiness.project.settings import crontab_of

    assert str(crontab_of("REPROBE_SCHEDULE", "30 2 * * 1-5")).startswith("<crontab: 30 2 *")
    for wrong in ("daily", "0 4 * *", "61 4 * * *"):
        with pytest.raises(ImproperlyConfigured, match="REPROBE_SCHEDULE"):
            crontab_of("REPROBE_SCHEDULE", wrong)
