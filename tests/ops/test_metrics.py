"""/metrics: who may read it, what it says, and what it costs."""

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from readiness.audit import tasks as audit_tasks
from readiness.audit.models import AuditVerification
from readiness.outbox.models import OutboxMessage
from readiness.probe_runs.models import ProbeResult, ProbeResultState, ProbeRun, ProbeRunState
from readiness.project.celery import app as celery_app
from signoff.records.models import SignedRecord
from signoff.signatures.models import Revocation, SignOff
from tests.factories import TeamFactory, make_deployment
from tests.signoff_helpers import role

TOKEN = "a-scraper-token-of-some-length"
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    return TOKEN


def scrape(client=None, **headers) -> dict:
    """{sample name: {frozenset(labels): value}} of one scrape with the token."""
    response = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: dict = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[name][frozenset(labels.items())]


def networks(*cidrs):
    import ipaddress

    return [ipaddress.ip_network(cidr) for cidr in cidrs]


# --- Access -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_are_off_without_a_token_or_an_allow_list(settings, client):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


@pytest.mark.django_db
def test_metrics_need_the_bearer_token(token, client):
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.django_db
def test_metrics_answer_only_allowed_addresses(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = networks("10.1.0.0/16", "::1/128")
    assert Client(REMOTE_ADDR="10.2.0.5").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="10.1.200.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200


@pytest.mark.django_db
def test_with_both_guards_set_a_scraper_needs_both(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = networks("10.1.0.0/16")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert Client(REMOTE_ADDR="10.9.0.1").get("/metrics", headers=bearer).status_code == 403
    assert Client(REMOTE_ADDR="10.1.0.1").get("/metrics").status_code == 401
    assert Client(REMOTE_ADDR="10.1.0.1").get("/metrics", headers=bearer).status_code == 200


# --- What they say ------------------------------------------------------------------------


def a_run(deployment, state, *, seconds=None, results=()):
    now = timezone.now()
    run = ProbeRun.objects.create(
        deployment=deployment,
        state=state,
        regions=["us-east-1"],
        started_at=now - timedelta(seconds=seconds) if seconds is not None else None,
        finished_at=now if seconds is not None else None,
    )
    for index, (result_state, status) in enumerate(results):
        ProbeResult.objects.create(
            run=run,
            probe_key=f"probe_{index}",
            region="us-east-1",
            section_title="Security",
            item_title="IAM Policies",
            title="A check",
            severity="high",
            state=result_state,
            status=status,
        )
    return run


def a_signoff(deployment, user, slug, meaning="approve", sequence=1):
    return SignOff.objects.create(
        deployment=deployment,
        role=role(slug),
        sequence=sequence,
        user=user,
        printed_name=user.get_full_name(),
        signed_at=timezone.now(),
        meaning=meaning,
        comment="" if meaning == "approve" else "because",
        digest="d" * 64,
        approved_state={},
    )


def a_record(deployment, *, pades_signed):
    return SignedRecord.objects.create(
        deployment=deployment,
        record_id=uuid.uuid4(),
        number=SignedRecord.objects.filter(deployment=deployment).count() + 1,
        deployment_state=deployment.state,
        state_digest="d" * 64,
        file=f"records/{uuid.uuid4()}.pdf",
        sha256=uuid.uuid4().hex * 2,
        size_bytes=1000,
        page_size="A4",
        pades_signed=pades_signed,
        created_at=timezone.now(),
    )


def fill(deployment, user):
    """Something of every kind the app's metrics count."""
    a_run(
        deployment,
        ProbeRunState.SUCCEEDED,
        seconds=42,
        results=[
            (ProbeResultState.DONE, "pass"),
            (ProbeResultState.DONE, "pass"),
            (ProbeResultState.DONE, "fail"),
            (ProbeResultState.DONE, "error"),
        ],
    )
    a_run(deployment, ProbeRunState.FAILED, seconds=400)
    a_run(deployment, ProbeRunState.RUNNING, results=[(ProbeResultState.PENDING, "")])
    a_signoff(deployment, user, "security")
    revoked = a_signoff(deployment, user, "devops", "reject")
    Revocation.objects.create(
        signoff=revoked, revoked_by=user, revoked_at=timezone.now(), reason="wrong deployment"
    )
    a_signoff(deployment, user, "devops", sequence=2)
    a_record(deployment, pades_signed=True)


@pytest.mark.django_db
def test_app_metrics_reflect_the_database(token, member, deployment):
    fill(deployment, member)
    OutboxMessage.objects.create(
        key="late", task_name="readiness.nothing", created_at=timezone.now() - timedelta(minutes=2)
    )
    OutboxMessage.objects.create(key="refused", task_name="readiness.nothing", last_error="down")
    OutboxMessage.objects.create(key="gone", task_name="x", sent_at=timezone.now())

    samples = scrape()

    assert value(samples, "readiness_probe_runs", state="succeeded") == 1
    assert value(samples, "readiness_probe_runs", state="failed") == 1
    assert value(samples, "readiness_probe_runs", state="running") == 1
    buckets = "readiness_probe_run_duration_seconds_bucket"
    assert value(samples, buckets, state="succeeded", le="30.0") == 0
    assert value(samples, buckets, state="succeeded", le="60.0") == 1
    assert value(samples, buckets, state="failed", le="300.0") == 0
    assert value(samples, buckets, state="failed", le="600.0") == 1
    assert value(samples, buckets, state="failed", le="+Inf") == 1
    assert value(samples, "readiness_probe_run_duration_seconds_count", state="succeeded") == 1
    assert value(samples, "readiness_probe_run_duration_seconds_sum", state="succeeded") == (
        pytest.approx(42, abs=0.5)
    )
    assert not any(("state", "running") in labels for labels in samples[buckets])

    assert value(samples, "readiness_probe_checks", status="pass") == 2
    assert value(samples, "readiness_probe_checks", status="fail") == 1
    assert value(samples, "readiness_probe_checks", status="error") == 1
    assert value(samples, "readiness_probe_checks", status="pending") == 1

    assert value(samples, "readiness_signoffs_total", role="security", meaning="approve") == 1
    assert value(samples, "readiness_signoffs_total", role="devops", meaning="approve") == 1
    assert value(samples, "readiness_signoffs_total", role="devops", meaning="reject") == 1
    revoked = "readiness_signoffs_revoked_total"
    assert value(samples, revoked, role="devops", meaning="reject") == 1
    assert value(samples, revoked, role="security", meaning="approve") == 0

    assert value(samples, "readiness_records_total", pades_signed="true") == 1
    assert value(samples, "readiness_records_total", pades_signed="false") == 0

    assert value(samples, "readiness_outbox_pending") == 2
    assert value(samples, "readiness_outbox_failing") == 1
    assert 119 <= value(samples, "readiness_outbox_oldest_pending_age_seconds") < 180


@pytest.mark.django_db
def test_the_last_audit_verification_is_reported(token, member, deployment):
    assert "readiness_audit_verification_ok" not in scrape()

    assert audit_tasks.audit_verify.apply().get() is True
    verified = AuditVerification.objects.get()
    assert verified.ok and verified.source == "schedule" and verified.events > 0
    samples = scrape()
    assert value(samples, "readiness_audit_verification_ok") == 1
    assert value(samples, "readiness_audit_verification_timestamp_seconds") == pytest.approx(
        verified.checked_at.timestamp()
    )
    assert value(samples, "readiness_audit_verification_events") == verified.events

    AuditVerification.objects.create(
        checked_at=timezone.now(),
        source="verify_audit",
        ok=False,
        events=3,
        chains=1,
        checkpoints=0,
        duration_seconds=0.5,
        problem="deployment:1: event #2 was edited after it was written",
    )
    assert value(scrape(), "readiness_audit_verification_ok") == 0


@pytest.mark.django_db
def test_the_audit_checkpoint_time_is_reported(token, deployment):
    assert "readiness_audit_checkpoint_timestamp_seconds" not in scrape()
    audit_tasks.audit_checkpoint.apply().get()
    stamp = value(scrape(), "readiness_audit_checkpoint_timestamp_seconds")
    assert abs(stamp - timezone.now().timestamp()) < 60


@pytest.fixture
def broker_queue():
    """The Redis broker's default queue, emptied before and after."""
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "needs REDIS_URL"
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("celery", "celery\x06\x163")
    yield client
    client.delete("celery", "celery\x06\x163")
    client.close()


@pytest.mark.django_db
def test_queue_length_is_read_from_the_redis_broker(token, broker_queue):
    assert value(scrape(), "readiness_celery_queue_length", queue="celery") == 0
    # Tasks nobody runs (no worker listens in this test), one of them with a priority.
    celery_app.send_task("readiness.metrics_test_nothing", args=[1])
    celery_app.send_task("readiness.metrics_test_nothing", args=[2])
    celery_app.send_task("readiness.metrics_test_nothing", args=[3], priority=5)
    samples = scrape()
    assert value(samples, "readiness_celery_queue_length", queue="celery") == 3
    assert value(samples, "readiness_celery_broker_up") == 1
    assert "readiness_celery_unacked" in samples


@pytest.mark.django_db
def test_an_unreachable_redis_broker_is_reported_down(token, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    samples = scrape()
    assert value(samples, "readiness_celery_broker_up") == 0
    assert "readiness_celery_queue_length" not in samples
    assert "readiness_outbox_pending" in samples


@pytest.mark.django_db
def test_the_embedded_broker_reports_no_queue_metrics(token, settings, tmp_path):
    settings.CELERY_BROKER_URL = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    samples = scrape()
    assert not any(name.startswith("readiness_celery_") for name in samples)
    assert "readiness_outbox_pending" in samples


@pytest.mark.django_db
def test_django_prometheus_request_and_database_metrics_are_exposed(token, member_client):
    assert member_client.get("/").status_code == 200
    samples = scrape()
    requests = samples["django_http_requests_total_by_method_total"]
    assert requests[frozenset({("method", "GET")})] >= 1
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in samples
    assert "django_http_responses_total_by_status_total" in samples
    assert sum(samples["django_db_execute_total"].values()) >= 1


# --- What they cost -----------------------------------------------------------------------


def _queries_of_a_scrape() -> int:
    client = Client()
    with CaptureQueriesContext(connection) as queries:
        scrape(client)
    return len(queries)


@pytest.mark.django_db
def test_a_scrape_reads_as_many_queries_for_30_deployments_as_for_1(token, member):
    team = TeamFactory(members=[member])
    fill(make_deployment(user=member, team=team), member)
    with_one = _queries_of_a_scrape()
    for number in range(29):
        deployment = make_deployment(user=member, team=team, service=f"service-{number}")
        fill(deployment, member)
    assert ProbeRun.objects.count() == 90
    assert _queries_of_a_scrape() == with_one
    assert with_one == 8


# --- The dashboard ------------------------------------------------------------------------

PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def dashboard_expressions(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        for child in node.values():
            found += dashboard_expressions(child)
        return found
    if isinstance(node, list):
        return [expr for child in node for expr in dashboard_expressions(child)]
    return []


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads: identifiers that are not functions,
    aggregations, keywords, label names (inside {} or a by/without list), durations or
    Grafana variables."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[match.end() :].lstrip()
        word = match.group()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def test_metric_names_are_read_from_promql():
    expr = (
        'histogram_quantile(0.95, sum by (le, view) (rate(django_x_bucket{view!="a b"}'
        "[$__rate_interval]))) / on (job) group_left time() - readiness_y offset 5m"
    )
    assert metric_names(expr) == {"django_x_bucket", "readiness_y"}


@pytest.mark.django_db
def test_the_dashboard_reads_only_metrics_that_are_exposed(token, member, member_client):
    fill(make_deployment(user=member, service="dashboard-api"), member)
    OutboxMessage.objects.create(key="late", task_name="readiness.nothing")
    audit_tasks.audit_checkpoint.apply().get()
    audit_tasks.audit_verify.apply().get()
    member_client.get("/")
    exposed = set(scrape())

    dashboard = json.loads(DASHBOARD.read_text())
    expressions = dashboard_expressions(dashboard)
    assert len(expressions) >= 10
    used = set().union(*(metric_names(expr) for expr in expressions))
    assert used - exposed == set()
    app_metrics = {name for name in exposed if name.startswith("readiness_")}
    # Every family of the app's own has a panel.
    families = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in app_metrics}
    shown = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in used}
    assert families - shown == set()


def test_every_app_metric_is_documented_in_the_runbook():
    runbook = (Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text()
    source = (Path(__file__).resolve().parents[2] / "readiness/project/metrics.py").read_text()
    names = set(re.findall(r'"(readiness_[a-z_]+)"', source))
    assert len(names) >= 15
    assert {name for name in names if f"`{name}" not in runbook} == set()
