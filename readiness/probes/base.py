"""The probe framework: what a probe declares, what it returns, and how errors become results.

A probe is a plain function over a ProbeContext (a boto3 session, one region, the policy
settings) that returns a ProbeResult. Probes never touch the ORM, so they run and are tested
alone against a moto server. `execute()` is the only way a probe is run: it turns every way
AWS or an emulator can fail into an `error` result, never a pass and never an exception.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from readiness.probes import call_cache
from readiness.probes.session import AccountSession
from readiness.probes.throttle import RequestLimiter

GLOBAL = "global"
# Global services (IAM, CloudFront, Route 53, Budgets, Organizations) answer from us-east-1.
GLOBAL_API_REGION = "us-east-1"


class Status(StrEnum):
    """A probe's verdict: the one vocabulary of results, findings, pages and records."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


# What a reader needs first: failures, then what could not be read, then the rest.
STATUS_ORDER = {
    Status.FAIL: 0,
    Status.ERROR: 1,
    Status.WARN: 2,
    Status.PASS: 3,
    Status.NOT_APPLICABLE: 4,
}
# Findings that call for someone's attention.
ATTENTION_STATUSES = (Status.FAIL, Status.WARN, Status.ERROR)
# A status in running text, and as the record's column heading.
STATUS_WORDS = {
    Status.PASS: "pass",
    Status.FAIL: "fail",
    Status.WARN: "warning",
    Status.ERROR: "error",
    Status.NOT_APPLICABLE: "n/a",
}
STATUS_TITLES = {
    Status.PASS: "Pass",
    Status.FAIL: "Fail",
    Status.WARN: "Warning",
    Status.ERROR: "Error",
    Status.NOT_APPLICABLE: "N/A",
}


class Scope(StrEnum):
    GLOBAL = "global"
    REGIONAL = "regional"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class Finding:
    """One resource the probe judged: its id or ARN, its verdict and why."""

    resource: str
    status: Status
    reason: str

    def as_json(self) -> dict:
        return {"id": self.resource, "status": str(self.status), "reason": self.reason}


@dataclass(frozen=True)
class ProbeResult:
    status: Status
    summary: str
    findings: tuple[Finding, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "status": str(self.status),
            "summary": self.summary,
            "resources": [finding.as_json() for finding in self.findings],
            "facts": dict(self.facts),
        }


@dataclass(frozen=True)
class ProbeSettings:
    """Thresholds that are policy, not fact; shown in the evidence of the probes using them."""

    allowed_public_ports: tuple[int, ...] = (80, 443)
    backup_retention_days: int = 7
    certificate_expiry_days: int = 30
    rto_target_seconds: int = 4 * 3600
    rpo_target_seconds: int = 3600
    recent_traces_minutes: int = 60 * 24
    dr_tag_key: str = "DR"
    # Right-sizing: an instance whose CPU maximum over the window stays under the low band is
    # oversized; one whose average stays over the high band is undersized.
    sizing_window_days: int = 14
    cpu_low_percent: float = 10.0
    cpu_high_percent: float = 80.0
    # Reservations and Savings Plans: share of eligible usage covered over the window.
    commitment_coverage_target_percent: float = 70.0
    commitment_window_days: int = 30
    log_retention_min_days: int = 365
    access_key_max_age_days: int = 90
    password_min_length: int = 14
    # Regions where data may live; empty means the deployment's own regions.
    approved_regions: tuple[str, ...] = ()
    environment_tag_key: str = "Environment"
    production_environments: tuple[str, ...] = ("prod", "production", "prd", "live")


# The last AWS operation called in this thread: an AccessDenied then names the exact IAM
# action refused. Per thread, because clients are shared by the probes of a worker process.
_calls = threading.local()


class CallRecorder:
    """Every AWS operation probes call, with the probe that made it (tests compare these with
    the actions each probe declares, so the published IAM policy is never short)."""

    def __init__(self) -> None:
        self.calls: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def add(self, probe_key: str, call: tuple[str, str]) -> None:
        with self._lock:
            self.calls.add((probe_key, *call))


