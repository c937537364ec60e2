"""Benchmark: the checklist page's CPU in this process, with a profile of where it goes.

Measures the dataset `bench/pages.py --checklist-only` seeded (run that first, or with
--seed-only): the Django test client GETs the checklist page at 56 items (or 224 with
--large) as its reader, through the whole middleware stack. After a warm-up the process
freezes what it allocated (gc.freeze, as the gunicorn workers do after loading the app:
readiness/project/gunicorn_conf.py), then prints the CPU time per request
(time.process_time, so other processes on a busy machine do not count), the statements per
request and the HTML's size. Not run by CI; it asserts nothing.

    .venv/bin/python bench/checklist_cpu.py                   # 200 requests, 56 items
    .venv/bin/python bench/checklist_cpu.py --large           # 224 items
    .venv/bin/python bench/checklist_cpu.py --profile 30      # cProfile (CPU time), top 30
    .venv/bin/python bench/checklist_cpu.py --html page.html  # the HTML, to diff a change

Environment: as bench/pages.py (DATABASE_URL default
postgres://postgres@127.0.0.1:5432/readiness_bench_pages, not recreated here).
"""

import argparse
import cProfile
import gc
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="timed requests")
    parser.add_argument("--warm-up", type=int, default=20, help="requests before timing")
    parser.add_argument("--large", action="store_true", help="the 224-item checklist")
    parser.add_argument("--deployments", type=int, default=50, help="as pages.py was given")
    parser.add_argument(
        "--profile", type=int, metavar="N", help="profile the timed requests; print the top N"
    )
    parser.add_argument("--profile-file", help="also save the profile's statistics here (pstats)")
    parser.add_argument("--html", type=Path, help="write the page's HTML to this file")
    args = parser.parse_args()

    from pages import bench_environment, use_bench_urls

    seeded_file = bench_environment(args.deployments, "checklist")
    if not seeded_file.exists():
        raise SystemExit(f"no {seeded_file}: run bench/pages.py --checklist-only first")
    dataset = json.loads(seeded_file.read_text())

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    use_bench_urls()
    # DATA_DIR is a new temporary directory unless set: the page's stylesheet links need a
    # manifest there.
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)  # the seeded database follows the code measured
    reader = get_user_model().objects.get(pk=dataset["reader"])
    path = reverse("deployment_detail", args=[dataset["large" if args.large else "checklist"]])
    client = Client()
    client.force_login(reader)

    def get():
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        return response

    for _ in range(args.warm_up):
        get()
    with CaptureQueriesContext(connection) as captured:
        body = get().content
    queries = len(captured.captured_queries)
    if args.html:
        args.html.write_bytes(body)
    gc.collect()
    gc.freeze()
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    # CPU time per batch of 10: on a shared machine other processes slow this one's CPU too
    # (caches, the other hyperthread); the quickest batches are the closest to a quiet run.
    batches = []
    if profiler:
        profiler.enable()
    for _ in range(max(1, args.requests // 10)):
        started = time.process_time()
        for _ in range(10):
            get()
        batches.append((time.process_time() - started) / 10)
    if profiler:
        profiler.disable()
    batches.sort()
    print(
        f"{path}: {1000 * statistics.mean(batches):.2f} ms CPU per request over "
        f"{10 * len(batches)} (in process, test client{', profiled' if profiler else ''}); "
        f"batches of 10: best {1000 * batches[0]:.2f}, "
        f"best quarter {1000 * statistics.mean(batches[: max(1, len(batches) // 4)]):.2f}, "
        f"median {1000 * statistics.median(batches):.2f} ms; "
        f"{queries} queries, {len(body) / 1024:.1f} KB"
    )
    if profiler:
        if args.profile_file:
            profiler.dump_stats(args.profile_file)
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(args.profile)
        stats.sort_stats("tottime").print_stats(args.profile)
        # The project's own functions, where a change would go.
        stats.sort_stats("cumulative").print_stats(r"/(readiness|signoff)/", args.profile)


if __name__ == "__main__":
    main()
