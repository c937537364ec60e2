"""Run probes without Celery or the ORM: the `probe` command and the tests use this."""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import boto3

from readiness.probes import call_cache
from readiness.probes.base import (
    GLOBAL,
    Execution,
    Probe,
    ProbeContext,
    ProbeSettings,
    Scope,
    execute,
    registry,
)
from readiness.probes.call_cache import CallCache


def plan(probes: Iterable[Probe], regions: Iterable[str]) -> list[tuple[Probe, str]]:
    """(probe, region) pairs: regional probes once per region, global probes once."""
    regions = list(dict.fromkeys(regions))
    return [
        (probe, region)
        for probe in probes
        for region in ([GLOBAL] if probe.scope == Scope.GLOBAL else regions)
    ]


def select(keys: Iterable[str] = ()) -> list[Probe]:
    """The registered probes, or only the named ones (unknown names raise KeyError)."""
    probes = registry()
    keys = list(keys)
    unknown = [key for key in keys if key not in probes]
    if unknown:
        raise KeyError(", ".join(unknown))
    return [probes[key] for key in keys] if keys else sorted(probes.values(), key=lambda p: p.key)


def run_all(
    *,
    session: boto3.Session,
    regions: Iterable[str],
    keys: Iterable[str] = (),
    settings: ProbeSettings | None = None,
    max_attempts: int = 4,
    workers: int = 8,
) -> list[Execution]:
    """Run the selected probes concurrently in threads; results keep the plan's order.

    The probes share their AWS answers for the run (call_cache)."""
    regions = list(regions)
    settings = settings or ProbeSettings()
    if not settings.approved_regions:
        settings = replace(settings, approved_regions=tuple(regions))
    pairs = plan(select(keys), regions)
    cache = CallCache()

    def run(pair: tuple[Probe, str]) -> Execution:
        probe, region = pair
        context = ProbeContext(
            session=session, region=region, settings=settings, max_attempts=max_attempts
        )
        call_cache.use(cache)
        try:
            return execute(probe, context)
        finally:
            call_cache.use(None)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(run, pairs))
