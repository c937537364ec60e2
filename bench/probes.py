"""Benchmark: probe runs on real Celery workers against the AWS emulator.

Seeds a moto server with an organization of N emulated accounts (the demo account, scaled,
and N - 1 member accounts created through Organizations, each seeded the same way and read
through the role the probes assume there, as the demo's members are), makes a deployment
whose target spans them, starts W real Celery worker processes (Redis broker, PostgreSQL by
default — the production stack), clicks "Run probes" through the same service the button
calls, and waits until the run is closed. Reports per run the wall time from the click to
the run closed, checks per second, the time per account (wall time ÷ accounts) and the
spread of each account's own span (its first check's start to its last check's end), and
over the timed runs the emulator's CPU (cores busy, and its share of the CPU the emulator
and the workers used together: near one core the emulator, a single process, is the
bottleneck), the peak RSS of each worker process (VmHWM), the load average of the machine,
and the time per check and region against Prowler's (8 checks in one region of the same
emulated account in 18-20 s). Not run by CI.

    .venv/bin/python bench/probes.py --accounts 1 --workers 2      # demo account, 2 regions
    .venv/bin/python bench/probes.py --accounts 10 --workers 2 --runs 3
    .venv/bin/python bench/probes.py --scale 10 --workers 4 --concurrency 8

Measured 2026-12-06 on 2 quiet cores, the code of 08:27 UTC (the table with every column
and the earlier figures are in README.md, Benchmark), 2 regions, scale 1:
N = 1, W = 1: 2.48 s per account, 46.4 checks/s, emulator 0.30 core, 183 MB per worker;
N = 1, W = 2: 2.63 s per account, 43.8 checks/s, 176-180 MB;
N = 10, W = 1: 3.86 s per account, 29.8 checks/s, 188 MB (one worker's interpreter full);
N = 10, W = 2: 2.58 s per account, 44.6 checks/s, emulator 0.38 core, 185 MB;
N = 10, W = 4: 2.53 s per account, 45.5 checks/s (the 2 cores were full at W = 2);
N = 50, W = 2: 2.74 s per account, 42.2 checks/s, 204-206 MB (288-314 MB at first).

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


def bench_deployment(service: str, accounts, regions):
    """(user, deployment): a new deployment of the default template whose AWS target is
    `accounts` (each read in `regions`), made through the services as a person would."""
    from django.contrib.auth import get_user_model

    from readiness.checklists import selectors, services, targets
    from readiness.checklists.models import Team

    user, _ = get_user_model().objects.get_or_create(username="bench")
    team, _ = Team.objects.get_or_create(name="Bench", defaults={"slug": "bench"})
    team.members.add(user)
    deployment = services.deployment_create(
        user=user,
        team=team,
        template=selectors.default_template(),
        service=service,
        environment="production",
        version=str(int(time.time())),
        planned_date=None,
    )
    targets.deployment_set_aws_target(
        deployment=deployment,
        user=user,
        accounts=[
            targets.AccountSpec(
                account_id=account.account_id,
                name=account.name,
                regions=list(regions),
                role_arn=account.role_arn,
            )
            for account in accounts
        ],
    )
    return user, deployment


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


PROWLER_SECONDS_PER_CHECK = (18 / 8, 20 / 8)  # 8 checks, one region, 18-20 s


def account_spans(run) -> dict[str, float]:
    """{account: seconds from its first check's start to its last check's end}."""
    starts, ends = {}, {}
    for started_at, finished_at, account in run.results.values_list(
        "started_at", "finished_at", "account_id"
    ):
        if started_at is None or finished_at is None:
            continue
        starts[account] = min(starts.get(account, started_at), started_at)
        ends[account] = max(ends.get(account, finished_at), finished_at)
    return {account: (ends[account] - starts[account]).total_seconds() for account in starts}


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def start_workers(count: int, pool: str, concurrency: int, queues: str) -> list:
    command = [sys.executable, "-m", "celery", "-A", "readiness", "worker", "--pool", pool]
    command += ["--concurrency", str(concurrency), "--loglevel", "WARNING"]
    if queues:
        command += ["-Q", queues]
    return [
        subprocess.Popen(
            [*command, "-n", f"bench{index}@%h"],
            cwd=ROOT,
            # As docker-compose.yml and `manage.py serve` run their workers.
            env={"MALLOC_ARENA_MAX": "2", **os.environ},
        )
        for index in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1, help="emulated accounts in the run")
    parser.add_argument("--scale", type=int, default=1, help="account size multiplier (1 = demo)")
    parser.add_argument("--regions", default="us-east-1,eu-west-1")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (celery worker)")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    parser.add_argument(
        "--queues",
        default="",
        help="the workers' -Q (default: the queues docker-compose.yml gives)",
    )
    parser.add_argument(
        "--rates",
        default="",
        help='PROBE_AWS_RATES for the workers, e.g. \'{"default": "1000/second"}\' (default: '
        "the app's, which keep to AWS's quotas)",
    )
    args = parser.parse_args()
    regions = tuple(args.regions.split(","))

    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/readiness_bench")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="readiness-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.project.settings")
    if args.rates:
        os.environ["PROBE_AWS_RATES"] = args.rates
    ensure_database(os.environ["DATABASE_URL"])

    from readiness.dev.demo_aws import DEMO_ENV, free_port, seed_copies, start_moto_server

    if not 1 <= args.accounts <= 100:
        raise SystemExit("--accounts: 1 to 100 (a deployment spans at most 100 accounts)")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = start_moto_server(port)
    started = time.monotonic()
    accounts = seed_copies(endpoint, members=args.accounts - 1, regions=regions, scale=args.scale)
    print(f"seeded {len(accounts)} account(s) on {endpoint} in {time.monotonic() - started:.1f} s")
    os.environ.update({**DEMO_ENV, "AWS_ENDPOINT_URL": endpoint})

    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from readiness.probe_runs import services as probe_runs

    user, deployment = bench_deployment("bench", accounts, regions)

    workers = start_workers(args.workers, args.pool, args.concurrency, args.queues)
    try:
        time.sleep(4)  # worker start-up is not part of a click
        timings, rates, spans, loads = [], [], [], []
        cpu_before = {}
        limit = 300 * len(accounts)
        for number in range(args.runs + 1):
            if number == 1:  # after the warm-up
                cpu_before = {
                    "moto": cpu_seconds(moto.pid),
                    "workers": sum(cpu_seconds(w.pid) for w in workers),
                    "bench": time.process_time(),
                    "wall": time.monotonic(),
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
                if time.monotonic() - clicked > limit:
                    raise SystemExit(f"run #{run.pk} did not finish in {limit} s")
            elapsed = (run.finished_at - clicked_at).total_seconds()
            statuses: dict[str, int] = {}
            for status in run.results.values_list("status", flat=True):
                statuses[status] = statuses.get(status, 0) + 1
            span = account_spans(run)
            label = "warm-up" if number == 0 else f"run {number}"
            print(
                f"{label}: {run.total} checks, {elapsed:.3f} s, "
                f"{run.total / elapsed:.1f} checks/s, {run.state}, {statuses}; "
                f"per account {elapsed / len(accounts):.3f} s, span of an account: min "
                f"{min(span.values(), default=0):.3f} s, max {max(span.values(), default=0):.3f}"
                f" s; load {load_average()}"
            )
            if number:
                timings.append(elapsed)
                rates.append(run.total / elapsed)
                spans.extend(span.values())
                loads.append(os.getloadavg()[0])
        wall = time.monotonic() - cpu_before["wall"]
        rss = [peak_rss_mb(worker.pid) for worker in workers]
        cpu = {
            "moto": cpu_seconds(moto.pid) - cpu_before["moto"],
            "workers": sum(cpu_seconds(w.pid) for w in workers) - cpu_before["workers"],
            "this process (clicks, polling every 0.1 s)": time.process_time() - cpu_before["bench"],
        }
        median = statistics.median(timings)
        per_check = median / (run.total or 1)
        print(
            f"\nclick → run closed: median {median:.3f} s, min {min(timings):.3f} s, "
            f"max {max(timings):.3f} s over {len(timings)} runs ({run.total} checks, "
            f"{args.accounts} account(s) x {len(regions)} regions, scale {args.scale}, "
            f"{args.workers} worker(s) x {args.concurrency} {args.pool})"
        )
        print(f"checks/s: median {statistics.median(rates):.1f}")
        print(
            f"per-account time (wall ÷ {len(accounts)} accounts): "
            f"{median / len(accounts):.3f} s; span of an account (first check's start to last "
            f"check's end): min {min(spans):.3f} s, median {statistics.median(spans):.3f} s, "
            f"max {max(spans):.3f} s"
        )
        print(
            f"emulator CPU: {cpu['moto'] / wall:.2f} cores busy over the timed runs, "
            f"{100 * cpu['moto'] / (cpu['moto'] + cpu['workers']):.0f} % of the CPU the "
            "emulator and the workers used"
        )
        print(f"peak RSS per worker: {', '.join(f'{value:.0f} MB' for value in rss)}")
        print(
            f"load average (1 min) during the timed runs: median {statistics.median(loads):.2f}, "
            f"max {max(loads):.2f} on {os.cpu_count()} cores"
        )
        print(
            "CPU per run: "
            + ", ".join(f"{name} {seconds / len(timings):.2f} s" for name, seconds in cpu.items())
        )
        low, high = PROWLER_SECONDS_PER_CHECK
        print(
            f"per check and region: {1000 * per_check:.0f} ms (Prowler {1000 * low:.0f}-"
            f"{1000 * high:.0f} ms: {low / per_check:.0f}-{high / per_check:.0f}x faster)"
        )
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # A warm shutdown on a loaded machine can outlast the wait: no stray worker.
                worker.kill()
                worker.wait()
        moto.terminate()


if __name__ == "__main__":
    main()
