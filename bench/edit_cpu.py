"""Benchmark: CPU and queries of one item edit on a signed deployment, in process.

The edit bench/concurrency.py makes under load (a note changed with a reason on an approved
deployment, the save that re-evaluates the sign-offs), made here through Django's test
client with no server and no other users: process CPU per edit and the statements it runs.
CPU time is what a busy machine disturbs least, so two versions measured one after the
other in the same minutes compare fairly (run each from its own checkout).

    .venv/bin/python bench/edit_cpu.py                 # 5 batches of 40 edits
    .venv/bin/python bench/edit_cpu.py --edits 100 --batches 7

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/readiness_bench_edit,
recreated), REDIS_URL (default redis://127.0.0.1:6379/13). Not run by CI.
"""

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import concurrency  # noqa: E402  (seed and item_version, as the load bench uses them)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=40, help="edits per batch")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--sql", action="store_true", help="print the statements of one edit")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        help="also profile this many edits (cProfile over CPU time)",
    )
    parser.add_argument(
        "--freeze",
        action="store_true",
        help="gc.freeze() after the warm-up edits, as the gunicorn workers do once loaded",
    )
    parser.add_argument("--profile-file", help="also save the profile's statistics here (pstats)")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/readiness_bench_edit")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="readiness-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.project.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    concurrency.recreate_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    logging.disable(logging.CRITICAL)
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)
    plans, editors = concurrency.seed(2, 1)
    plan = plans[0]
    client = Client()
    client.force_login(editors[0])
    page = f"http://testserver/deployments/{plan['deployment']}/"

    def edit() -> None:
        item = random.choice(plan["items"])
        version, status = concurrency.item_version(item)
        prefix = f"item{item}"
        data = {
            f"{prefix}-status": status,
            f"{prefix}-note": f"checked {random.random():.8f}",
            f"{prefix}-evidence_url": "",
            f"{prefix}-na_reason": "",
            f"{prefix}-reason": "re-checked under load",
            f"{prefix}-version": version,
        }
        url = f"/deployments/{plan['deployment']}/items/{item}/"
        response = client.post(url, data, headers={"HX-Request": "true", "HX-Current-URL": page})
        assert response.status_code == 200, response.status_code

    for _ in range(10):  # the first edits turn the sign-offs stale, as under load
        edit()
    with CaptureQueriesContext(connection) as captured:
        edit()
    statements = [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    ]
    if args.sql:
        print("\n\n".join(statements))
    import gc

    if args.freeze:
        gc.collect()
        gc.freeze()
    print(f"objects the collector tracks: {len(gc.get_objects()):,}")
    pauses = {0: [], 1: [], 2: []}
    began = {}

    def timed(phase, info):
        if phase == "start":
            began["at"] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - began["at"])

    gc.callbacks.append(timed)
    per_edit = []
    for _ in range(args.batches):
        started = time.process_time()
        for _ in range(args.edits):
            edit()
        per_edit.append(1000 * (time.process_time() - started) / args.edits)
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile(time.process_time)  # CPU, not waits on the database
        profiler.runcall(lambda: [edit() for _ in range(args.profile)])
        if args.profile_file:
            profiler.dump_stats(args.profile_file)
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(45)
    gc.callbacks.remove(timed)
    edits = args.batches * args.edits
    print(
        "garbage collection per edit: "
        + ", ".join(
            f"gen{gen} {len(times) / edits:.2f}x {1000 * sum(times) / edits:.2f} ms"
            + (f" (longest {1000 * max(times):.1f} ms)" if times else "")
            for gen, times in pauses.items()
        )
    )
    # The bench's own read of the item's version is one of the statements counted.
    print(f"statements per edit: {len(statements) - 1} (transaction statements aside)")
    print(
        f"CPU per edit: median {statistics.median(per_edit):.1f} ms, "
        f"min {min(per_edit):.1f} ms over {args.batches} batches of {args.edits}"
    )


if __name__ == "__main__":
    main()
