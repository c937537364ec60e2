"""`/metrics` for Prometheus: django-prometheus's request and database metrics, and the
app's own, read from the database and the broker at scrape time.

The app's metrics are computed by a collector on each scrape instead of counted in memory:
gunicorn runs several workers and Celery others, each with its own memory, so an in-process
counter would say something different on every scrape and forget everything on a restart.
Read from the database, every worker reports the same truth. Each family costs one
aggregate query (two for the outbox and the audit), whatever the number of deployments.
"""

import hmac
import ipaddress
import logging
import os
import time
from datetime import timedelta
from functools import cache

import prometheus_client
import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import multiprocess
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from readiness.audit.models import AuditCheckpoint, AuditVerification
from readiness.outbox.selectors import outbox_backlog
from readiness.probe_runs.models import ProbeResult, ProbeResultState, ProbeRun
from signoff.records.models import SignedRecord
from signoff.signatures.models import SignOff

log = logging.getLogger(__name__)

# Upper bounds (seconds) of the probe run duration histogram: a run lasts from seconds (one
# region, few probes) to PROBE_RUN_TIMEOUT (300 s by default), when the sweeper ends it.
RUN_DURATION_BUCKETS = (5, 10, 30, 60, 120, 300, 600, 1800)
# kombu's Redis transport keeps a queue's messages of priority N > 0 in "<queue>\x06\x16N".
_REDIS_PRIORITY_SEPARATOR = "\x06\x16"
_REDIS_PRIORITY_STEPS = (3, 6, 9)


def _seconds(value) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        return value.total_seconds()
    # SQLite hands a sum of durations back as microseconds.
    return float(value) / 1_000_000


def _probe_runs():
    duration = ExpressionWrapper(
        F("finished_at") - Coalesce("started_at", "created_at"), output_field=DurationField()
    )
    finished = Q(finished_at__isnull=False)
    aggregates = {
        "runs": Count("id"),
        "finished": Count("id", filter=finished),
        "seconds": Sum("duration", filter=finished),
    }
    for index, bound in enumerate(RUN_DURATION_BUCKETS):
        aggregates[f"le_{index}"] = Count(
            "id", filter=finished & Q(duration__lte=timedelta(seconds=bound))
        )
    rows = (
        ProbeRun.objects.annotate(duration=duration)
        .values("state")
        .annotate(**aggregates)
        .order_by("state")
    )
    runs = GaugeMetricFamily(
        "readiness_probe_runs",
        "Probe runs in the database by state (queued, running, succeeded, failed, cancelled).",
        labels=["state"],
    )
    durations = HistogramMetricFamily(
        "readiness_probe_run_duration_seconds",
        "Duration of every finished probe run (finish minus start, or minus creation for "
        "a run no worker started), by outcome; cumulative over the runs kept in the database.",
        labels=["state"],
    )
    for row in rows:
        runs.add_metric([row["state"]], row["runs"])
        if row["finished"]:
            buckets = [
                (f"{float(bound)}", row[f"le_{index}"])
                for index, bound in enumerate(RUN_DURATION_BUCKETS)
            ]
            buckets.append(("+Inf", row["finished"]))
            durations.add_metric([row["state"]], buckets, sum_value=_seconds(row["seconds"]))
    return [runs, durations]


def _probe_checks():
    checks = GaugeMetricFamily(
        "readiness_probe_checks",
        "Probe checks (one probe in one region of a run) by status: the verdict of a "
        "finished check (pass, fail, warn, error, n/a), else pending or running.",
        labels=["status"],
    )
    counts: dict[str, int] = {}
    rows = ProbeResult.objects.values("state", "status").annotate(n=Count("id")).order_by()
    for row in rows:
        status = row["status"] if row["state"] == ProbeResultState.DONE else row["state"]
        counts[status or "unknown"] = counts.get(status or "unknown", 0) + row["n"]
    for status, count in sorted(counts.items()):
        checks.add_metric([status], count)
    return [checks]


def _signoffs():
    signed = CounterMetricFamily(
        "readiness_signoffs",
        "Signatures given, by role and meaning (approve, approve_with_conditions, reject).",
        labels=["role", "meaning"],
    )
    revoked = CounterMetricFamily(
        "readiness_signoffs_revoked",
        "Signatures later revoked, by role and meaning.",
        labels=["role", "meaning"],
    )
    rows = (
        SignOff.objects.values("role__slug", "meaning")
        .annotate(n=Count("id"), revoked=Count("id", filter=Q(revocation__isnull=False)))
        .order_by("role__slug", "meaning")
    )
    for row in rows:
        labels = [row["role__slug"], row["meaning"]]
        signed.add_metric(labels, row["n"])
        revoked.add_metric(labels, row["revoked"])
    return [signed, revoked]


def _records():
    records = CounterMetricFamily(
        "readiness_records",
        "Signed PDF records made, by whether they carry a PAdES signature.",
        labels=["pades_signed"],
    )
    totals = SignedRecord.objects.aggregate(
        signed=Count("id", filter=Q(pades_signed=True)),
        unsigned=Count("id", filter=Q(pades_signed=False)),
    )
    records.add_metric(["true"], totals["signed"])
    records.add_metric(["false"], totals["unsigned"])
    return [records]


