"""Benchmark: the fixed CPU of a request, logged in and anonymous, in this process.

The bare view of bench/pages.py ("ok", no query of its own) through the whole middleware
stack with Django's test client: what every page, htmx save and poll pays before its view
runs. Logged in, that is mostly reading the session and its user (signoff.teams.sessions,
AccountBackend). After 100 warm-up requests the process freezes what it allocated
(gc.freeze, as the gunicorn workers do), then times batches of 20 requests with
time.process_time and prints the best and the median batch per request. Run two checkouts
one after the other to compare them. Not run by CI; it asserts nothing.

    .venv/bin/python bench/pages.py --checklist-only --seed-only   # a user to log in
    .venv/bin/python bench/bare_cpu.py

Environment: as bench/pages.py (DATABASE_URL default
postgres://postgres@127.0.0.1:5432/readiness_bench_pages, not recreated here).
"""

import argparse
import gc
import logging
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
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch", type=int, default=20, help="requests per batch")
    args = parser.parse_args()

    from pages import bench_environment, use_bench_urls

    bench_environment(50, "checklist")
    import django

    django.setup()
    logging.disable(logging.CRITICAL)
    from django.contrib.auth import get_user_model
    from django.test import Client

    use_bench_urls()
    user = get_user_model().objects.filter(is_active=True).order_by("pk").first()
    if user is None:
        raise SystemExit("no user: run bench/pages.py --checklist-only --seed-only first")
    logged_in = Client()
    logged_in.force_login(user)

    def measure(client) -> tuple[float, float]:
        for _ in range(100):
            response = client.get("/bench/bare/")
            if response.status_code != 200:
                raise SystemExit(f"/bench/bare/ answered {response.status_code}")
        gc.collect()
        gc.freeze()
        batches = []
        for _ in range(args.batches):
            started = time.process_time()
            for _ in range(args.batch):
                client.get("/bench/bare/")
            batches.append((time.process_time() - started) / args.batch * 1000)
        gc.unfreeze()
        return min(batches), statistics.median(batches)

    for label, client in [("anonymous", Client()), ("logged in", logged_in)]:
        best, median = measure(client)
        print(f"/bench/bare/ {label}: best {best:.3f} ms, median {median:.3f} ms CPU per request")
    if not logged_in.get("/bench/bare/").wsgi_request.user.is_authenticated:
        raise SystemExit("the logged-in client was not logged in: its figures are not")


if __name__ == "__main__":
    main()
