"""/deployments/{id}/probe-runs: start or join a run (optionally over some of the target's
accounts and regions), poll it with its progress per account, cancel it."""

import dataclasses
from datetime import datetime

from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Field, Router, Schema, Status

from readiness.api.endpoints.common import (
    Error,
    absolute_url,
    require_writer,
    visible_deployment,
)
from readiness.probe_runs import selectors as probe_run_selectors
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeRun, ProbeRunTrigger

router = Router()


class ProbeRunIn(Schema):
    regions: list[str] | None = Field(
        None, description="Some of the AWS target's regions; omitted: all of them."
    )
    accounts: list[str] | None = Field(
        None,
        description="Some of the AWS target's account ids; omitted: all of them. A run over "
        "part of the target is partial: its failures fail items, but it marks none done.",
    )


class AccountProgressOut(Schema):
    account_id: str
    name: str
    done: int = Field(description="Checks of this account finished")
    total: int = Field(description="Checks of this account in the run")
    failed: int = Field(description="Checks that failed")
    errors: int = Field(description="Checks that could not read AWS")


class ProbeRunOut(Schema):
    id: int
    deployment_id: int
    state: str = Field(description="queued, running, succeeded, failed or cancelled")
    trigger: str
    total: int
    completed: int
    percent: int
    counts: dict[str, int]
    error: str
    created_at: datetime
    finished_at: datetime | None
    url: str
    regions: list[str] = Field(description="The regions this run reads")
    accounts: list[str] = Field([], description="The AWS accounts this run reads")
    # Beside `accounts`, not in place of its ids: the schema is a contract with generated
    # clients (tests/architecture/test_api_schema.py), so a field is added, never changed.
    account_progress: list[AccountProgressOut] = Field(
        [],
        description="Per account this run reads (in `accounts` order): checks done of its "
        "total, failures and errors",
    )
    partial: bool = Field(
        False,
        description="The run reads only some of the target's accounts or regions: its "
        "failures fail items, it marks none done, and the checklist keeps the verdicts of "
        "the last run over the whole target",
    )
    eta_seconds: float | None = Field(
        description="While active: seconds left at the pace so far (null before a check ends)"
    )
    cancel_url: str = Field(description="POST here to cancel the run while it is active")


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
        "regions": run.regions,
        "accounts": [account["account_id"] for account in run.accounts],
        "account_progress": [
            dataclasses.asdict(progress) for progress in probe_run_selectors.account_progress(run)
        ],
        "partial": run.partial,
        "eta_seconds": probe_run_selectors.eta_seconds(run),
        "cancel_url": absolute_url(
            request, reverse("api-v1:probe_runs_cancel", args=[run.deployment_id, run.pk])
        ),
    }


@router.post(
    "/deployments/{int:deployment_id}/probe-runs",
    response={202: ProbeRunOut, 200: ProbeRunOut, 400: Error, 403: Error},
    tags=["probes"],
)
def probe_runs_start(request, deployment_id: int, payload: ProbeRunIn | None = None):
    """Start a probe run (202), or join the one already running (200); poll its url. The
    body may name some of the target's regions; without one the run reads them all."""
    require_writer(request)
    deployment = visible_deployment(request, deployment_id)
    run, created = probe_runs.probe_run_start(
        deployment=deployment,
        user=request.user,
        trigger=ProbeRunTrigger.API,
        regions=payload.regions if payload is not None else None,
        accounts=payload.accounts if payload is not None else None,
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


@router.post(
    "/deployments/{int:deployment_id}/probe-runs/{int:run_id}/cancel",
    response={200: ProbeRunOut, 403: Error, 409: Error},
    tags=["probes"],
    url_name="probe_runs_cancel",
)
def probe_runs_cancel(request, deployment_id: int, run_id: int):
    """Cancel an active run (200, also when it was cancelled already): finished checks are
    kept, the rest are not run. 409 when the run had already ended otherwise."""
    require_writer(request)
    deployment = visible_deployment(request, deployment_id)
    run = get_object_or_404(ProbeRun, pk=run_id, deployment=deployment)
    probe_runs.probe_run_cancel(run=run, user=request.user)
    return _run_out(request, run)
