"""The pipeline API: tokens, scopes, team isolation, deployments, checklist, probe runs,
evidence, the gate, the schema."""

import hashlib
import json

import pytest
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile
from django.templatetags.static import static
from django.test import Client
from django.urls import reverse

from readiness.api import tokens
from readiness.api.models import ApiToken
from readiness.audit.models import AuditEvent
from readiness.checklists.models import (
    ChecklistItem,
    DecisionSource,
    Deployment,
    DeploymentState,
    ItemStatus,
)
from readiness.evidence.models import Evidence
from readiness.probe_runs.models import ProbeRunTrigger
from signoff.signatures.selectors import standing_of
from tests.factories import make_deployment, set_aws_target
from tests.readiness.api import samples
from tests.signoff_helpers import approve_all, complete_items, signers_for

BASE = "/api/v1"


def item(deployment, title) -> ChecklistItem:
    return ChecklistItem.objects.get(section__deployment=deployment, title=title)


def upload(api, deployment, kind, data: bytes, name="report", **extra):
    return api.post(
        f"{BASE}/deployments/{deployment.pk}/evidence",
        data={"kind": kind, "file": SimpleUploadedFile(name, data), **extra},
    )


# --- Authentication and tokens -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Bearer rdy_unknown", "Basic eDp5"])
def test_requests_without_a_valid_token_get_401_json_not_a_login_page(client, deployment, header):
    headers = {"Authorization": header} if header else {}
    for path in (
        f"{BASE}/deployments",
        f"{BASE}/deployments/{deployment.pk}/gate",
        f"{BASE}/deployments/{deployment.pk}/checklist",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, path
        assert response["Content-Type"].startswith("application/json")
        assert "Bearer" in response.json()["detail"]
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_a_token_is_shown_once_stored_hashed_and_revocable(client, member, team, deployment):
    client.force_login(member)
    page = client.post(reverse("token_list"), {"name": "GitHub Actions", "scope": "write"})
    assert page.status_code == 200
    raw = page.context["created"]["raw"]
    assert raw.startswith("rdy_") and raw in page.content.decode()
    assert page["Cache-Control"].startswith("max-age=0")
    token = ApiToken.objects.get(user=member, name="GitHub Actions")
    assert token.token_sha256 == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in json.dumps(list(ApiToken.objects.values()), default=str)
    listing = client.get(reverse("token_list")).content.decode()
    assert "GitHub Actions" in listing and raw not in listing and token.prefix in listing

    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get(f"{BASE}/deployments", headers=headers).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None

    revoked = client.post(reverse("token_revoke", args=[token.pk]))
    assert revoked.status_code == 302
    assert client.get(f"{BASE}/deployments", headers=headers).status_code == 401
    actions = list(
        AuditEvent.objects.filter(object_id=str(token.pk), object_type="api.apitoken")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["api_token.created", "api.request", "api_token.revoked"]


@pytest.mark.django_db
def test_token_pages_need_a_login_and_tokens_are_personal(client, member, outsider, team):
    assert client.get(reverse("token_list")).status_code == 302
    token, _ = tokens.token_create(user=member, name="mine", scope="read")
    client.force_login(outsider)
    assert client.post(reverse("token_revoke", args=[token.pk])).status_code == 404
    assert "mine" not in client.get(reverse("token_list")).content.decode()
    token.refresh_from_db()
    assert token.is_active


@pytest.mark.django_db
def test_a_token_needs_a_name_and_a_known_scope(client, member, team):
    client.force_login(member)
    response = client.post(reverse("token_list"), {"name": "  ", "scope": "admin"})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()
    tokens.token_create(user=member, name="CI", scope="read")
    again = client.post(reverse("token_list"), {"name": "CI", "scope": "read"})
    assert again.status_code == 400 and "already have" in again.content.decode()


@pytest.mark.django_db
def test_a_read_token_cannot_write(read_api, deployment):
    response = read_api.post(
        f"{BASE}/deployments", json={"service": "x", "environment": "prod", "version": "1"}
    )
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    assert upload(read_api, deployment, "cobertura", samples.cobertura(9, 10)).status_code == 403
    assert read_api.get(f"{BASE}/deployments/{deployment.pk}/gate").status_code == 409


# --- Deployments -------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_teams_deployment_does_not_exist(outsider_api, deployment):
    for path in ("", "/checklist", "/gate", "/evidence"):
        response = outsider_api.get(f"{BASE}/deployments/{deployment.pk}{path}")
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Not found."}
    assert outsider_api.post(f"{BASE}/deployments/{deployment.pk}/probe-runs").status_code == 404
    assert (
        upload(outsider_api, deployment, "cobertura", samples.cobertura(9, 10)).status_code == 404
    )
    assert outsider_api.get(f"{BASE}/deployments").json()["count"] == 0


@pytest.mark.django_db
def test_deployments_list_pages_and_filters(api, member, team, settings):
    for n in range(3):
        make_deployment(user=member, team=team, service="payments-api", version=f"1.{n}")
    make_deployment(user=member, team=team, service="ledger", environment="staging")
    everything = api.get(f"{BASE}/deployments").json()
    assert everything["count"] == 4
    only = api.get(f"{BASE}/deployments", service="payments-api").json()
    assert only["count"] == 3 and {d["service"] for d in only["items"]} == {"payments-api"}
    staging = api.get(f"{BASE}/deployments", environment="staging", state="draft").json()
    assert [d["service"] for d in staging["items"]] == ["ledger"]
    assert api.get(f"{BASE}/deployments", state="bogus").status_code == 400
    assert api.get(f"{BASE}/deployments", page=0).status_code == 400


@pytest.mark.django_db
def test_create_a_deployment_from_the_default_template(api, member, team):
    response = api.post(
        f"{BASE}/deployments",
        json={"service": "payments-api", "environment": "production", "version": "2.5.0"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    deployment = Deployment.objects.get(pk=body["id"])
    assert deployment.owner == member and deployment.team == team
    assert body["state"] == "draft" and body["team"] == team.slug
    assert ChecklistItem.objects.filter(section__deployment=deployment).count() == 56
    event = AuditEvent.objects.get(action="deployment.created", object_id=str(deployment.pk))
    assert event.after["via"].startswith("API token “CI deploy”")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"environment": "production", "version": "1"}, "service"),
        ({"service": "a b/c", "environment": "production", "version": "1"}, "service"),
        ({"service": "x", "environment": "prod", "version": "1", "planned_date": "soon"}, "date"),
        ({"service": "x", "environment": "prod", "version": "1", "planned_date": 0}, "date"),
        (
            {"service": "x", "environment": "prod", "version": "1", "planned_date": "0001-01-01"},
            "date",
        ),
        (
            {"service": "x", "environment": "prod", "version": "1", "planned_date": "9999-12-31"},
            "date",
        ),
        ({"service": "x", "environment": "prod", "version": "1", "team": "nope"}, "team"),
        ({"service": "x", "environment": "prod", "version": "1", "template_id": 999}, "template"),
        ({"service": "x" * 101, "environment": "prod", "version": "1"}, "service"),
    ],
)
def test_bad_deployment_input_is_a_precise_400(api, payload, field):
    response = api.post(f"{BASE}/deployments", json=payload)
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"].lower() or field in json.dumps(
        response.json().get("errors")
    )
    assert not Deployment.objects.exists()


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_a_400(api):
    response = api.client.post(
        f"{BASE}/deployments", "service=x", content_type="text/plain", headers=api.headers
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_the_checklist_reads_every_item_with_status_and_manual_flag(api, deployment):
    body = api.get(f"{BASE}/deployments/{deployment.pk}/checklist").json()
    items = [i for section in body["sections"] for i in section["items"]]
    assert len(body["sections"]) == 9 and len(items) == 56
    by_title = {i["title"]: i for i in items}
    assert by_title["Penetration Test"]["manual"] is True
    assert by_title["IAM Policies"]["manual"] is False
    assert by_title["IAM Policies"]["status"] == "open"


# --- Probe runs --------------------------------------------------------------------------


@pytest.mark.django_db
def test_probe_runs_start_through_the_api_and_report_progress(api, deployment, aws):
    no_target = api.post(f"{BASE}/deployments/{deployment.pk}/probe-runs")
    assert no_target.status_code == 400 and "AWS account" in no_target.json()["detail"]
    set_aws_target(deployment)
    started = api.post(f"{BASE}/deployments/{deployment.pk}/probe-runs")
    assert started.status_code == 202
    run = started.json()
    assert run["trigger"] == ProbeRunTrigger.API and run["total"] > 0
    assert run["accounts"] == ["123456789012"]
    joined = api.post(f"{BASE}/deployments/{deployment.pk}/probe-runs")
    assert joined.status_code == 200 and joined.json()["id"] == run["id"]
    progress = api.get(run["url"])
    assert progress.status_code == 200 and progress.json()["completed"] == 0
    assert api.get(f"{BASE}/deployments/{deployment.pk}/probe-runs/99999").status_code == 404


@pytest.mark.django_db
def test_a_run_started_through_the_api_reads_the_regions_asked_for(api, deployment):
    set_aws_target(deployment, regions=["us-east-1", "eu-west-1"])
    url = f"{BASE}/deployments/{deployment.pk}/probe-runs"
    refused = api.post(url, json={"regions": ["ap-south-1"]})
    assert refused.status_code == 400
    assert "ap-south-1" in refused.json()["detail"]
    assert refused.json()["errors"] == {"regions": [refused.json()["detail"]]}
    assert api.post(url, json={"regions": []}).status_code == 400
    assert api.post(url, json={"regions": "eu-west-1"}).status_code == 400
    started = api.post(url, json={"regions": ["eu-west-1"]})
    assert started.status_code == 202
    assert started.json()["regions"] == ["eu-west-1"]
    assert started.json()["eta_seconds"] is None


@pytest.mark.django_db
def test_a_run_started_through_the_api_reads_the_accounts_asked_for(api, deployment, member):
    from readiness.checklists.targets import AccountSpec, deployment_set_aws_target

    workload, logging = "123456789012", "210987654321"
    deployment_set_aws_target(
        deployment=deployment,
        user=member,
        accounts=[
            AccountSpec(workload, ["us-east-1"], name="workload"),
            AccountSpec(logging, ["us-east-1"], f"arn:aws:iam::{logging}:role/R", name="logging"),
        ],
    )
    url = f"{BASE}/deployments/{deployment.pk}/probe-runs"
    refused = api.post(url, json={"accounts": ["999999999999"]})
    assert refused.status_code == 400
    assert "999999999999" in refused.json()["detail"]
    assert refused.json()["errors"] == {"accounts": [refused.json()["detail"]]}
    assert api.post(url, json={"accounts": []}).status_code == 400
    assert api.post(url, json={"accounts": logging}).status_code == 400
    assert api.post(url, json={"accounts": [{"id": 1}]}).status_code == 400
    started = api.post(url, json={"accounts": [logging]})
    assert started.status_code == 202
    run = started.json()
    assert run["accounts"] == [logging] and run["partial"] is True
    (progress,) = run["account_progress"]
    assert progress == {
        "account_id": logging,
        "name": "logging",
        "done": 0,
        "total": run["total"],
        "failed": 0,
        "errors": 0,
    }
    assert AuditEvent.objects.get(action="probe_run.started").after["accounts"] == [logging]


@pytest.mark.django_db
@pytest.mark.parametrize("accounts", [1, 3])
def test_reading_a_run_through_the_api_queries_stay_flat_in_the_accounts(
    api, deployment, member, django_assert_num_queries, accounts
):
    from readiness.checklists.targets import AccountSpec, deployment_set_aws_target
    from readiness.probe_runs.services import probe_run_start

    ids = ["111111111111", "222222222222", "333333333333"][:accounts]
    deployment_set_aws_target(
        deployment=deployment,
        user=member,
        accounts=[AccountSpec(i, ["us-east-1"], f"arn:aws:iam::{i}:role/R") for i in ids],
    )
    run, _ = probe_run_start(deployment=deployment, user=member)
    url = f"{BASE}/deployments/{deployment.pk}/probe-runs/{run.pk}"
    api.get(url)  # the token's last use is written once a while: not part of the count
    with django_assert_num_queries(READ_RUN_QUERIES):
        body = api.get(url).json()
    assert [p["account_id"] for p in body["account_progress"]] == ids


# Token, deployment, run, counts, progress per account (one grouped query), and the API
# read's audit event (deployment lock, savepoint, chain head, insert, head update, release).
READ_RUN_QUERIES = 11


@pytest.mark.django_db
def test_a_run_is_cancelled_through_the_api(api, read_api, outsider_api, deployment):
    set_aws_target(deployment)
    run = api.post(f"{BASE}/deployments/{deployment.pk}/probe-runs").json()
    assert read_api.post(run["cancel_url"]).status_code == 403
    assert outsider_api.post(run["cancel_url"]).status_code == 404
    cancelled = api.post(run["cancel_url"])
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    again = api.post(run["cancel_url"])
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    assert AuditEvent.objects.filter(action="probe_run.cancelled").count() == 1
    missing = api.post(f"{BASE}/deployments/{deployment.pk}/probe-runs/99999/cancel")
    assert missing.status_code == 404


@pytest.mark.django_db
def test_cancelling_a_finished_run_through_the_api_is_a_409(api, deployment):
    from readiness.probe_runs.models import ProbeRun

    run = ProbeRun.objects.create(deployment=deployment, state="succeeded", regions=["us-east-1"])
    response = api.post(f"{BASE}/deployments/{deployment.pk}/probe-runs/{run.pk}/cancel")
    assert response.status_code == 409
    assert "already ended" in response.json()["detail"]


# --- Evidence ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_coverage_evidence_settles_unit_tests_and_is_stored_with_its_hash(api, deployment):
    data = samples.cobertura(850, 1000)
    response = upload(api, deployment, "cobertura", data, name="coverage.xml")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    (verdict,) = body["verdicts"]
    assert verdict["item"] == "Unit Tests" and verdict["passed"] and verdict["applied"]
    unit = item(deployment, "Unit Tests")
    assert unit.status == ItemStatus.DONE and unit.source == DecisionSource.EVIDENCE
    assert "coverage.xml" in unit.status_reason and "85" in unit.status_reason
    evidence = Evidence.objects.get()
    assert evidence.file.read() == data
    audit = AuditEvent.objects.get(action="evidence.uploaded")
    assert audit.after["sha256"] == body["sha256"] and "via" in audit.after
    assert AuditEvent.objects.filter(action="item.set_by_evidence").count() == 1

    # Later evidence moves what evidence set.
    low = upload(api, deployment, "cobertura", samples.cobertura(500, 1000))
    assert low.status_code == 201
    assert item(deployment, "Unit Tests").status == ItemStatus.FAILED


@pytest.mark.django_db
def test_junit_names_its_item_and_fails_on_failures(api, deployment):
    missing = upload(api, deployment, "junit", samples.junit())
    assert missing.status_code == 400 and "E2E Tests" in missing.json()["detail"]
    failed = upload(api, deployment, "junit", samples.junit(failures=2), item="E2E Tests")
    assert failed.status_code == 201
    (verdict,) = failed.json()["verdicts"]
    assert not verdict["passed"] and any("test_broken_0" in d for d in verdict["details"])
    assert item(deployment, "E2E Tests").status == ItemStatus.FAILED


@pytest.mark.django_db
def test_trivy_and_gitleaks_settle_the_security_items_without_the_secret(api, deployment):
    trivy = upload(api, deployment, "trivy", samples.trivy("CRITICAL", "MEDIUM"))
    assert trivy.status_code == 201
    assert item(deployment, "Security Scan").status == ItemStatus.FAILED
    leaks = upload(api, deployment, "gitleaks", samples.gitleaks(2))
    assert leaks.status_code == 201
    assert {v["item"] for v in leaks.json()["verdicts"]} == {
        "Security Scan",
        "Secrets Management",
    }
    assert item(deployment, "Secrets Management").status == ItemStatus.FAILED
    assert samples.SECRET not in leaks.content.decode()
    everything = json.dumps(list(AuditEvent.objects.values()), default=str)
    assert samples.SECRET not in everything
    assert (
        samples.SECRET
        not in api.get(f"{BASE}/deployments/{deployment.pk}/checklist").content.decode()
    )


@pytest.mark.django_db
def test_a_person_decision_stands_against_evidence_with_the_conflict_shown(
    api, deployment, member_client
):
    ChecklistItem.objects.filter(pk=item(deployment, "Unit Tests").pk).update(
        status=ItemStatus.DONE, source=DecisionSource.PERSON
    )
    response = upload(api, deployment, "cobertura", samples.cobertura(10, 100))
    (verdict,) = response.json()["verdicts"]
    assert not verdict["applied"] and "a person marked it done" in verdict["conflict"]
    assert item(deployment, "Unit Tests").status == ItemStatus.DONE
    unit_tests = item(deployment, "Unit Tests")
    # The checklist's row flags the disagreement; the item's card says what it is.
    page = member_client.get(reverse("deployment_detail", args=[deployment.pk])).content.decode()
    row = page[page.index(f'id="row-{unit_tests.pk}-summary"') :]
    assert "CI evidence disagrees" in row[: row.index("</summary>")]
    card = member_client.get(reverse("item_update", args=[deployment.pk, unit_tests.pk]))
    assert "a person marked it done" in card.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "data", "extra", "message"),
    [
        ("sbom", b"{}", {}, "kind"),
        ("cobertura", b"<coverage", {}, "xml"),
        ("cobertura", b"", {}, "empty"),
        ("trivy", b"[1, 2", {}, "json"),
        (
            "cobertura",
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><coverage>&lol;</coverage>',
            {},
            "dtd",
        ),
        ("junit", samples.junit(), {"item": "Unit Tests"}, "e2e tests"),
    ],
)
def test_bad_evidence_is_a_precise_400_and_saves_nothing(
    api, deployment, kind, data, extra, message
):
    response = upload(api, deployment, kind, data, **extra)
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"].lower()
    assert not Evidence.objects.exists()
    assert not AuditEvent.objects.filter(action="evidence.uploaded").exists()


