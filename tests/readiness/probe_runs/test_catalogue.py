"""The probe catalogue, the least-privilege policy built from the probes' declared actions,
and each deployment's trust policy."""

import json
from html import unescape

import pytest
from django.urls import reverse

from readiness.checklists.models import AwsAccount, ChecklistItem, TemplateItem
from readiness.dev.demo_aws import seed_account
from readiness.probe_runs import catalogue
from readiness.probes.base import (
    CallRecorder,
    Probe,
    ProbeContext,
    ProbeSettings,
    Scope,
    Severity,
    action_of,
    execute,
    record_calls,
    registry,
)
from readiness.probes.runner import plan
from tests.conftest import REGION

WORKER = "arn:aws:iam::111122223333:role/readiness-worker"


def _urls(deployment):
    return [
        reverse("probe_catalogue"),
        reverse("probe_policy"),
        reverse("deployment_trust_policy", args=[deployment.pk, "123456789012"]),
    ]


def _account(deployment, account_id="123456789012", external_id=""):
    return AwsAccount.objects.create(
        deployment=deployment,
        account_id=account_id,
        regions=["us-east-1"],
        role_arn=f"arn:aws:iam::{account_id}:role/ReadinessProbe",
        external_id=external_id,
    )


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(client, deployment):
    for url in _urls(deployment):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url


@pytest.mark.django_db
def test_every_registered_probe_belongs_to_an_item_of_the_seed_checklist():
    items = set(TemplateItem.objects.values_list("section__title", "title"))
    strays = [
        f"{probe.key}: {probe.section} / {probe.item}"
        for probe in registry().values()
        if (probe.section, probe.item) not in items
    ]
    assert strays == []


@pytest.mark.django_db
def test_the_catalogue_shows_every_probe_and_says_manual_plainly(outsider_client):
    # Any signed-in person may read it: it is about the app, not about a team's data.
    page = outsider_client.get(reverse("probe_catalogue"))
    assert page.status_code == 200
    html = page.content.decode()
    for probe in registry().values():
        assert f'id="probe-{probe.key}"' in html, probe.key
        assert probe.remediation.split("`")[0][:40] in unescape(html)
    for manual in ("Penetration Test", "Load Testing", "Database Indexing", "On-Call Rotation"):
        block = html.split(f"<h3>{manual}", 1)[1].split("</h3>", 1)[0]
        assert "manual" in block, manual
    assert "backup_retention_days</code> = 7" in html
    assert "readiness-probes-policy.json" in html


@pytest.mark.django_db
def test_the_catalogue_uses_the_configured_thresholds(member_client, settings):
    settings.PROBE_SETTINGS = {"backup_retention_days": 35}
    html = member_client.get(reverse("probe_catalogue")).content.decode()
    assert "backup_retention_days</code> = 35" in html


def test_the_policy_is_every_declared_action_and_read_only():
    policy = catalogue.permissions_policy()
    (statement,) = policy["Statement"]
    declared = {action for probe in registry().values() for action in probe.actions}
    assert set(statement["Action"]) == declared
    assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
    assert all(catalogue.is_read_only(action) for action in statement["Action"])
    assert catalogue.compact_size(policy) <= catalogue.MANAGED_POLICY_MAX_CHARS


def test_a_probe_declaring_a_write_action_makes_the_policy_refuse():
    writer = Probe(
        key="test.writer",
        section="Security",
        item="IAM Policies",
        title="writes",
        actions=("iam:ListUsers", "iam:DeleteUser"),
        scope=Scope.GLOBAL,
        severity=Severity.LOW,
        remediation="",
        check=lambda context: None,
    )
    with pytest.raises(ValueError, match="iam:DeleteUser"):
        catalogue.permissions_policy([writer])


