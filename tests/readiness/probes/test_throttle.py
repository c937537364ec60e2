"""AWS request rates shared by worker processes: a request waits for its slot."""

import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest

from readiness.probes.base import Probe, ProbeContext, ProbeResult, Scope, Severity, Status, execute
from readiness.probes.throttle import RequestLimiter, parse_rates

ROOT = Path(__file__).resolve().parents[3]


def redis_url() -> str:
    from django.conf import settings

    if not settings.PROBE_RATE_STORAGE.startswith("redis"):
        pytest.fail("these tests need Redis: set REDIS_URL (CI starts one)")
    return settings.PROBE_RATE_STORAGE


WORKER = textwrap.dedent(
    """
    import json, sys, time
    from readiness.probes.throttle import RequestLimiter

    storage, account = sys.argv[1], sys.argv[2]
    hits, start_at = int(sys.argv[3]), float(sys.argv[4])
    limiter = RequestLimiter(storage, {"default": "10/second"})
    time.sleep(max(0.0, start_at - time.time()))  # both processes start together
    granted = []
    for _ in range(hits):
        limiter.wait(account=account, service="ec2", region="eu-west-1", interrupt=lambda: None)
        granted.append(time.time())
    print(json.dumps(granted))
    """
)


def test_two_processes_share_one_limit():
    """Two worker processes asking for 20 slots each of a 10-a-second rate: together they
    never get more than 10 in any second, so the 40 take about 3 s, not the 1 s that two
    separate limits would allow."""
    account = f"test-{uuid.uuid4().hex[:12]}"
    start_at = time.time() + 2.0  # after both interpreters have imported boto3 and limits
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_url(), account, "20", str(start_at)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    grants = []
    for process in processes:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        grants.extend(json.loads(out))
    grants.sort()
    assert len(grants) == 40
    # A moving window: no second holds more than 10 grants, whoever asked.
    # (Each time is taken after the grant, a Redis round trip and maybe a busy scheduler
    # late: windows a little under a second leave that slack.)
    busiest = max(sum(1 for t in grants if start <= t < start + 0.9) for start in grants)
    assert busiest <= 10
    assert grants[-1] - grants[0] >= 2.9


def test_accounts_services_and_regions_each_have_their_own_slots(settings):
    limiter = RequestLimiter(redis_url(), {"default": "2/minute"})
    account = f"test-{uuid.uuid4().hex[:12]}"
    never = lambda: pytest.fail("no wait expected")  # noqa: E731
    for key in [
        (account, "ec2", "eu-west-1"),
        (account, "ec2", "eu-west-1"),
        (account, "ec2", "us-east-1"),
        (account, "iam", "eu-west-1"),
        (account + "x", "ec2", "eu-west-1"),
    ]:
        waited = limiter.wait(account=key[0], service=key[1], region=key[2], interrupt=never)
        assert waited == 0


def test_rates_are_per_service_with_a_default():
    rates = parse_rates({"default": "20/second", "iam": "10/second"})
    limiter = RequestLimiter("memory://", {"default": "20/second", "iam": "10/second"})
    assert limiter.rate_of("iam") == rates["iam"] and limiter.rate_of("iam").amount == 10
    assert limiter.rate_of("rds").amount == 20
    with pytest.raises(ValueError, match="default"):
        parse_rates({"ec2": "5/second"})
    with pytest.raises(ValueError, match="'fast' is not like"):
        parse_rates({"default": "fast"})


def _probe(check) -> Probe:
    return Probe(
        key="test.throttle",
        section="Security",
        item="MFA",
        title="test",
        actions=("sts:GetCallerIdentity",),
        scope=Scope.GLOBAL,
        severity=Severity.LOW,
        remediation="",
        check=check,
    )


def _identity_calls(count):
    def check(context: ProbeContext) -> ProbeResult:
        sts = context.client("sts")
        for _ in range(count):
            sts.get_caller_identity()
        return ProbeResult(Status.PASS, f"{count} calls")

    return check


def test_a_throttled_probe_waits_for_its_slots_and_passes(aws):
    limiter = RequestLimiter(redis_url(), {"default": "3/second"})
    context = ProbeContext(
        session=boto3.Session(), region="global", limiter=limiter, account=uuid.uuid4().hex
    )
    started = time.monotonic()
    result = execute(_probe(_identity_calls(7)), context).result
    elapsed = time.monotonic() - started
    assert result.status == Status.PASS, result.summary
    # 3 slots at once, 3 a second after: the 7th request goes out after about 2 s.
    assert elapsed >= 1.8
    assert limiter.waited_seconds >= 0.5


def test_a_check_waiting_for_a_slot_stops_when_its_run_is_cancelled(aws):
    limiter = RequestLimiter(redis_url(), {"default": "1/minute"})
    cancel = threading.Event()
    context = ProbeContext(
        session=boto3.Session(),
        region="global",
        limiter=limiter,
        account=uuid.uuid4().hex,
        cancelled=cancel.is_set,
    )
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    result = execute(_probe(_identity_calls(2)), context).result
    assert result.status == Status.ERROR
    assert result.summary.endswith("the run was cancelled")
    assert time.monotonic() - started < 3


def test_a_check_waiting_for_a_slot_stops_at_its_deadline(aws):
    limiter = RequestLimiter(redis_url(), {"default": "1/minute"})
    context = ProbeContext(
        session=boto3.Session(),
        region="global",
        limiter=limiter,
        account=uuid.uuid4().hex,
        deadline=time.monotonic() + 0.5,
    )
    result = execute(_probe(_identity_calls(2)), context).result
    assert result.status == Status.ERROR and "time limit" in result.summary


def test_without_its_storage_the_limiter_lets_requests_through(aws, caplog):
    # Nothing listens on port 1: every slot request fails at once.
    limiter = RequestLimiter("redis://127.0.0.1:1/0", {"default": "1/minute"})
    context = ProbeContext(session=boto3.Session(), region="global", limiter=limiter, account="x")
    # On the module's logger itself: a test that configured logging earlier in the run may
    # have stopped it propagating to the root logger, where caplog listens.
    throttle_log = logging.getLogger("readiness.probes.throttle")
    throttle_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="readiness.probes.throttle"):
            result = execute(_probe(_identity_calls(3)), context).result
    finally:
        throttle_log.removeHandler(caplog.handler)
    assert result.status == Status.PASS
    # Once, however many requests went unlimited (a record reaches caplog's handler twice
    # when the logger also propagates to the root).
    unique = {id(record): record.getMessage() for record in caplog.records}
    assert sum("limiter unavailable" in message for message in unique.values()) == 1