@pytest.mark.django_db
def test_evidence_over_the_size_limit_is_refused(api, deployment, settings):
    settings.EVIDENCE_MAX_BYTES = 100
    response = upload(api, deployment, "cobertura", samples.cobertura(9, 10))
    assert response.status_code == 400 and "EVIDENCE_MAX_BYTES" in response.json()["detail"]
    assert not Evidence.objects.exists()


@pytest.mark.django_db
def test_evidence_needs_a_file_sent_as_multipart(api, deployment):
    no_file = api.post(f"{BASE}/deployments/{deployment.pk}/evidence", data={"kind": "trivy"})
    assert no_file.status_code == 400
    as_json = api.post(f"{BASE}/deployments/{deployment.pk}/evidence", json={"kind": "trivy"})
    assert as_json.status_code == 400


@pytest.mark.django_db
def test_the_checklist_item_a_template_lacks_is_a_400(api, member, team):
    from readiness.checklists.models import ChecklistItem as Item

    deployment = make_deployment(user=member, team=team)
    Item.objects.filter(section__deployment=deployment, title="Unit Tests").delete()
    response = upload(api, deployment, "cobertura", samples.cobertura(9, 10))
    assert response.status_code == 400 and "Unit Tests" in response.json()["detail"]
    assert not Evidence.objects.exists()


