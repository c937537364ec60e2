import gc
import os

from celery import Celery
from celery.signals import (
    after_setup_logger,
    task_postrun,
    task_prerun,
    worker_before_create_process,
)

from readiness.project.logs import WorkerLogStep, json_after_celery_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.project.settings")
# Celery's Django fixup runs Django's system checks when a worker starts, and the URL checks
# import every view, with WeasyPrint, pyHanko and pypdf behind the record pages: some 60 MB
# in each worker, which a worker running probes never uses (records import them when they
# render). The checks run where the site is deployed (`manage.py migrate`, `check`).
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("readiness")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks live with their concern, not at the apps' top level where autodiscovery looks.
app.autodiscover_tasks(
    [
        "readiness.project",
        "readiness.checklists",
        "readiness.outbox",
        "readiness.probe_runs",
        "signoff.records",
        "signoff.notifications",
    ]
)


# LOG_FORMAT=json: tasks log JSON lines carrying the request id of the request that sent them
# (both hooks do nothing in text mode, which keeps Celery's own log format).
app.steps["worker"].add(WorkerLogStep)
after_setup_logger.connect(json_after_celery_logging, weak=False)


def _tune_embedded_broker() -> None:
    """Poll the SQLite broker every 0.1 s instead of 1 s (~110 ms task latency).

    kombu passes broker_transport_options to create_engine for this transport, so the
    polling interval has to be set on the transport class itself.
    """
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("sqla+"):
        from kombu.transport import sqlalchemy

        sqlalchemy.Transport.polling_interval = 0.1


app.on_after_configure.connect(lambda sender, **kwargs: _tune_embedded_broker(), weak=False)


def _close_old_connections(task=None, **kwargs) -> None:
    """What Django does around a web request, around a task: drop a connection that is past
    CONN_MAX_AGE or broken, keep a good one (CELERY_DB_REUSE_MAX stops Celery closing them
    all). Not around an eager task: it runs inside its caller, maybe inside a transaction."""
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


task_prerun.connect(_close_old_connections, weak=False)
task_postrun.connect(_close_old_connections, weak=False)


# A prefork child shares its parent's pages until it writes to them, and the garbage
# collector writes to every object it examines: the first collections in a child copied most
# of what the parent had imported (a child held ~58 MB of its own before its first task).
# Objects frozen before the fork are left out of collections (gc.freeze, made for this).
worker_before_create_process.connect(lambda **kwargs: gc.freeze(), weak=False)
