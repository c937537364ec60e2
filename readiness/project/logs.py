"""Structured logs (LOG_FORMAT=json): one JSON object a line, each carrying the request id,
the user id and, on a deployment's pages, the deployment id; tasks a request caused carry
its request id too.

django-structlog binds the request's context (request id, user id) and logs each request
and task; structlog renders every line, the app's and the libraries' stdlib logging alike,
through one JSON formatter, merging that context in. Text mode (the default) loads none of
this: its lines stay exactly as they were.
"""

import logging
import logging.config
import re
import uuid

import structlog
from celery import bootsteps
from django.urls import Resolver404, resolve

# An incoming X-Request-ID (a proxy's or a caller's) is kept when it looks like an id; any
# other value (too long, spaces, control characters, quotes) is replaced by a fresh one,
# so a client cannot forge log structure or flood lines through it.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
# The URL routes that name a deployment: the pages (deployments/<pk>/…) and the API
# (…/deployments/{deployment_id}…).
_DEPLOYMENT_ROUTE = re.compile(r"^deployments/<int:pk>/")

# Before every line: the request's (or task's) bound context, then the usual fields.
_SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def json_logging(logging_config: dict) -> dict:
    """`logging_config` (the text one) with its console handler writing JSON lines."""
    formatters = {
        **logging_config["formatters"],
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            # Lines of plain stdlib loggers (the app's own, Django's, Celery's).
            "foreign_pre_chain": [
                *_SHARED_PROCESSORS,
                structlog.stdlib.ExtraAdder(),
                structlog.stdlib.PositionalArgumentsFormatter(),
            ],
        },
    }
    handlers = {
        name: {**handler, "formatter": "json"}
        for name, handler in logging_config["handlers"].items()
    }
    return {**logging_config, "formatters": formatters, "handlers": handlers}


def configure_structlog() -> None:
    """structlog's loggers (django-structlog's) hand their events to stdlib logging, where
    the JSON formatter renders them like every other line."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def request_id_of(header: str | None) -> str:
    """The incoming X-Request-ID when it is sane, else a new one."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def deployment_id_of(path: str) -> int | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if "deployment_id" in match.kwargs:
        return match.kwargs["deployment_id"]
    if _DEPLOYMENT_ROUTE.match(match.route or "") and "pk" in match.kwargs:
        return match.kwargs["pk"]
    return None


class RequestIdMiddleware:
    """Decides the request id before django-structlog's middleware binds it (that one
    trusts the header as it comes), returns it in the response's X-Request-ID, and binds
    the deployment the URL names, so that request_started already carries it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_of(request.META.get("HTTP_X_REQUEST_ID"))
        request.META["HTTP_X_REQUEST_ID"] = request_id
        # request.headers is computed once from META; drop a copy read before this.
        request.__dict__.pop("headers", None)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(ip=request.META.get("REMOTE_ADDR"))
        deployment_id = deployment_id_of(request.path_info)
        if deployment_id is not None:
            structlog.contextvars.bind_contextvars(deployment_id=deployment_id)
        try:
            response = self.get_response(request)
        finally:
            structlog.contextvars.clear_contextvars()
        response["X-Request-ID"] = request_id
        return response


class WorkerLogStep(bootsteps.Step):
    """django-structlog's worker side, in JSON mode only: each task's lines carry the
    context its sender stored in the message (the request id)."""

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        from django.conf import settings

        if settings.LOG_FORMAT == "json":
            from celery import signals
            from django_structlog.celery.receivers import CeleryReceiver

            # The publishing side is connected already (DJANGO_STRUCTLOG_CELERY_ENABLED, in
            # every process): connecting it again would send each message's context twice.
            receiver = self.receiver = CeleryReceiver()
            for signal, handler in (
                (signals.task_prerun, receiver.receiver_task_prerun),
                (signals.task_retry, receiver.receiver_task_retry),
                (signals.task_success, receiver.receiver_task_success),
                (signals.task_failure, receiver.receiver_task_failure),
                (signals.task_revoked, receiver.receiver_task_revoked),
                (signals.task_unknown, receiver.receiver_task_unknown),
                (signals.task_rejected, receiver.receiver_task_rejected),
            ):
                signal.connect(handler, weak=False)
            signals.task_postrun.connect(_forget_task_context, weak=False)


def _forget_task_context(task=None, **kwargs) -> None:
    """django-structlog binds a task's context when it starts and leaves it bound: without
    this the worker's next lines (the next message received) would carry a finished task's
    request id. Not after an eager task: it ran inside its caller, whose context stays."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    structlog.contextvars.clear_contextvars()


def json_after_celery_logging(**kwargs) -> None:
    """The worker sets up its own log handlers; in JSON mode put Django's back, so the
    worker writes the same JSON lines as the web."""
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        logging.config.dictConfig(settings.LOGGING)
