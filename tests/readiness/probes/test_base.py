"""The framework's promise: every way AWS or an emulator fails is an `error`, never a pass."""

import time
from dataclasses import replace

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from readiness.probes import base
from readiness.probes.base import (
    Finding,
    Probe,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    execute,
    registry,
    verdict,
)
from readiness.probes.runner import plan


def raising(exc):
    def check(context):
        raise exc

    return Probe(
        key="test.raises",
        section="Security",
        item="MFA",
        title="raises",
        actions=("iam:ListUsers",),
        scope=Scope.GLOBAL,
        severity=Severity.LOW,
        remediation="",
        check=check,
    )


def client_error(code, status=400):
    return ClientError(
        {
            "Error": {"Code": code, "Message": "nope"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "ListUsers",
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (client_error("AccessDenied", 403), "Access denied: the probe needs"),
        (client_error("ThrottlingException"), "Throttled by AWS"),
        (client_error("500", 500), "answered HTTP 500 with no error code"),
        (client_error("", 404), "answered HTTP 404 with no error code"),
        (client_error("ValidationError"), "failed: ValidationError: nope"),
        (ConnectTimeoutError(endpoint_url="http://x"), "Timed out calling"),
        (ReadTimeoutError(endpoint_url="http://x"), "Timed out calling"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), "Could not connect"),
        (ResponseParserError("bad XML"), "Unreadable response"),
        (NoCredentialsError(), "No AWS credentials"),
        (KeyError("Users"), "The probe failed on"),
    ],
)
def test_every_failure_becomes_an_error_result(exc, expected):
    execution = execute(raising(exc), ProbeContext(session=None, region="global"))
    assert execution.result.status == Status.ERROR
    assert expected in execution.result.summary


def test_a_probe_returning_something_else_is_an_error_not_a_pass():
    probe = raising(None)
    probe = Probe(**{**probe.__dict__, "check": lambda context: "looks fine"})
    assert execute(probe, ProbeContext(session=None, region="global")).result.status == "error"


def test_access_denied_names_the_iam_action_of_the_refused_call(aws, make_context):
    from botocore.stub import Stubber

    context = make_context()
    s3 = context.client("s3")
    with Stubber(s3) as stubber:
        stubber.add_client_error("list_buckets", service_error_code="AccessDenied")
        probe = raising(None)
        probe = Probe(**{**probe.__dict__, "check": lambda c: c.client("s3").list_buckets()})
        result = execute(probe, context).result
    assert result.summary == "Access denied: the probe needs s3:ListAllMyBuckets"


def test_a_check_past_its_deadline_sends_no_aws_request_and_says_so(aws):
    sent = []
    # Last, so it counts only what actually leaves botocore.
    aws.events.register_last("before-send", lambda **kwargs: sent.append(kwargs["event_name"]))
    probe = registry()["iam.least_privilege"]

    def run(deadline):
        context = ProbeContext(session=aws, region="global", max_attempts=1, deadline=deadline)
        return execute(probe, context).result

    late = run(time.monotonic() - 1)
    assert late.status == Status.ERROR and not sent
    assert late.summary.endswith(": the check reached its time limit")
    assert late.summary.startswith("Stopped before iam:")
    assert run(time.monotonic() + 60).status != Status.ERROR and sent


def test_verdict_fails_warns_passes_and_is_not_applicable_when_empty():
    fail = Finding("a", Status.FAIL, "x")
    warn = Finding("b", Status.WARN, "y")
    ok = Finding("c", Status.PASS, "z")
    kwargs = {
        "passed": "{total} ok",
        "failed": "{failed} bad",
        "warned": "{warned} meh",
        "empty": "none",
    }
    assert verdict([ok, warn, fail], **kwargs).status == Status.FAIL
    assert verdict([ok, warn, fail], **kwargs).findings[0] == fail  # failures first
    assert verdict([ok, warn], **kwargs).summary == "1 meh"
    assert verdict([ok], **kwargs) == ProbeResult(Status.PASS, "1 ok", (ok,), {})
    assert verdict([], **kwargs).status == Status.NOT_APPLICABLE


def test_the_plan_runs_global_probes_once_and_regional_probes_per_region():
    probes = list(registry().values())
    pairs = plan(probes, ["us-east-1", "eu-west-1", "us-east-1"])
    for probe in probes:
        regions = [region for p, region in pairs if p is probe]
        assert regions == (["global"] if probe.scope == "global" else ["us-east-1", "eu-west-1"])


