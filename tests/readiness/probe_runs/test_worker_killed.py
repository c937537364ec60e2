"""A worker SIGKILLed mid-run: its checks come back to another worker within the run's time
limit, or the sweeper closes the run as failed naming them; never a check run twice.

The test starts everything it kills or needs to control: a private redis-server on a free
port (the broker), and Celery workers as subprocesses of this test (the app's own `celery -A
readiness worker`, threads pool as in docker-compose.yml) on the test database.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.dev.demo_aws import free_port
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeResultState, ProbeRunState
from readiness.project.celery import app as celery_app
from tests.conftest import IN_CI
from tests.factories import make_deployment
from tests.readiness.probe_runs.test_probe_runs import target

ROOT = Path(__file__).resolve().parents[3]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
# Short enough for a test, with the production relations between them: a check's lease
# (PROBE_CHECK_TIMEOUT) leaves room for a request (twice PROBE_CALL_TIMEOUT, plus backoff), and
# Redis gives an unacknowledged message back after PROBE_RUN_TIMEOUT / 3.
LIMITS = {"PROBE_CHECK_TIMEOUT": "10", "PROBE_CALL_TIMEOUT": "2", "PROBE_MAX_ATTEMPTS": "2"}

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _needs(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def broker(tmp_path):
    """A redis-server of this test's own, on a free port."""
    _needs(os.access(REDIS_SERVER, os.X_OK), f"{REDIS_SERVER} is not installed")
    port = free_port()
    server = subprocess.Popen(
        [
            REDIS_SERVER,
            *("--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
    yield url
    client.close()
    server.terminate()
    server.wait(timeout=10)


@contextmanager
def publishing_to(broker_url: str):
    """This process's Celery app sends to `broker_url` (the run's tasks go after commit)."""
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = broker_url
    celery_app._after_fork()  # drop the pooled connections to the configured broker
    try:
        yield
    finally:
        celery_app.conf.broker_url = previous
        celery_app._after_fork()


@pytest.fixture
def workers(broker, aws, tmp_path):
    """Start workers of the app as subprocesses (each its own process group, so that a kill
    takes the whole worker); every one still alive is killed at the end."""
    database = django_settings.DATABASES["default"]
    _needs(
        database["ENGINE"].endswith("postgresql"),
        "a worker in another process must see the test database: PostgreSQL (DATABASE_URL)",
    )
    started: list[subprocess.Popen] = []
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    database_url = (
        f"postgres://{credentials}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
        f"/{database['NAME']}"
    )

    def start(name: str, run_timeout: int) -> subprocess.Popen:
        env = {
            **os.environ,  # the `aws` fixture's endpoint and credentials among them
            "DATABASE_URL": database_url,
            "REDIS_URL": broker,
            "CELERY_BROKER_URL": broker,
            "CELERY_RESULT_BACKEND": broker,
            "DATA_DIR": str(tmp_path / "data"),
            "PROBE_RUN_TIMEOUT": str(run_timeout),
            **LIMITS,
        }
        env.pop("CI", None)
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - the worker owns it
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "readiness", "worker"),
                *("--pool", "threads", "--concurrency", "1", "--hostname", f"{name}@%h"),
                *("--without-mingle", "--without-gossip", "--loglevel", "INFO"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def kill(worker: subprocess.Popen) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    assert worker.wait(timeout=10) == -signal.SIGKILL


def wait_for(condition, *, seconds: float, what: str, logs: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    tails = "\n".join(
        f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
        for path in sorted(logs.glob("*.log"))
    )
    pytest.fail(f"not within {seconds} s: {what}\n{tails}")


def killed_mid_run(run, worker, tmp_path) -> set[int]:
    """SIGKILL `worker` once some but not all checks are in and one is claimed; returns the
    ids of the checks it held (claimed, not finished) when it died."""

    def mid_run():
        run.refresh_from_db()
        running = run.results.filter(state=ProbeResultState.RUNNING).exists()
        return 0 < run.completed < run.total and running

    wait_for(mid_run, seconds=90, what="worker 1 is mid-run", logs=tmp_path)
    kill(worker)
    held = set(run.results.filter(state=ProbeResultState.RUNNING).values_list("pk", flat=True))
    run.refresh_from_db()
    assert held and 0 < run.completed < run.total, (held, run.completed, run.total)
    return held


def test_a_killed_workers_checks_are_run_by_another_within_the_runs_time_limit(
    broker, workers, aws, member, team, settings, tmp_path
):
    run_timeout = 60  # Redis gives the killed worker's message back after 20 s
    deployment = make_deployment(user=member, team=team)
    target(deployment, regions=("us-east-1", "eu-west-1", "ap-southeast-2"))
    first = workers("worker1", run_timeout)
    with publishing_to(broker):
        run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    held = killed_mid_run(run, first, tmp_path)

    workers("worker2", run_timeout)

    def finished():
        run.refresh_from_db()
        return not run.is_active

    wait_for(finished, seconds=run_timeout + 30, what="the run finished", logs=tmp_path)
    assert run.state == ProbeRunState.SUCCEEDED, (run.state, run.error)
    assert run.finished_at - run.created_at < timedelta(seconds=run_timeout)
    results = list(run.results.all())
    # Every check has its one result, counted once.
    assert run.completed == run.total == len(results)
    assert {r.state for r in results} == {ProbeResultState.DONE}
    assert all(r.status for r in results)
    # The killed worker's checks were claimed again (once), every other check once.
    assert {r.pk: r.attempts for r in results if r.pk in held} == dict.fromkeys(held, 2)
    assert {r.attempts for r in results if r.pk not in held} == {1}


def test_with_no_worker_left_the_sweeper_closes_the_run_naming_the_unfinished_checks(
    broker, workers, aws, member, team, settings, tmp_path
):
    run_timeout = settings.PROBE_RUN_TIMEOUT = 20
    settings.PROBE_CHECK_TIMEOUT = int(LIMITS["PROBE_CHECK_TIMEOUT"])
    deployment = make_deployment(user=member, team=team)
    target(deployment, regions=("us-east-1", "eu-west-1"))
    worker = workers("worker1", run_timeout)
    with publishing_to(broker):
        run, _ = probe_runs.probe_run_start(deployment=deployment, user=member)
    held = killed_mid_run(run, worker, tmp_path)
    done_before = dict(run.results.filter(state=ProbeResultState.DONE).values_list("pk", "summary"))
    unfinished = [
        f"{key} [{account_id} {region}]"
        for key, account_id, region in run.results.exclude(state=ProbeResultState.DONE)
        .order_by("probe_key", "account_id", "region")
        .values_list("probe_key", "account_id", "region")
    ]

    assert probe_runs.probe_runs_sweep() == 0  # before the run's time limit: still running
    wait_for(
        lambda: timezone.now() > run.created_at + timedelta(seconds=run_timeout),
        seconds=run_timeout + 5,
        what="the run's time limit passed",
        logs=tmp_path,
    )
    assert probe_runs.probe_runs_sweep() == 1

    run.refresh_from_db()
    assert run.state == ProbeRunState.FAILED
    assert run.completed == run.total == run.results.filter(state=ProbeResultState.DONE).count()
    assert run.error.startswith(f"{len(unfinished)} probe(s) did not finish within 20 s")
    assert ", ".join(unfinished[:20]) in run.error
    event = AuditEvent.objects.get(action="probe_run.timed_out", object_id=str(run.pk))
    assert event.after["unfinished"] == unfinished
    assert event.reason == run.error
    # What finished before the kill is kept; what the dead worker held says so.
    assert dict(run.results.filter(pk__in=done_before).values_list("pk", "summary")) == (
        done_before
    )
    for result in run.results.filter(pk__in=held):
        assert result.status == "error" and "stopped before it finished" in result.summary
