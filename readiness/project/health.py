"""`/healthz`: the database, the broker and a real round trip to a worker."""

import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _check(name: str, probe) -> dict:
    started = time.monotonic()
    try:
        detail = probe()
        ok = True
    except Exception as exc:  # a health check reports every failure instead of raising
        detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
    return {"ok": ok, "detail": detail, "ms": round(1000 * (time.monotonic() - started), 1)}


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _broker() -> str:
    from readiness.project.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.HEALTHZ_WORKER_TIMEOUT)
        return conn.as_uri()


def _worker() -> str:
    from readiness.project.tasks import worker_ping

    timeout = settings.HEALTHZ_WORKER_TIMEOUT
    # A ping nobody picks up expires instead of piling up behind a dead worker.
    result = worker_ping.apply_async(expires=timeout)
    try:
        return result.get(timeout=timeout, interval=0.05)
    finally:
        result.forget()


HEALTH_CHECKS = {"database": _database, "broker": _broker, "worker": _worker}


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, broker and a real round trip to a worker; 503 when any of them fails.

    `?check=database&check=broker` limits the checks (the web container's own health check
    must not depend on the worker's).
    """
    wanted = request.GET.getlist("check") or list(HEALTH_CHECKS)
    unknown = sorted(set(wanted) - set(HEALTH_CHECKS))
    if unknown:
        return JsonResponse(
            {"error": f"unknown check: {', '.join(unknown)}", "checks": list(HEALTH_CHECKS)},
            status=400,
        )
    results = {name: _check(name, HEALTH_CHECKS[name]) for name in HEALTH_CHECKS if name in wanted}
    healthy = all(result["ok"] for result in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "fail", "checks": results}, status=200 if healthy else 503
    )