@pytest.mark.django_db
def test_the_policy_downloads_as_json(member_client):
    response = member_client.get(reverse("probe_policy"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content) == catalogue.permissions_policy()


@pytest.mark.django_db
def test_the_trust_policy_names_the_workers_and_the_external_id(
    member_client, deployment, settings
):
    settings.PROBE_WORKER_PRINCIPAL = WORKER
    _account(deployment, "123456789012", external_id="readiness-7f3a")
    _account(deployment, "210987654321", external_id="readiness-logging")
    for account_id, external_id in (
        ("123456789012", "readiness-7f3a"),
        ("210987654321", "readiness-logging"),
    ):
        url = reverse("deployment_trust_policy", args=[deployment.pk, account_id])
        response = member_client.get(url)
        assert response.status_code == 200
        assert account_id in response["Content-Disposition"]
        (statement,) = json.loads(response.content)["Statement"]
        assert statement["Principal"] == {"AWS": WORKER}
        assert statement["Action"] == "sts:AssumeRole"
        assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": external_id}}
    page = member_client.get(reverse("deployment_aws", args=[deployment.pk])).content.decode()
    # Each account's own trust policy, each naming the workers.
    assert "readiness-7f3a" in page and "readiness-logging" in page
    assert page.count(f"&quot;{WORKER}&quot;") == 2
    assert 'id="policies-123456789012"' in page and 'id="policies-210987654321"' in page


@pytest.mark.django_db
def test_without_principal_or_external_id_the_trust_policy_says_what_is_missing(
    member_client, deployment, settings
):
    settings.PROBE_WORKER_PRINCIPAL = ""
    _account(deployment)
    response = member_client.get(
        reverse("deployment_trust_policy", args=[deployment.pk, "123456789012"])
    )
    assert response.status_code == 409
    text = response.content.decode()
    assert "PROBE_WORKER_PRINCIPAL" in text and "no external id" in text
    page = member_client.get(reverse("deployment_aws", args=[deployment.pk])).content.decode()
    assert "not available yet" in page


@pytest.mark.django_db
def test_another_teams_trust_policy_is_not_found(outsider_client, deployment, settings):
    settings.PROBE_WORKER_PRINCIPAL = WORKER
    _account(deployment, external_id="readiness-7f3a")
    response = outsider_client.get(
        reverse("deployment_trust_policy", args=[deployment.pk, "123456789012"])
    )
    assert response.status_code == 404


@pytest.mark.django_db
def test_an_account_not_in_the_target_has_no_trust_policy(member_client, deployment, settings):
    settings.PROBE_WORKER_PRINCIPAL = WORKER
    _account(deployment, external_id="readiness-7f3a")
    for account_id in ("999999999999", "not-an-account"):
        url = reverse("deployment_trust_policy", args=[deployment.pk, account_id])
        assert member_client.get(url).status_code == 404


def test_the_workers_principal_setting_must_be_an_arn(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import readiness.project.settings as module

    monkeypatch.setenv("PROBE_WORKER_PRINCIPAL", "readiness-worker")
    try:
        with pytest.raises(ImproperlyConfigured, match="PROBE_WORKER_PRINCIPAL"):
            importlib.reload(module)
    finally:
        monkeypatch.delenv("PROBE_WORKER_PRINCIPAL")
        importlib.reload(module)


def test_every_call_on_the_demo_account_is_covered_by_the_declared_actions(moto_server, aws):
    """The whole suite against a populated account (every probe reaches its per-resource
    calls there), recording each AWS call: the published policy must cover all of them."""
    seed_account(moto_server, regions=(REGION, "eu-west-1"))
    recorder = CallRecorder()
    record_calls(recorder)
    try:
        settings = ProbeSettings(approved_regions=(REGION,))
        for probe, region in plan(registry().values(), [REGION, "eu-west-1"]):
            execute(
                probe,
                ProbeContext(session=aws, region=region, settings=settings, max_attempts=1),
            )
    finally:
        record_calls(None)
    allowed = set(catalogue.permissions_policy()["Statement"][0]["Action"])
    made = {action_of((service, operation)) for _, service, operation in recorder.calls}
    assert len(recorder.calls) > 50
    assert made - allowed == set()
    probes_calling = {key for key, _, _ in recorder.calls}
    assert probes_calling == set(registry())


def test_thresholds_are_found_in_the_probe_code():
    probes = registry()
    assert "backup_retention_days" in catalogue.thresholds_of(probes["backup.strategy"])


@pytest.mark.django_db
def test_the_checklist_page_marks_items_no_api_can_prove_as_manual(member_client, deployment):
    html = member_client.get(reverse("deployment_detail", args=[deployment.pk])).content.decode()

    def row(title):
        return html.split(f">{title}", 1)[1].split("</summary>", 1)[0]

    def card(title):
        item = ChecklistItem.objects.get(section__deployment=deployment, title=title)
        url = reverse("item_update", args=[deployment.pk, item.pk])
        return member_client.get(url).content.decode()

    # The rows flag it; the item's card says why.
    assert "Manual check" in row("Penetration Test")
    assert "Manual check" in row("On-Call Rotation")
    assert "Manual check" not in row("IAM Policies")
    assert "Manual check." in card("Penetration Test")
    assert "Manual check." not in card("IAM Policies")
    assert "Verifiable by" in card("IAM Policies")


@pytest.mark.django_db
def test_the_record_says_manual_for_items_only_supporting_evidence_touches(deployment):
    from signoff.records.snapshot import record_snapshot

    snapshot = record_snapshot(deployment, record_id="manual")
    lines = {item.title: item for section in snapshot.sections for item in section.items}
    assert lines["Runbook"].manual  # SSM runbooks support it; a person decides it
    assert lines["Penetration Test"].manual
    assert not lines["IAM Policies"].manual
    assert not lines["Budget Alerts"].manual