@pytest.mark.django_db
def test_new_evidence_makes_the_owning_signature_stale(api, deployment, team):
    signers = signers_for(team)
    upload(api, deployment, "cobertura", samples.cobertura(900, 1000))
    approve_all(deployment, signers)
    assert deployment.state == DeploymentState.APPROVED
    owner = item(deployment, "Unit Tests").owner_role
    upload(api, deployment, "cobertura", samples.cobertura(950, 1000))
    standing = standing_of(deployment, owner)
    assert standing.status == "stale"
    assert any("new CI evidence (cobertura, passing)" in c for c in standing.changes)


@pytest.mark.django_db
def test_a_deployed_record_takes_no_more_evidence(api, deployment, team):
    from django.utils import timezone

    from signoff.lifecycle.services import deployment_mark_deployed

    signers = signers_for(team)
    approve_all(deployment, signers)
    deployment_mark_deployed(
        deployment=deployment, user=signers["devops"], deployed_at=timezone.now()
    )
    response = upload(api, deployment, "cobertura", samples.cobertura(9, 10))
    assert response.status_code == 409 and "closed record" in response.json()["detail"]


# --- Gate --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_gate_refuses_until_all_four_approve_and_after_a_change(api, deployment, team):
    gate = f"{BASE}/deployments/{deployment.pk}/gate"
    draft = api.get(gate)
    assert draft.status_code == 409
    body = draft.json()
    assert body["approved"] is False and body["state"] == "draft"
    assert body["missing_roles"] == ["Tech Lead", "Security", "DevOps", "Product"]
    assert body["open_items"] == 56 and body["record_sha256"] is None

    signers = signers_for(team)
    complete_items(deployment)
    ChecklistItem.objects.filter(pk=item(deployment, "Chaos Engineering").pk).update(
        status=ItemStatus.FAILED
    )
    assert "Testing / Chaos Engineering" in api.get(gate).json()["failed_items"]
    approve_all(deployment, signers)
    allowed = api.get(gate)
    assert allowed.status_code == 200, allowed.json()
    assert allowed.json()["approved"] is True and allowed.json()["missing_roles"] == []

    upload(api, deployment, "trivy", samples.trivy("HIGH"))
    after = api.get(gate)
    assert after.status_code == 409
    assert after.json()["stale_roles"] and after.json()["state"] == "in_review"
    checked = AuditEvent.objects.filter(action="api.gate_checked", deployment=deployment)
    assert checked.count() == 4
    assert checked.last().after["http_status"] == 409 and "via" in checked.last().after


