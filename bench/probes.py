"""Benchmark: wall time from "Run probes" to the last stored result, and peak worker RSS.

Seeds a moto server with an account of a given size, starts real Celery workers (Redis broker,
PostgreSQL by default — the production stack), starts a run through the same service the
"Run probes" button calls, and waits until the run is closed. Not run by CI.

    .venv/bin/python bench/probes.py                      # demo account, 2 regions, 5 runs
    .venv/bin/python bench/probes.py --scale 10 --workers 2 --concurrency 8

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/readiness_bench, created
if missing) and REDIS_URL (default redis://127.0.0.1:6379/14).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of a process and its children, the largest one, in MB."""
    peaks = []
    for candidate in [pid, *children(pid)]:
        try:
            status = Path(f"/proc/{candidate}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


def children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    result = [int(child) for child in found]
    for child in list(result):
        result.extend(children(child))
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far."""
    total = 0.0
    for candidate in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{candidate}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def ensure_database(url: str) -> None:
    if not url.startswith("postgres"):
        return
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=1, help="account size multiplier (1 = demo)")
    parser.add_argument("--regions", default="us-east-1,eu-west-1")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (celery worker)")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    args = parser.parse_args()
    regions = tuple(args.regions.split(","))

    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/readiness_bench")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="readiness-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.project.settings")
    ensure_database(os.environ["DATABASE_URL"])

    from readiness.dev.demo_aws import (
        DEMO_ACCOUNT,
        DEMO_ENV,
        free_port,
        seed_account,
        start_moto_server,
    )

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = start_moto_server(port)
    started = time.monotonic()
    counts = seed_account(endpoint, regions=regions, scale=args.scale)
    print(f"seeded {endpoint} in {time.monotonic() - started:.1f} s: {counts}")
    os.environ.update({**DEMO_ENV, "AWS_ENDPOINT_URL": endpoint})

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from readiness.checklists import selectors, services
    from readiness.checklists.models import Team
    from readiness.probe_runs import services as probe_runs

    user, _ = get_user_model().objects.get_or_create(username="bench")
    team, _ = Team.objects.get_or_create(name="Bench", defaults={"slug": "bench"})
    team.members.add(user)
    deployment = services.deployment_create(
        user=user,
        team=team,
        template=selectors.default_template(),
        service="bench",
        environment="production",
        version=str(int(time.time())),
        planned_date=None,
    )
    services.deployment_set_aws_target(
        deployment=deployment, user=user, aws_account_id=DEMO_ACCOUNT, aws_regions=list(regions)
    )

    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "readiness",
                "worker",
                "--pool",
                args.pool,
                "--concurrency",
                str(args.concurrency),
                "--loglevel",
                "WARNING",
                "-n",
                f"bench{index}@%h",
            ],
            cwd=ROOT,
            # As docker-compose.yml and `manage.py serve` run their workers.
            env={"MALLOC_ARENA_MAX": "2", **os.environ},
        )
        for index in range(args.workers)
    ]
    try:
        time.sleep(4)  # worker start-up is not part of a click
        timings = []
        cpu_before = {}
        for number in range(args.runs + 1):
            if number == 1:  # after the warm-up
                cpu_before = {
                    "moto": cpu_seconds(moto.pid),
                    "workers": sum(cpu_seconds(w.pid) for w in workers),
                    "bench": time.process_time(),
                }
            clicked, clicked_at = time.monotonic(), timezone.now()
            run, _ = probe_runs.probe_run_start(deployment=deployment, user=user)
            # The worker stamps the run's close (finished_at) on this host's clock, so the
            # poll can be as slow as a page's and still time the run to the millisecond,
            # without this process taking CPU from the workers and the emulator.
            while True:
                time.sleep(0.1)
                run.refresh_from_db()
                if not run.is_active:
                    break
                if time.monotonic() - clicked > 120:
                    raise SystemExit(f"run #{run.pk} did not finish in 120 s")
            elapsed = (run.finished_at - clicked_at).total_seconds()
            statuses = {}
            for status in run.results.values_list("status", flat=True):
                statuses[status] = statuses.get(status, 0) + 1
            label = "warm-up" if number == 0 else f"run {number}"
            print(f"{label}: {run.total} checks, {elapsed:.3f} s, {run.state}, {statuses}")
            if number:
                timings.append(elapsed)
        rss = [peak_rss_mb(worker.pid) for worker in workers]
        cpu = {
            "moto": cpu_seconds(moto.pid) - cpu_before["moto"],
            "workers": sum(cpu_seconds(w.pid) for w in workers) - cpu_before["workers"],
            "this process (clicks, polling every 0.1 s)": time.process_time() - cpu_before["bench"],
        }
        print(
            f"\nclick → last result: median {statistics.median(timings):.3f} s, "
            f"min {min(timings):.3f} s, max {max(timings):.3f} s over {len(timings)} runs "
            f"({run.total} checks, {len(regions)} regions, scale {args.scale}, "
            f"{args.workers} worker(s) x {args.concurrency} {args.pool})"
        )
        print(f"peak worker RSS: {', '.join(f'{value:.0f} MB' for value in rss)}")
        print(
            "CPU per run: "
            + ", ".join(f"{name} {seconds / len(timings):.2f} s" for name, seconds in cpu.items())
        )
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        moto.terminate()


if __name__ == "__main__":
    main()