def _outbox(now: float):
    backlog = outbox_backlog()
    oldest = now - backlog.oldest.timestamp() if backlog.oldest else 0.0
    return [
        GaugeMetricFamily(
            "readiness_outbox_pending",
            "Outbox rows not yet sent to the broker (the backlog).",
            value=backlog.pending,
        ),
        GaugeMetricFamily(
            "readiness_outbox_failing",
            "Pending outbox rows whose last publish the broker refused.",
            value=backlog.failing,
        ),
        GaugeMetricFamily(
            "readiness_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox row; 0 when none is pending.",
            value=max(oldest, 0.0),
        ),
    ]


def _audit():
    families = []
    verification = AuditVerification.objects.order_by("-id").first()
    if verification is not None:
        families += [
            GaugeMetricFamily(
                "readiness_audit_verification_timestamp_seconds",
                "When the audit trail was last verified (Unix time).",
                value=verification.checked_at.timestamp(),
            ),
            GaugeMetricFamily(
                "readiness_audit_verification_ok",
                "1 when the last verification found the trail intact, 0 when it found a "
                "problem (`manage.py verify_audit` names it).",
                value=1 if verification.ok else 0,
            ),
            GaugeMetricFamily(
                "readiness_audit_verification_duration_seconds",
                "How long the last verification took.",
                value=verification.duration_seconds,
            ),
            GaugeMetricFamily(
                "readiness_audit_verification_events",
                "Events the last verification walked.",
                value=verification.events,
            ),
        ]
    checkpoint = AuditCheckpoint.objects.order_by("-id").values("created_at").first()
    if checkpoint is not None:
        families.append(
            GaugeMetricFamily(
                "readiness_audit_checkpoint_timestamp_seconds",
                "When the newest audit checkpoint was written (Unix time).",
                value=checkpoint["created_at"].timestamp(),
            )
        )
    return families


@cache
def _redis(url: str) -> redis.Redis:
    # One pool per process; short timeouts, a broker that is away must not hold a scrape.
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def _queue_names() -> list[str]:
    from readiness.project.celery import app

    return sorted(app.amqp.queues.keys())


def _queues():
    """Messages waiting in each configured queue, on the Redis broker only: kombu's
    SQLAlchemy transport (the embedded broker) is reported as nothing at all."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return []
    up = GaugeMetricFamily(
        "readiness_celery_broker_up", "1 when the Redis broker answered this scrape, else 0."
    )
    waiting = GaugeMetricFamily(
        "readiness_celery_queue_length",
        "Messages waiting in each Celery queue (every priority), read from Redis.",
        labels=["queue"],
    )
    unacked = GaugeMetricFamily(
        "readiness_celery_unacked",
        "Messages workers have taken and not yet acknowledged (running, or waiting for a "
        "retry's countdown: tasks are acknowledged late).",
    )
    names = _queue_names()
    try:
        with _redis(url).pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(name)
                for step in _REDIS_PRIORITY_STEPS:
                    pipe.llen(f"{name}{_REDIS_PRIORITY_SEPARATOR}{step}")
            pipe.hlen("unacked")
            lengths = pipe.execute()
    except redis.RedisError as error:
        log.warning("metrics: the Redis broker did not answer: %s", error)
        up.add_metric([], 0)
        return [up]
    per_queue = 1 + len(_REDIS_PRIORITY_STEPS)
    for index, name in enumerate(names):
        waiting.add_metric([name], sum(lengths[index * per_queue : (index + 1) * per_queue]))
    unacked.add_metric([], lengths[-1])
    up.add_metric([], 1)
    return [up, waiting, unacked]


class ReadinessCollector:
    """The app's own metrics, read afresh on every scrape."""

    def collect(self):
        now = time.time()
        yield from _probe_runs()
        yield from _probe_checks()
        yield from _signoffs()
        yield from _records()
        yield from _outbox(now)
        yield from _audit()
        yield from _queues()


def _process_registry():
    """django-prometheus's request and database metrics: this process's own, or every
    gunicorn worker's together when PROMETHEUS_MULTIPROC_DIR is set (see docs/runbook.md)."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return prometheus_client.REGISTRY


def _app_registry():
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(ReadinessCollector())
    return registry


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None when every guard that is set lets this request through."""
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
    if not token and not networks:
        raise Http404("/metrics is off: set METRICS_TOKEN or METRICS_ALLOWED_IPS")
    if networks:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            address = None
        if address is None or not any(address in network for network in networks):
            return HttpResponse("address not allowed\n", status=403, content_type="text/plain")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            response = HttpResponse("bearer token needed\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return None


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus's text format: the processes' metrics, then the app's."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    body = prometheus_client.generate_latest(_process_registry())
    body += prometheus_client.generate_latest(_app_registry())
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