@pytest.mark.django_db
def test_the_gate_names_the_signed_record(api, deployment, team):
    from signoff.records.services import record_generate

    approve_all(deployment, signers_for(team))
    record = record_generate(deployment_id=deployment.pk)
    body = api.get(f"{BASE}/deployments/{deployment.pk}/gate").json()
    assert body["record_sha256"] == record.sha256


# --- Schema ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_openapi_schema_is_valid_and_documents_every_endpoint(client):
    from openapi_spec_validator import validate

    schema = client.get(f"{BASE}/openapi.json").json()
    validate(schema)
    paths = schema["paths"]
    for path in (
        "/api/v1/deployments",
        "/api/v1/deployments/{deployment_id}",
        "/api/v1/deployments/{deployment_id}/checklist",
        "/api/v1/deployments/{deployment_id}/probe-runs",
        "/api/v1/deployments/{deployment_id}/evidence",
        "/api/v1/deployments/{deployment_id}/gate",
    ):
        assert path in paths, sorted(paths)
    assert set(paths["/api/v1/deployments/{deployment_id}/gate"]["get"]["responses"]) >= {
        "200",
        "409",
    }


@pytest.mark.django_db
def test_the_docs_page_works_offline(client, member):
    client.force_login(member)
    page = client.get(f"{BASE}/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger" in html.lower() and "cdn.jsdelivr" not in html
    assert 'lang="en"' in html  # the project's own template (templates/ninja/swagger.html)
    for name in ("ninja/swagger-ui.css", "ninja/swagger-ui-bundle.js", "ninja/swagger-ui-init.js"):
        assert static(name) in html
        assert finders.find(name), name


@pytest.mark.django_db
def test_unknown_api_addresses_are_json_404s(api, anonymous_api):
    for client in (api, anonymous_api):
        for path in ("/api/", "/api/v1/deployments/", "/api/v2/deployments", "/api/v1/nope"):
            response = client.get(path)
            assert response.status_code in (401, 404), path
            assert response["Content-Type"].startswith("application/json"), path


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_write_to_an_unknown_api_address_is_a_json_404_not_a_csrf_page(method):
    # Django's test client skips CSRF checks unless asked: a pipeline has no CSRF cookie.
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(
        "/api/v2/deployments", data="{}", content_type="application/json"
    )
    assert response.status_code == 404
    assert response.json()["detail"].startswith("No such API endpoint")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/deployments", "/deployments/{pk}/evidence"])
def test_a_page_far_past_the_end_is_empty_not_an_error(api, deployment, path):
    response = api.get(BASE + path.format(pk=deployment.pk) + "?page=99999999999999999999")
    assert response.status_code == 200
    assert response.json()["items"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["service=a%00b", "environment=%00"])
def test_a_nul_character_in_a_filter_is_a_400(api, query):
    response = api.get(f"{BASE}/deployments?{query}")
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/deployments", "GET, POST"),
        ("delete", "/deployments/1/gate", "GET"),
        ("get", "/deployments/1/probe-runs", "POST"),
    ],
)
def test_a_wrong_method_is_a_json_405_naming_the_allowed_ones(api, method, path, allowed):
    response = getattr(api.client, method)(BASE + path, headers=api.headers)
    assert response.status_code == 405
    # django-ninja lists the methods in no fixed order.
    assert set(response["Allow"].split(", ")) == set(allowed.split(", "))
    detail = response.json()["detail"]
    assert detail == f"{method.upper()} is not allowed here; allowed: {response['Allow']}."


