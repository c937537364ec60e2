"""gunicorn's settings, for every launch of the web server: the image's command,
docker-compose.yml's web service and `manage.py serve` pass
`--config python:readiness.project.gunicorn_conf` (bench/concurrency.py too).

Workers: WEB_CONCURRENCY (gunicorn reads it itself; the image sets 2).
"""

import gc

# A request runs on a thread of its worker; the worker's threads share one interpreter lock.
threads = 4


def post_worker_init(worker) -> None:
    """Freeze what loading the app allocated (~200,000 objects: modules, models, URL
    patterns, settings), so the collector never walks it again.

    A full collection walks every tracked object while every thread of the worker waits on
    the interpreter lock: ~100 ms of CPU in a loaded worker, about once every hundred item
    edits, added to each request in flight there. Frozen, the loaded objects stay out of
    every collection; what requests allocate is collected as before. (They live as long as
    the worker anyway.)
    """
    gc.freeze()