_recorder: CallRecorder | None = None


def record_calls(recorder: CallRecorder | None) -> None:
    global _recorder
    _recorder = recorder


def _remember_call(model, **kwargs) -> None:
    service = model.service_model
    # S3 Control signs as "s3" but its operations are other IAM actions than S3's of the
    # same name (GetPublicAccessBlock of the account, not of a bucket).
    name = "s3control" if service.service_name == "s3control" else service.signing_name
    _calls.last = (name, model.name)
    if _recorder is not None:
        _recorder.add(getattr(_calls, "probe", None) or "?", _calls.last)


def forget_last_call() -> None:
    _calls.last = None


class CheckTimeLimitExceeded(Exception):
    """A check reached its deadline: no further AWS request is sent for it."""


class CheckCancelled(Exception):
    """The check's run was cancelled: no further AWS request is sent for it."""


def _before_send(request, event_name: str, **kwargs) -> None:
    # Per HTTP attempt (botocore retries included), so a check that ran out of time stops
    # within one request's timeouts: another worker may take it over after its time limit,
    # and it must not still be reading AWS then. A cancelled run's check stops here too,
    # and a request waits here for its account's and service's rate (throttle.py).
    _stop_if_over()
    limiter = getattr(_calls, "limiter", None)
    if limiter is not None:
        limiter.wait(
            account=getattr(_calls, "account", "") or "?",
            service=event_name.split(".")[1],  # before-send.<service id>.<operation>
            region=(request.context or {}).get("client_region") or GLOBAL_API_REGION,
            interrupt=_stop_if_over,
        )


def _stop_if_over() -> None:
    """Raise when the running check must send nothing more: past its deadline, or its run
    was cancelled."""
    deadline = getattr(_calls, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise CheckTimeLimitExceeded("the check reached its time limit")
    cancelled = getattr(_calls, "cancelled", None)
    if cancelled is not None and cancelled():
        raise CheckCancelled("the run was cancelled")


# What a check's requests obey, set per thread by execute() (and parallel_map's threads).
_CHECK_LOCALS = ("deadline", "cancelled", "limiter", "account")


def parallel_map(function: Callable, items: Iterable, *, workers: int = 8) -> list:
    """`function` over `items` in threads, for a probe that must make many independent calls.

    An exception is re-raised in the caller with the failing call remembered, so an
    AccessDenied still names the refused action.
    """

    running = getattr(_calls, "probe", None)
    limits = {name: getattr(_calls, name, None) for name in _CHECK_LOCALS}
    cache = call_cache.current()

    def call(item):
        forget_last_call()
        _calls.probe = running
        for name, value in limits.items():
            setattr(_calls, name, value)
        call_cache.use(cache)
        try:
            return function(item), None, None
        except Exception as exc:  # handed back to the caller's thread below
            return None, exc, getattr(_calls, "last", None)

    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        outcomes = list(pool.map(call, items))
    for _, exc, last in outcomes:
        if exc is not None:
            _calls.last = last
            raise exc
    return [value for value, _, _ in outcomes]


# boto3 clients cost a few ms of CPU to build and are thread-safe to use, so the probes of a
# worker process share them. Each holds ~0.13 MB (its copy of the session's event handlers,
# endpoint rules, connection pool) and a run needs ~65 per account (its services in its
# regions): kept for as long as their sessions live, a worker reading 50 accounts held over
# 400 MB of them, and a least-recently-used bound of 256 (four accounts' worth) still held
# ~33 MB when the worker's threads were on one or two accounts. So clients are kept by
# account, for as long as a check of the account runs in the process: a run sends its checks
# account by account, so once a worker has started another account's checks, no more of the
# first one's come. When the process checks nothing else, the last account's clients stay
# until another account's checks start (back-to-back runs of one deployment reuse them).
class ClientPool:
    """A process's clients by account session: kept while a check of the session runs
    (`checking`); then only while no other session's check runs. A session used outside
    any check (a test, the `probe` command's own calls) counts as one whose checks ended."""

    def __init__(self) -> None:
        self._clients: dict[Any, dict[tuple, Any]] = {}
        self._checks: dict[Any, int] = {}
        # boto3 sessions are not thread-safe when creating clients; clients themselves are.
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(clients) for clients in self._clients.values())

    def sessions(self) -> list:
        """The sessions whose clients are kept."""
        return list(self._clients)

    def get(self, session, key: tuple, build: Callable[[], Any], *, keep: bool = True):
        """The session's client for `key`, built (and kept if `keep`) when there is none.
        Call with `lock` held."""
        clients = self._clients.get(session)
        client = clients.get(key) if clients is not None else None
        if client is None:
            client = build()
            if keep:
                self._clients.setdefault(session, {})[key] = client
                if session not in self._checks:
                    self._ended(session)
        return client

    @contextmanager
    def checking(self, session) -> Iterator[None]:
        """Keep the session's clients while the block runs (a check of its account)."""
        with self.lock:
            self._checks[session] = self._checks.get(session, 0) + 1
            for other in [kept for kept in self._clients if kept not in self._checks]:
                del self._clients[other]
        try:
            yield
        finally:
            with self.lock:
                self._checks[session] -= 1
                if not self._checks[session]:
                    del self._checks[session]
                    self._ended(session)

    def _ended(self, session) -> None:
        """No check of `session` runs: keep its clients only if no other check runs."""
        if self._checks:
            self._clients.pop(session, None)
            return
        for other in [kept for kept in self._clients if kept is not session]:
            del self._clients[other]


