"""Benchmark: memory of a Celery worker running the demo deployment's probe runs.

Starts the AWS emulator with the demo organization (three accounts, two regions: what
`make run` gives), starts one real Celery worker as deployed (Redis broker, PostgreSQL),
clicks "Run probes" --runs times, and prints the memory of each process of the worker
(the parent, and a prefork pool's children) when it is idle after start-up and after the
runs:

- RSS (VmRSS) and its peak (VmHWM): what `ps` and most monitoring show. A prefork child
  counts the pages it still shares copy-on-write with its parent in full, so summing RSS
  over a worker's processes counts those pages once per process.
- PSS (smaps_rollup): each shared page divided among the processes sharing it. PSS sums to
  what the worker really holds in memory; it is the figure to budget a machine by.
- USS (private pages): what the kernel gets back when that process alone exits.

    .venv/bin/python bench/worker_memory.py                        # threads, as deployed
    .venv/bin/python bench/worker_memory.py --pool prefork --concurrency 4

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/readiness_bench_memory,
created if missing) and REDIS_URL (default redis://127.0.0.1:6379/12). Not run by CI.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from probes import bench_deployment, children, cpu_seconds, ensure_database  # noqa: E402


def memory_mb(pid: int) -> dict[str, float]:
    """RSS, peak RSS, PSS and USS of one process, in MB (empty once it is gone)."""
    figures: dict[str, float] = {}
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return figures
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[{"VmRSS": "rss", "VmHWM": "peak"}[name]] = int(value.split()[0]) / 1024
    private = 0
    for line in rollup.splitlines():
        name, _, value = line.partition(":")
        if name == "Pss":
            figures["pss"] = int(value.split()[0]) / 1024
        elif name in ("Private_Clean", "Private_Dirty"):
            private += int(value.split()[0])
    figures["uss"] = private / 1024
    return figures


def report(label: str, worker_pid: int) -> dict[str, float]:
    """Print the worker's processes; returns the largest RSS, peak and PSS of any of them."""
    print(f"\n{label}:")
    print(f"  {'process':<16}{'RSS':>8}{'peak RSS':>10}{'PSS':>8}{'USS':>8}  (MB)")
    largest = {"rss": 0.0, "peak": 0.0, "pss": 0.0}
    total_pss = 0.0
    for index, pid in enumerate([worker_pid, *children(worker_pid)]):
        figures = memory_mb(pid)
        if not figures:
            continue
        name = "parent" if index == 0 else f"child {pid}"
        print(
            f"  {name:<16}{figures['rss']:>8.0f}{figures['peak']:>10.0f}"
            f"{figures['pss']:>8.0f}{figures['uss']:>8.0f}"
        )
        total_pss += figures["pss"]
        for key in largest:
            largest[key] = max(largest[key], figures[key])
    print(f"  the worker in all (sum of PSS): {total_pss:.0f} MB")
    return largest


def wait_for(run, limit: float = 300) -> None:
    clicked = time.monotonic()
    while True:
        time.sleep(0.2)
        run.refresh_from_db()
        if not run.is_active:
            return
        if time.monotonic() - clicked > limit:
            raise SystemExit(f"run #{run.pk} did not finish in {limit:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--worker-args",
        default="",
        help="more arguments for `celery worker`, e.g. '--max-memory-per-child 250000'",
    )
    args = parser.parse_args()

    os.environ.setdefault(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/readiness_bench_memory"
    )
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="readiness-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.project.settings")
    ensure_database(os.environ["DATABASE_URL"])

    from readiness.dev.demo_aws import (
        DEMO_ENV,
        DEMO_REGIONS,
        free_port,
        seed_account,
        seed_organization,
        start_moto_server,
    )

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = start_moto_server(port)
    try:
        seed_account(endpoint)
        accounts = seed_organization(endpoint)
        os.environ.update({**DEMO_ENV, "AWS_ENDPOINT_URL": endpoint})
        measure(args, accounts, DEMO_REGIONS)
    finally:
        moto.terminate()
        moto.wait(timeout=30)


def measure(args, accounts, regions) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from readiness.probe_runs import services as probe_runs

    user, deployment = bench_deployment("bench-memory", accounts, regions)

    command = [sys.executable, "-m", "celery", "-A", "readiness", "worker", "--pool", args.pool]
    command += ["--concurrency", str(args.concurrency), "--loglevel", "WARNING"]
    command += ["-n", "memory@%h", *args.worker_args.split()]
    # As docker-compose.yml and `manage.py serve` run their workers.
    worker = subprocess.Popen(command, cwd=ROOT, env={"MALLOC_ARENA_MAX": "2", **os.environ})
    try:
        time.sleep(8)  # start-up, and a prefork pool's children forked
        print(
            f"{len(accounts)} accounts x {len(regions)} regions, worker: "
            f"{args.pool} x {args.concurrency} {args.worker_args}".rstrip()
        )
        report("idle after start", worker.pid)
        checks, cpu = 0, []
        for _ in range(args.runs):
            before = cpu_seconds(worker.pid)
            run, _ = probe_runs.probe_run_start(deployment=deployment, user=user)
            wait_for(run)
            cpu.append(cpu_seconds(worker.pid) - before)
            checks = run.total
            if run.state != "succeeded":
                print(f"run #{run.pk} ended {run.state}")
        time.sleep(1)
        largest = report(f"after {args.runs} runs of {checks} checks", worker.pid)
        print(
            f"\nlargest process: RSS {largest['rss']:.0f} MB, peak RSS {largest['peak']:.0f} MB,"
            f" PSS {largest['pss']:.0f} MB"
        )
        later = f", later runs {sum(cpu[1:]) / len(cpu[1:]):.2f} s each" if cpu[1:] else ""
        print(f"worker CPU: first run {cpu[0]:.2f} s{later}")
    finally:
        worker.terminate()
        worker.wait(timeout=60)


if __name__ == "__main__":
    main()