@pytest.mark.django_db
def test_evidence_is_in_the_pdf_record(api, deployment):
    from signoff.records.services import draft_pdf
    from tests.signoff.records.test_record_pdf import text_of

    data = samples.cobertura(870, 1000)
    upload(api, deployment, "cobertura", data, name="coverage.xml")
    text = " ".join(text_of(draft_pdf(deployment)).split())
    assert "CI evidence: coverage.xml" in text
    assert hashlib.sha256(data).hexdigest()[:16] in text
    assert "Line coverage 87.0 %" in text


@pytest.mark.django_db
def test_every_api_request_is_attributed_in_the_audit_trail(api, deployment, member, outsider_api):
    api.get(f"{BASE}/deployments")
    api.get(f"{BASE}/deployments/{deployment.pk}/checklist")
    outsider_api.get(f"{BASE}/deployments/{deployment.pk}/checklist")
    events = list(AuditEvent.objects.filter(action="api.request").order_by("pk"))
    assert [(e.after["path"], e.after["status"]) for e in events] == [
        (f"{BASE}/deployments", 200),
        (f"{BASE}/deployments/{deployment.pk}/checklist", 200),
        (f"{BASE}/deployments/{deployment.pk}/checklist", 404),
    ]
    assert events[0].actor == member and events[0].after["via"].startswith("API token “CI deploy”")
    assert events[1].deployment == deployment
    assert events[2].deployment is None  # the outsider's miss does not land on our page


@pytest.mark.django_db
def test_the_gate_stays_open_once_deployed_until_drift(api, deployment, team):
    from django.utils import timezone

    from signoff.lifecycle.services import deployment_mark_deployed

    signers = signers_for(team)
    approve_all(deployment, signers)
    deployment_mark_deployed(
        deployment=deployment, user=signers["devops"], deployed_at=timezone.now()
    )
    response = api.get(f"{BASE}/deployments/{deployment.pk}/gate")
    assert response.status_code == 200 and response.json()["state"] == "deployed"