_clients = ClientPool()


@dataclass
class ProbeContext:
    """What a probe gets: a session, one region, the settings, and cached clients."""

    session: boto3.Session | AccountSession
    region: str
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    endpoint_url: str | None = None
    max_attempts: int = 4
    timeout_seconds: float = 10.0
    # time.monotonic() after which the check sends no AWS request (None: no limit).
    deadline: float | None = None
    # Asked before each AWS request: True stops the check (its run was cancelled). Cheap to
    # call often: the caller caches the answer.
    cancelled: Callable[[], bool] | None = None
    # Request rates shared across worker processes, and the account they are counted for.
    limiter: RequestLimiter | None = None
    account: str = ""

    @property
    def api_region(self) -> str:
        return GLOBAL_API_REGION if self.region == GLOBAL else self.region

    @property
    def last_call(self) -> tuple[str, str] | None:
        return getattr(_calls, "last", None)

    def client(self, service: str, region: str | None = None, *, keep: bool = True):
        """A client of the session in `region` (default: the context's). `keep=False` for a
        region the run reads once (data residency's sweep of every other region): built
        for the call and not kept, so that it never displaces the clients the run reuses."""
        region = region or self.api_region
        key = (service, region, self.max_attempts, self.timeout_seconds, self.endpoint_url)
        with _clients.lock:
            return _clients.get(
                self.session, key, lambda: self._new_client(service, region), keep=keep
            )

    def _new_client(self, service: str, region: str):
        config = Config(
            region_name=region,
            # Adaptive: standard's backoff, plus a client-side rate that drops when AWS
            # throttles this client and recovers as calls succeed.
            retries={"mode": "adaptive", "total_max_attempts": self.max_attempts},
            connect_timeout=self.timeout_seconds,
            read_timeout=self.timeout_seconds,
            user_agent_extra="readiness-probe",
            max_pool_connections=20,
        )
        client = self.session.client(service, config=config, endpoint_url=self.endpoint_url)
        client.meta.events.register_first("provide-client-params", _remember_call)
        client.meta.events.register("before-send", _before_send)
        call_cache.register(client)
        return client

    def paginate(self, service: str, operation: str, key: str, **kwargs) -> Iterator[Any]:
        """Every element of `key` across all pages of a paginated call."""
        paginator = self.client(service).get_paginator(operation)
        for page in paginator.paginate(**kwargs):
            yield from page.get(key, [])

    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]