def test_every_probe_points_at_an_item_of_the_default_template_and_declares_its_actions():
    from readiness.checklists import markdown_import
    from readiness.checklists.services import DEFAULT_TEMPLATE_FILE

    template = markdown_import.parse(DEFAULT_TEMPLATE_FILE.read_text())
    items = {(s.title, i.title) for s in template.sections for i in s.items}
    for probe in registry().values():
        assert (probe.section, probe.item) in items, probe.key
        assert probe.actions and all(":" in action for action in probe.actions), probe.key
        assert probe.remediation.strip(), probe.key


def _pooled(pool, session, key):
    with pool.lock:
        return pool.get(session, key, object)


def test_a_process_keeps_the_clients_of_the_accounts_being_checked_only():
    # A worker reading many accounts would otherwise keep every account's clients for as long
    # as its session lives (~8 MB per account), or a fixed number that is several accounts'
    # worth while its threads are on one or two.
    pool = base.ClientPool()
    a, b, c = object(), object(), object()
    with pool.checking(a):
        with pool.checking(b), pool.checking(b):  # two threads on b
            first = _pooled(pool, a, ("ec2", "us-east-1"))
            _pooled(pool, b, ("ec2", "us-east-1"))
            assert _pooled(pool, a, ("ec2", "us-east-1")) is first
            assert _pooled(pool, a, ("ec2", "eu-west-1")) is not first
            assert set(pool.sessions()) == {a, b}
        assert pool.sessions() == [a]  # b's checks ended while a's run: b's clients went
        with pool.checking(c):
            _pooled(pool, c, ("iam", "us-east-1"))
            assert set(pool.sessions()) == {a, c}
        assert _pooled(pool, a, ("ec2", "us-east-1")) is first
    assert pool.sessions() == [a]  # nothing else is being checked: kept for a's next checks
    assert len(pool) == 2
    with pool.checking(a):
        assert _pooled(pool, a, ("ec2", "us-east-1")) is first
    with pool.checking(b):
        assert pool.sessions() == []  # another account's checks started: a's went


def test_an_account_being_checked_keeps_its_clients_whatever_the_others_do():
    pool = base.ClientPool()
    busy = object()
    with pool.checking(busy):
        client = _pooled(pool, busy, ("s3", "us-east-1"))
        for _ in range(5):
            other = object()
            with pool.checking(other):
                _pooled(pool, other, ("s3", "us-east-1"))
            assert pool.sessions() == [busy]
        assert _pooled(pool, busy, ("s3", "us-east-1")) is client


def test_a_check_keeps_its_accounts_clients_until_it_ends(aws, monkeypatch):
    monkeypatch.setattr(base, "_clients", base.ClientPool())
    reused = []

    def check(context):
        sts = context.client("sts")
        reused.append(context.client("sts") is sts)
        with base._clients.checking(object()):  # another thread's check, of another account
            pass
        reused.append(context.client("sts") is sts)
        return ProbeResult(Status.PASS, "read")

    with base._clients.checking(object()):  # and another still running
        execution = execute(
            replace(raising(None), check=check),
            ProbeContext(session=aws, region="us-east-1", max_attempts=1),
        )
        assert len(base._clients) == 0
    assert execution.result.status == Status.PASS
    assert reused == [True, True]


def test_clients_used_outside_a_check_are_those_of_the_last_account_done(aws, monkeypatch):
    monkeypatch.setattr(base, "_clients", base.ClientPool())
    context = ProbeContext(session=aws, region="us-east-1", max_attempts=1)
    sts = context.client("sts")
    assert context.client("sts") is sts
    with base._clients.checking(object()):
        pass
    assert context.client("sts") is not sts  # another account's checks ran since


def test_a_client_not_kept_leaves_the_shared_ones_alone(aws, monkeypatch):
    monkeypatch.setattr(base, "_clients", base.ClientPool())
    context = ProbeContext(session=aws, region="us-east-1", max_attempts=1)
    kept = context.client("ec2")
    once = context.client("ec2", "sa-east-1", keep=False)
    assert once.meta.region_name == "sa-east-1"
    assert once is not context.client("ec2", "sa-east-1", keep=False)
    assert len(base._clients) == 1
    assert context.client("ec2", keep=False) is kept  # a kept one serves when there is one
