"""/deployments/{id}/probe-runs: start or join a run, poll it."""

from datetime import datetime

from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Router, Schema, Status

from readiness.api.endpoints.common import (
    Error,
    absolute_url,
    require_writer,
    visible_deployment,
)
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeRun, ProbeRunTrigger

router = Router()


class ProbeRunOut(Schema):
    id: int
    deployment_id: int
    state: str
    trigger: str
    total: int
    completed: int
    percent: int
    counts: dict[str, int]
    error: str
    created_at: datetime
    finished_at: datetime | None
    url: str


def _run_out(request, run: ProbeRun) -> dict:
    counts = dict(
        run.results.exclude(status="").values_list("status").annotate(n=Count("id")).order_by()
    )
    return {
        "id": run.pk,
        "deployment_id": run.deployment_id,
        "state": run.state,
        "trigger": run.trigger,
        "total": run.total,
        "completed": run.completed,
        "percent": run.percent,
        "counts": counts,
        "error": run.error,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "url": absolute_url(
            request, reverse("api-v1:probe_runs_read", args=[run.deployment_id, run.pk])
        ),
    }


@router.post(
    "/deployments/{int:deployment_id}/probe-runs",
    response={202: ProbeRunOut, 200: ProbeRunOut, 400: Error, 403: Error},
    tags=["probes"],
)
def probe_runs_start(request, deployment_id: int):
    """Start a probe run (202), or join the one already running (200); poll its url."""
    require_writer(request)
    deployment = visible_deployment(request, deployment_id)
    run, created = probe_runs.probe_run_start(
        deployment=deployment, user=request.user, trigger=ProbeRunTrigger.API
    )
    return Status(202 if created else 200, _run_out(request, run))


@router.get(
    "/deployments/{int:deployment_id}/probe-runs/{int:run_id}",
    response=ProbeRunOut,
    tags=["probes"],
    url_name="probe_runs_read",
)
def probe_runs_read(request, deployment_id: int, run_id: int):
    deployment = visible_deployment(request, deployment_id)
    return _run_out(request, get_object_or_404(ProbeRun, pk=run_id, deployment=deployment))