def bucket_regions(context: ProbeContext, *, only_region: str | None = None) -> dict[str, str]:
    """S3 bucket name → its region; `only_region` lets AWS filter server-side.

    ListBuckets names each bucket's region on AWS; emulators may not (and may ignore the
    filter), so GetBucketLocation answers then, where the oldest buckets report "" or None
    for us-east-1 and "EU" for eu-west-1.
    """
    s3 = context.client("s3")
    params = {"BucketRegion": only_region} if only_region else {}
    regions = {}
    for bucket in context.paginate("s3", "list_buckets", "Buckets", **params):
        region = bucket.get("BucketRegion")
        if region is None:
            location = s3.get_bucket_location(Bucket=bucket["Name"]).get("LocationConstraint")
            region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
        regions[bucket["Name"]] = region
    return regions


@dataclass(frozen=True)
class Probe:
    key: str
    section: str
    item: str
    title: str
    actions: tuple[str, ...]
    scope: Scope
    severity: Severity
    remediation: str
    check: Callable[[ProbeContext], ProbeResult]
    # Supporting evidence only: shown with the item, never sets its status (the item itself
    # is something no AWS API can prove, such as a runbook kept in a repository).
    supporting: bool = False

    @property
    def regions_label(self) -> str:
        return "global" if self.scope == Scope.GLOBAL else "per region"


_REGISTRY: dict[str, Probe] = {}


def probe(
    *,
    key: str,
    section: str,
    item: str,
    title: str,
    actions: Iterable[str],
    scope: Scope = Scope.REGIONAL,
    severity: Severity = Severity.HIGH,
    remediation: str,
    supporting: bool = False,
) -> Callable[[Callable[[ProbeContext], ProbeResult]], Callable[[ProbeContext], ProbeResult]]:
    """Register a check function as a probe of the item `section` / `item` of the template."""

    def register(check: Callable[[ProbeContext], ProbeResult]):
        if key in _REGISTRY:
            raise ValueError(f"probe key {key!r} registered twice")
        _REGISTRY[key] = Probe(
            key=key,
            section=section,
            item=item,
            title=title,
            actions=tuple(actions),
            scope=scope,
            severity=severity,
            remediation=remediation,
            check=check,
            supporting=supporting,
        )
        return check

    return register


def registry() -> dict[str, Probe]:
    return dict(_REGISTRY)


def probes_by_item() -> dict[tuple[str, str], list[Probe]]:
    """(section title, item title) → the probes registered for that item, by key."""
    keyed: dict[tuple[str, str], list[Probe]] = {}
    for registered in sorted(_REGISTRY.values(), key=lambda p: p.key):
        keyed.setdefault((registered.section, registered.item), []).append(registered)
    return keyed


def supporting_keys() -> list[str]:
    """Probes whose results are shown with an item but never prove or fail it."""
    return [key for key, registered in _REGISTRY.items() if registered.supporting]


def is_manual(probes: Iterable[Probe]) -> bool:
    """Only a verifying probe makes an item machine-checked; supporting evidence (a runbook
    document in SSM for a runbook kept in a repository) leaves it to a person."""
    return not any(not registered.supporting for registered in probes)


# IAM action prefixes that differ from the API's signing name, and IAM actions whose names
# differ from the API operation they authorize.
_ACTION_PREFIX = {"monitoring": "cloudwatch", "s3control": "s3"}
_ACTION_OF_OPERATION = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketReplication"): "s3:GetReplicationConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "HeadBucket"): "s3:ListBucket",
}


def action_names(mapping: Mapping[tuple[str, str], str]) -> None:
    """Declare IAM action names that differ from `service:Operation`, from a probe module."""
    _ACTION_OF_OPERATION.update(mapping)


def action_of(call: tuple[str, str]) -> str:
    """The IAM action that authorizes an API call (signing name, operation name)."""
    return _action(call)


def _action(call: tuple[str, str]) -> str:
    service, operation = call
    if (service, operation) in _ACTION_OF_OPERATION:
        return _ACTION_OF_OPERATION[(service, operation)]
    if service == "apigateway":  # API Gateway authorizes by HTTP verb on a resource path
        return "apigateway:GET"
    return f"{_ACTION_PREFIX.get(service, service)}:{operation}"


_ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "AuthorizationError",
    "AuthFailure",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
}
_THROTTLED = call_cache.THROTTLING_CODES


def error_result(exc: BaseException, context: ProbeContext) -> ProbeResult:
    """Describe a failure to read AWS as an `error` result a person can act on."""
    call = context.last_call
    where = _action(call) if call else "the AWS API"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "") or "")
        http = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _ACCESS_DENIED:
            summary = f"Access denied: the probe needs {where}"
        elif code in _THROTTLED:
            summary = f"Throttled by AWS on {where} after {context.max_attempts} attempts"
        elif not code or code.isdigit():
            summary = f"{where} answered HTTP {http or code} with no error code (not supported?)"
        else:
            summary = f"{where} failed: {code}: {error.get('Message', '')}".strip()
        return ProbeResult(Status.ERROR, summary[:500], facts={"error_code": code or http})
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        summary = f"Timed out calling {where} after {context.timeout_seconds:g} s"
    elif isinstance(exc, EndpointConnectionError):
        summary = f"Could not connect to the endpoint for {where}: {exc}"
    elif isinstance(exc, ResponseParserError):
        summary = f"Unreadable response from {where} (the API may not be supported there)"
    elif isinstance(exc, CheckTimeLimitExceeded):
        summary = f"Stopped before {where}: the check reached its time limit"
    elif isinstance(exc, CheckCancelled):
        summary = f"Stopped before {where}: the run was cancelled"
    elif isinstance(exc, NoCredentialsError):
        summary = "No AWS credentials available to the worker"
    elif isinstance(exc, BotoCoreError):
        summary = f"AWS client error on {where}: {exc}"
    else:
        summary = f"The probe failed on {where}: {type(exc).__name__}: {exc}"
    return ProbeResult(Status.ERROR, summary[:500], facts={"exception": type(exc).__name__})


@dataclass(frozen=True)
class Execution:
    probe: Probe
    region: str
    result: ProbeResult
    duration_ms: int


def execute(probe: Probe, context: ProbeContext) -> Execution:
    """Run one probe in one region; every failure becomes an `error` result."""
    started = time.monotonic()
    forget_last_call()
    _calls.probe = probe.key
    _calls.deadline = context.deadline
    _calls.cancelled = context.cancelled
    _calls.limiter = context.limiter
    _calls.account = context.account
    try:
        with _clients.checking(context.session):
            result = probe.check(context)
        if not isinstance(result, ProbeResult):
            raise TypeError(f"probe {probe.key} returned {type(result).__name__}")
    except Exception as exc:  # a probe run never crashes: the error is the result
        result = error_result(exc, context)
    finally:
        _calls.probe = None
        for name in _CHECK_LOCALS:
            setattr(_calls, name, None)
    return Execution(
        probe=probe,
        region=context.region,
        result=result,
        duration_ms=round(1000 * (time.monotonic() - started)),
    )


def verdict(
    findings: Iterable[Finding],
    *,
    passed: str,
    failed: str,
    empty: str,
    warned: str | None = None,
    facts: Mapping[str, Any] | None = None,
) -> ProbeResult:
    """The usual shape: fail if any resource fails, warn if any warns, pass otherwise.

    Summaries may use {failed}, {warned} and {total}; `empty` is the summary when there was
    nothing to judge (not applicable).
    """
    findings = tuple(findings)
    facts = dict(facts or {})
    if not findings:
        return ProbeResult(Status.NOT_APPLICABLE, empty, facts=facts)
    counts = {
        "total": len(findings),
        "failed": sum(f.status == Status.FAIL for f in findings),
        "warned": sum(f.status == Status.WARN for f in findings),
    }
    if counts["failed"]:
        status, summary = Status.FAIL, failed
    elif counts["warned"]:
        status, summary = Status.WARN, warned or failed
    else:
        status, summary = Status.PASS, passed
    ordered = tuple(sorted(findings, key=lambda f: STATUS_ORDER[f.status]))
    return ProbeResult(status, summary.format(**counts), ordered, facts)
