"""State changes of probe runs: start (or join) a run, execute one (account, probe, region),
finish, apply verdicts to checklist items, and sweep runs whose workers died.

Tasks call these with ids; every step is safe to run twice (conditional updates claim work).
"""

import dataclasses
import logging
import threading
import time
from collections import defaultdict
from datetime import timedelta

from botocore.exceptions import ClientError
from cachetools import TTLCache
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from readiness import dispatch
from readiness.audit.services import audit_record
from readiness.checklists.models import (
    WATCHED_STATES,
    AwsAccount,
    ChecklistItem,
    DecisionSource,
    Deployment,
    DeploymentState,
    ItemStatus,
)
from readiness.checklists.services import deployment_lock, item_set_by_machine
from readiness.checklists.teams import require_member
from readiness.outbox.selectors import outbox_keys
from readiness.outbox.services import Intent, outbox_enqueue_many, task_id_of
from readiness.probe_runs import signals
from readiness.probe_runs.models import (
    ACTIVE_RUN_STATES,
    ProbeOutcome,
    ProbeResult,
    ProbeResultState,
    ProbeRun,
    ProbeRunState,
    ProbeRunTrigger,
)
from readiness.probe_runs.selectors import numbered, run_name
from readiness.probe_runs.verdicts import item_verdict
from readiness.probes import call_cache
from readiness.probes.base import (
    ProbeContext,
    ProbeSettings,
    error_result,
    execute,
    forget_last_call,
    registry,
    supporting_keys,
)
from readiness.probes.call_cache import CallCache
from readiness.probes.runner import plan
from readiness.probes.session import target_session
from readiness.probes.throttle import RequestLimiter

log = logging.getLogger(__name__)


def probe_settings() -> ProbeSettings:
    """The policy thresholds: defaults overridden by the PROBE_SETTINGS setting."""
    overrides = dict(settings.PROBE_SETTINGS)
    for name, value in overrides.items():
        if isinstance(value, list):
            overrides[name] = tuple(value)
    return ProbeSettings(**overrides)


def thresholds_json(probe_settings: ProbeSettings) -> dict:
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in dataclasses.asdict(probe_settings).items()
    }


def probes_for(deployment: Deployment) -> list[tuple]:
    """(probe, item) for every registered probe whose item exists in this checklist."""
    items = {
        (item.section.title, item.title): item
        for item in ChecklistItem.objects.filter(section__deployment=deployment).select_related(
            "section"
        )
    }
    return [
        (probe, items[(probe.section, probe.item)])
        for probe in sorted(registry().values(), key=lambda p: p.key)
        if (probe.section, probe.item) in items
    ]


def probe_run_start(
    *,
    deployment: Deployment,
    user,
    trigger: str = ProbeRunTrigger.PERSON,
    regions: list[str] | None = None,
    accounts: list[str] | None = None,
) -> tuple[ProbeRun, bool]:
    """Start a run, or return the active one (a second click joins it) with its `number`
    among the deployment's runs: (run, created).

    `regions` and `accounts` (account ids): the part of the target this run reads (None:
    all of it). A run over part of the target is `partial`. A scheduled re-probe has no
    user: the schedule is the app's own, not anyone's request.
    """
    if trigger == ProbeRunTrigger.SCHEDULE:
        user = None
    else:
        require_member(team=deployment.team, user=user)
    target = list(deployment.aws_accounts.order_by("account_id"))
    if not target:
        raise ValidationError("Add the AWS accounts and regions of this deployment first.")
    regionless = [str(account) for account in target if not account.regions]
    if regionless:
        raise ValidationError(f"Name the regions of account {', '.join(regionless)} first.")
    target_regions = list(dict.fromkeys(region for account in target for region in account.regions))
    run_regions = run_regions_of(target_regions, regions)
    run_account_ids = run_accounts_of([account.account_id for account in target], accounts)
    # Each account picked is read in the regions picked that are its own.
    picks = [
        (account, [region for region in account.regions if region in run_regions])
        for account in target
        if account.account_id in run_account_ids
    ]
    picks = [(account, picked) for account, picked in picks if picked]
    if not picks:
        raise ValidationError(
            {"accounts": "None of the accounts picked is read in the regions picked."}
        )
    partial = len(picks) < len(target) or any(
        picked != list(account.regions) for account, picked in picks
    )
    # The regions the run reads: those of the accounts it reads.
    run_regions = [region for region in run_regions if any(region in picked for _, picked in picks)]
    # Numbered in the same query: the page that joins it names it as the deployment does.
    active = numbered(deployment.probe_runs.filter(state__in=ACTIVE_RUN_STATES)).first()
    if active:
        return active, False
    thresholds = probe_settings()
    if not thresholds.approved_regions:
        # Data residency: unless policy names them, the approved regions are the ones the
        # deployment runs in, in any of its accounts.
        thresholds = dataclasses.replace(thresholds, approved_regions=tuple(target_regions))
    pairs = probes_for(deployment)
    item_of = {probe.key: item for probe, item in pairs}
    probes = [probe for probe, _ in pairs]
    planned = [
        (account.account_id, probe, region)
        for account, picked in picks
        for probe, region in plan(probes, picked)
    ]
    try:
        with transaction.atomic():
            deployment_lock(deployment.pk)  # the lock order: the deployment's row first
            run = ProbeRun.objects.create(
                deployment=deployment,
                requested_by=user,
                trigger=trigger,
                regions=run_regions,
                accounts=[{**account.as_target(), "regions": picked} for account, picked in picks],
                partial=partial,
                thresholds=thresholds_json(thresholds),
                total=len(planned),
            )
            ProbeResult.objects.bulk_create(
                ProbeResult(
                    run=run,
                    item=item_of[probe.key],
                    account_id=account_id,
                    probe_key=probe.key,
                    region=region,
                    section_title=probe.section,
                    item_title=probe.item,
                    title=probe.title,
                    severity=str(probe.severity),
                    actions=list(probe.actions),
                    remediation=probe.remediation,
                )
                for account_id, probe, region in planned
            )
            audit_record(
                actor=user,
                action="probe_run.started",
                obj=run,
                deployment=deployment,
                after={
                    "regions": run.regions,
                    "accounts": [account["account_id"] for account in run.accounts],
                    "partial": run.partial,
                    "checks": run.total,
                    "trigger": run.trigger,
                },
            )
            _enqueue(run.pk)
    except IntegrityError:
        # Another request started a run between our check and our insert: join that one.
        return deployment.probe_runs.get(state__in=ACTIVE_RUN_STATES), False
    if not planned:
        probe_run_finish(run_id=run.pk)
        run.refresh_from_db()
    return run, True


def run_regions_of(target: list[str], regions: list[str] | None) -> list[str]:
    """The regions a run reads: the ones picked, which must be the target's (any of its
    accounts'), in the target's order; the target's all when none are picked. The roles'
    trust and the approved regions are the target's, so a run never reaches outside it."""
    if regions is None:
        return target
    picked = set(regions)
    unknown = sorted(picked - set(target))
    if unknown:
        raise ValidationError(
            {
                "regions": f"Not a region of this deployment's AWS target: {', '.join(unknown)}. "
                f"Pick among {', '.join(target)}."
            }
        )
    if not picked:
        raise ValidationError({"regions": "Pick at least one region to probe."})
    return [region for region in target if region in picked]


def run_accounts_of(target: list[str], accounts: list[str] | None) -> list[str]:
    """The accounts a run reads: the ids picked, which must be the target's, in the target's
    order; the target's all when none are picked."""
    if accounts is None:
        return target
    picked = {str(account) for account in accounts}
    unknown = sorted(picked - set(target))
    if unknown:
        raise ValidationError(
            {
                "accounts": "Not an account of this deployment's AWS target: "
                f"{', '.join(unknown)}. Pick among {', '.join(target)}."
            }
        )
    if not picked:
        raise ValidationError({"accounts": "Pick at least one account to probe."})
    return [account for account in target if account in picked]


def _enqueue(run_id: int) -> None:
    """One task per account and probe, carrying its regions (probe_results_execute), stored
    in the run's transaction (readiness.outbox) and sent after it commits, or by the outbox
    sweeper. The accounts and probes spread over every worker; one account's denied role or
    throttling stays in that account's tasks."""
    batches: dict[tuple[str, str], list[int]] = defaultdict(list)
    for result_id, account_id, key in (
        ProbeResult.objects.filter(run_id=run_id)
        .order_by("pk")
        .values_list("pk", "account_id", "probe_key")
    ):
        batches[(account_id, key)].append(result_id)
    outbox_enqueue_many(
        Intent(
            "readiness.probe_results_execute",
            _intent_key(run_id, account_id, probe_key),
            [result_ids],
        )
        for (account_id, probe_key), result_ids in batches.items()
    )


def _run_prefix(run_id: int) -> str:
    # Names every task of the run (probe_run_cancel revokes them).
    return f"probe:{run_id}:"


def _intent_key(run_id: int, account_id: str, probe_key: str) -> str:
    return f"{_run_prefix(run_id)}{account_id}:{probe_key}"


class ProbeRunClosed(Exception):
    """The run finished (or timed out) before it could be cancelled."""

    def __init__(self, run: ProbeRun):
        super().__init__(
            f"{run_name(run)} already ended ({run.get_state_display().lower()}): "
            "there is nothing to cancel."
        )
        self.run = run


def probe_run_cancel(*, run: ProbeRun, user) -> bool:
    """Cancel an active run: True when this call cancelled it, False when it was cancelled
    already (a second click changes nothing); ProbeRunClosed when it had ended otherwise.

    Whoever may start a run may cancel it. Checks not finished yet end "not run:
    cancelled"; finished ones stay on the run, which applies nothing to the checklist (a
    partial run proves nothing about the items it did not reach). Queued tasks are revoked
    after the commit; the tasks and the checks in flight see the run's state themselves
    (claims need an active run, and a running check stops before its next AWS request), so
    a revoke that a worker misses costs at most a claim that finds nothing.
    """
    deployment = run.deployment
    require_member(team=deployment.team, user=user)
    with transaction.atomic():
        # The lock order: the deployment's row, then the results, then the run (as a
        # worker storing a result takes them).
        deployment_lock(deployment.pk)
        state = ProbeRun.objects.filter(pk=run.pk).values_list("state", flat=True).get()
        if state == ProbeRunState.CANCELLED:
            run.refresh_from_db()
            return False
        if state not in ACTIVE_RUN_STATES:
            run.refresh_from_db()
            raise ProbeRunClosed(run)
        now = timezone.now()
        stopped = (
            ProbeResult.objects.filter(run_id=run.pk)
            .exclude(state=ProbeResultState.DONE)
            .update(state=ProbeResultState.CANCELLED, finished_at=now)
        )
        ProbeRun.objects.filter(pk=run.pk, state__in=ACTIVE_RUN_STATES).update(
            state=ProbeRunState.CANCELLED, finished_at=now, cancelled_by=user
        )
        run.refresh_from_db()
        audit_record(
            actor=user,
            action="probe_run.cancelled",
            obj=run,
            deployment=deployment,
            after={"checks": run.total, "finished": run.completed, "not_run": stopped},
        )
        task_ids = [task_id_of(key) for key in outbox_keys(_run_prefix(run.pk))]
        transaction.on_commit(lambda: _revoke(run.pk, task_ids))
        # This process's checks of the run stop at once; other workers' within a second.
        transaction.on_commit(lambda: _remember_cancelled(run))
    _forget_cache(run.pk)
    return True


def _revoke(run_id: int, task_ids: list[str]) -> None:
    try:
        dispatch.revoke(task_ids)
    except Exception:  # the broker is away: the tasks will find the run cancelled anyway
        log.warning("could not revoke the tasks of cancelled probe run %s", run_id, exc_info=True)


# A check in flight asks whether its run was cancelled before each AWS request; the answer
# is read from the database at most once a second per run and worker process, and a
# cancellation is final, so it is kept.
_CANCEL_CHECK_INTERVAL = 1.0
_cancel_checks: dict[int, tuple[float, bool]] = {}
_cancel_checks_lock = threading.Lock()


def _remember_cancelled(run: ProbeRun) -> None:
    with _cancel_checks_lock:
        _cancel_checks[(run.pk, run.created_at)] = (time.monotonic(), True)


def run_cancelled(run: ProbeRun) -> bool:
    """Whether the run was cancelled, as of at most a second ago."""
    # The creation time tells a run from an earlier one that had the same id (a test
    # database rolled back).
    key = (run.pk, run.created_at)
    now = time.monotonic()
    with _cancel_checks_lock:
        checked = _cancel_checks.get(key)
        if checked and (checked[1] or now - checked[0] < _CANCEL_CHECK_INTERVAL):
            return checked[1]
        # Claimed before the read, so the threads of this process read it once between them.
        _cancel_checks[key] = (now, False)
    cancelled = ProbeRun.objects.filter(pk=run.pk, state=ProbeRunState.CANCELLED).exists()
    with _cancel_checks_lock:
        if len(_cancel_checks) > 1024:
            _cancel_checks.clear()
        _cancel_checks[key] = (time.monotonic(), cancelled)
    return cancelled


# Assumed-role sessions are reused within a worker process for a while instead of calling
# STS once per (probe, region); the credentials STS hands out last an hour, and they are not
# refreshed: a session is used for a check only while its credentials outlast the check's
# lease (PROBE_CHECK_TIMEOUT), else the role is assumed again.
_SESSION_TTL = 15 * 60
_sessions: TTLCache = TTLCache(maxsize=1024, ttl=_SESSION_TTL, timer=time.monotonic)
_sessions_lock = threading.Lock()


# An account whose role STS denied is not asked again by this process for a minute: its
# other checks fail at once with the same words instead of each waiting on STS's retries.
_REFUSAL_TTL = 60
_refusals: TTLCache = TTLCache(maxsize=1024, ttl=_REFUSAL_TTL, timer=time.monotonic)


class AccountUnavailable(Exception):
    """The run's account cannot be read: its role was refused, or it left the target."""


def run_account(run: ProbeRun, account_id: str) -> dict:
    """The account as the run read it (ProbeRun.accounts)."""
    for account in run.accounts:
        if account["account_id"] == account_id:
            return account
    # Read as the summary of the run's own results ("Not read: …"), on its page and in the
    # record: named by what it is there, not by the run's id on this server.
    raise AccountUnavailable(f"account {account_id} is not among the accounts this run reads")


def _outlasts_a_check(session) -> bool:
    expires_at = getattr(session, "expires_at", None)  # None: credentials botocore refreshes
    if expires_at is None:
        return True
    return expires_at - timezone.now() > timedelta(seconds=settings.PROBE_CHECK_TIMEOUT)


def _session_for(run: ProbeRun, account_id: str):
    account = run_account(run, account_id)
    role_arn = account["role_arn"]
    external_id = ""
    if role_arn:
        # Looked up, not copied onto the run: the external id stays in one place.
        found = AwsAccount.objects.filter(
            deployment_id=run.deployment_id, account_id=account_id
        ).values_list("external_id", flat=True)
        if not found:
            raise AccountUnavailable(
                f"account {account_id} was removed from the deployment's target during the run"
            )
        external_id = found[0]
    key = (role_arn, external_id, run.deployment_id)
    with _sessions_lock:
        session = _sessions.get(key)
        refused = _refusals.get(key)
    if session is not None and _outlasts_a_check(session):
        return session
    if refused is not None:
        raise refused
    try:
        session = target_session(
            role_arn=role_arn,
            external_id=external_id,
            name=f"deployment-{run.deployment_id}",
            region=account["regions"][0] if account["regions"] else "us-east-1",
        )
    except ClientError as exc:
        if "AccessDenied" in exc.response.get("Error", {}).get("Code", ""):
            with _sessions_lock:
                _refusals[key] = exc
        raise
    with _sessions_lock:
        _sessions[key] = session
    return session


# The probes of one run share their AWS answers within this worker process (call_cache);
# a run's cache goes when the run closes here, or after the TTL if it closed elsewhere, or
# when more accounts are being read than the cache holds: the least recently used goes (a
# run sends its tasks account by account, so a process reads a few accounts at a time and
# one it evicted is done; kept for every account of a 50-account run, the answers took a
# worker past 300 MB).
_RUN_CACHE_TTL = 15 * 60
RUN_CACHE_ACCOUNTS = 32
_run_caches: TTLCache = TTLCache(
    maxsize=RUN_CACHE_ACCOUNTS, ttl=_RUN_CACHE_TTL, timer=time.monotonic
)
_run_caches_lock = threading.Lock()


def _cache_for(run: ProbeRun, account_id: str) -> CallCache:
    """The answers of one account in one run: two accounts answer the same call differently."""
    with _run_caches_lock:
        cached = _run_caches.get((run.pk, account_id))
        # The creation time tells a run from an earlier one that had the same id (a test
        # database rolled back), so answers never outlive their run.
        if cached is None or cached[0] != run.created_at:
            cached = _run_caches[(run.pk, account_id)] = (run.created_at, CallCache())
        return cached[1]


def _forget_cache(run_id: int) -> None:
    with _run_caches_lock:
        for key in [key for key in _run_caches if key[0] == run_id]:
            _run_caches.pop(key, None)


_limiters: dict[tuple, RequestLimiter] = {}
_limiters_lock = threading.Lock()


def request_limiter() -> RequestLimiter:
    """This process's client of the shared AWS request rates (PROBE_RATE_STORAGE)."""
    key = (settings.PROBE_RATE_STORAGE, tuple(sorted(settings.PROBE_AWS_RATES.items())))
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RequestLimiter(key[0], dict(key[1]))
        return limiter


def probe_results_execute(*, result_ids: list[int]) -> float | None:
    """Run (probe, region) checks of an active run one after another, storing each as it
    finishes (the progress bar moves per check). Returns None, or the seconds after which
    checks of these that another claim holds can be looked at again.

    A run sends the regions of one probe as one task: one claim and one read for all of
    them instead of one per region, and half the messages; the probes of a run still spread
    over every worker thread.

    A message can come more than once: Redis hands one a killed worker never acknowledged to
    another worker, a dead prefork child's is requeued, the sweeper sends again checks whose
    claim expired. A claim is a lease of PROBE_CHECK_TIMEOUT seconds, renewed as each check
    starts, and its `attempts` value is its token. A check is taken over only once its lease
    ran out (a live worker stops calling AWS before that), and only the current token's
    holder stores a result: never two runs of a check at once, never a result counted twice.
    """
    lease = timedelta(seconds=settings.PROBE_CHECK_TIMEOUT)
    claimed_at = time.monotonic()  # no later than the lease's start: deadlines err early
    with transaction.atomic():
        # Row locks (PostgreSQL; SQLite serialises writers anyway) so that two deliveries
        # never claim one check together; `of` keeps the run's row unlocked. The database's
        # clock, so that workers on several machines agree on when a lease ran out.
        claimed = list(
            ProbeResult.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("run__deployment")
            .filter(pk__in=result_ids, run__state__in=ACTIVE_RUN_STATES)
            .filter(
                Q(state=ProbeResultState.PENDING)
                | Q(state=ProbeResultState.RUNNING, started_at__lt=Now() - lease)
            )
            .order_by("pk")
        )
        if claimed:
            ProbeResult.objects.filter(pk__in=[result.pk for result in claimed]).update(
                state=ProbeResultState.RUNNING, started_at=Now(), attempts=F("attempts") + 1
            )
    held = _held_for(result_ids, claimed, lease) if len(claimed) < len(set(result_ids)) else None
    if not claimed:
        return held
    run = claimed[0].run
    if run.state == ProbeRunState.QUEUED:
        ProbeRun.objects.filter(pk=run.pk, state=ProbeRunState.QUEUED).update(
            state=ProbeRunState.RUNNING, started_at=timezone.now()
        )
    thresholds = ProbeSettings(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in run.thresholds.items()}
    )
    stored_any = False
    for index, result in enumerate(claimed):
        mine = ProbeResult.objects.filter(
            pk=result.pk, state=ProbeResultState.RUNNING, attempts=result.attempts + 1
        )
        started = claimed_at
        if index:  # the claim started the first check's lease; renew it for each later one
            if not mine.update(started_at=Now()):
                continue  # taken over while earlier checks ran, or closed by the sweeper
            started = time.monotonic()
        outcome = _outcome(
            result, run, thresholds, deadline=started + settings.PROBE_CHECK_REQUEST_WINDOW
        )
        with transaction.atomic():
            stored = mine.update(
                state=ProbeResultState.DONE,
                status=outcome["status"],
                summary=outcome["summary"],
                findings=outcome.get("resources", outcome.get("findings", [])),
                facts=outcome.get("facts", {}),
                duration_ms=round(1000 * (time.monotonic() - started)),
                finished_at=timezone.now(),
            )
            if stored:
                ProbeRun.objects.filter(pk=run.pk).update(completed=F("completed") + 1)
        stored_any = stored_any or bool(stored)
    if stored_any:
        probe_run_finish(run_id=run.pk)
    return held


def _held_for(result_ids: list[int], claimed: list[ProbeResult], lease: timedelta) -> float | None:
    """Seconds until the first of these unfinished checks that another claim holds could be
    taken over (its holder may have died), or None when no check of an active run is held."""
    starts = (
        ProbeResult.objects.filter(pk__in=result_ids, run__state__in=ACTIVE_RUN_STATES)
        .exclude(pk__in=[result.pk for result in claimed])
        .exclude(state=ProbeResultState.DONE)
        .values_list("started_at", flat=True)
    )
    now = timezone.now()
    # A pending row was skipped because another delivery is claiming it this very moment.
    waits = [
        (start + lease - now).total_seconds() if start else lease.total_seconds()
        for start in starts
    ]
    return max(1.0, min(waits)) if waits else None


def _outcome(
    result: ProbeResult, run: ProbeRun, thresholds: ProbeSettings, *, deadline: float
) -> dict:
    """What one (account, probe, region) found, as stored on its result; never raises. No
    AWS request is sent after `deadline` (time.monotonic())."""
    probe = registry().get(result.probe_key)
    if probe is None:
        return dict(
            status=ProbeOutcome.ERROR,
            summary=f"The probe {result.probe_key} no longer exists in this version",
            findings=[],
            facts={},
        )
    try:
        forget_last_call()
        session = _session_for(run, result.account_id)
    except AccountUnavailable as exc:
        return dict(status=ProbeOutcome.ERROR, summary=f"Not read: {exc}", findings=[], facts={})
    except Exception as exc:  # STS refused or unreachable: every probe of that account says so
        context = ProbeContext(session=None, region=result.region, settings=thresholds)
        outcome = error_result(exc, context).as_json()
        why = outcome["summary"]
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            why = f"STS refused {exc.operation_name}: {error.get('Code')} — {error.get('Message')}"
        outcome["summary"] = f"Could not get AWS credentials for account {result.account_id}: {why}"
        return outcome
    context = ProbeContext(
        session=session,
        region=result.region,
        settings=thresholds,
        max_attempts=settings.PROBE_MAX_ATTEMPTS,
        timeout_seconds=settings.PROBE_CALL_TIMEOUT,
        deadline=deadline,
        cancelled=lambda: run_cancelled(run),
        limiter=request_limiter(),
        account=result.account_id,
    )
    call_cache.use(_cache_for(run, result.account_id))
    try:
        return execute(probe, context).result.as_json()
    finally:
        call_cache.use(None)


def probe_run_finish(*, run_id: int) -> bool:
    """Close the run once every result is in and apply the verdicts; only one caller wins."""
    deployment_id = ProbeRun.objects.filter(pk=run_id).values_list("deployment_id", flat=True)
    with transaction.atomic():
        # The deployment first (the lock order): applying the verdicts writes its items.
        deployment_lock(deployment_id.get())
        closed = ProbeRun.objects.filter(
            pk=run_id, state__in=ACTIVE_RUN_STATES, completed__gte=F("total")
        ).update(state=ProbeRunState.SUCCEEDED, finished_at=timezone.now())
        if closed:
            _forget_cache(run_id)
            run = ProbeRun.objects.select_related("deployment").get(pk=run_id)
            apply_run(run)
    return bool(closed)


def apply_run(run: ProbeRun) -> int:
    """Set items from the closed run's verdicts unless a person decided them, record its
    errors, and tell the layers above that it finished; returns the items changed.

    A person's decision is never overwritten: the disagreement is shown on the page instead.
    A closed record's checklist no longer changes, but its results stay on the run, and a
    verdict that moved since signing still makes that signature stale (drift).
    """
    changed = 0 if run.deployment.is_closed else _apply_verdicts(run)
    errors = _report_errors(run)
    signals.probe_run_finished.send(sender=ProbeRun, run=run, errors=errors)
    return changed


def _apply_verdicts(run: ProbeRun) -> int:
    by_item: dict[int, list[ProbeResult]] = defaultdict(list)
    for result in run.results.filter(item__isnull=False, state=ProbeResultState.DONE).exclude(
        probe_key__in=supporting_keys()
    ):
        by_item[result.item_id].append(result)
    changed = 0
    several = len(run.accounts) > 1 or run.partial
    items = ChecklistItem.objects.filter(pk__in=by_item).exclude(source=DecisionSource.PERSON)
    for item in items:
        results = by_item[item.pk]
        target = item_verdict([r.status for r in results])
        if target is None:
            continue
        if run.partial and target != ItemStatus.FAILED:
            # A failure read anywhere fails the item; a pass says nothing of the accounts
            # and regions the run did not read, so only a run over the whole target
            # verifies one.
            continue
        if target == ItemStatus.FAILED:
            failing = [r for r in results if r.status == ProbeOutcome.FAIL]
            # A partial run says what it read first, where truncation cannot cut it off.
            scope = f" (a run over part of the AWS target: {_scope(run)})" if run.partial else ""
            reason = f"Probe failed{scope}: " + "; ".join(
                _where(r, accounts=several) + r.summary for r in failing
            )
        else:
            passing = [r for r in results if r.status == ProbeOutcome.PASS]
            reason = "Verified by probe: " + "; ".join(
                _where(r, accounts=several) + r.summary for r in passing
            )
        reason = reason[:2000]
        if item.status == target and item.status_reason == reason:
            continue
        if item_set_by_machine(
            item=item,
            status=target,
            source=DecisionSource.PROBE,
            reason=reason,
            deployment=run.deployment,
            probe_run=run,
            audit_after={"probe_run": run.pk},
        ):
            changed += 1
    return changed


def _scope(run: ProbeRun) -> str:
    """What a partial run read, as a reason names it."""
    return "; ".join(
        f"{account['account_id']} in {', '.join(account['regions'])}" for account in run.accounts
    )


def _report_errors(run: ProbeRun) -> list[str]:
    """A scheduled re-probe that could not read AWS says so in the audit trail (and the
    sign-off layer mails the owner); nothing turns stale for it. Returns the error lines of
    a scheduled run."""
    if run.trigger != ProbeRunTrigger.SCHEDULE:
        return []
    errors = list(
        run.results.filter(status=ProbeOutcome.ERROR)
        .order_by("probe_key", "account_id", "region")
        .values_list("probe_key", "account_id", "region", "summary")
    )
    if not errors:
        return []
    lines = [
        f"{key} [{account_id} {region}]: {summary}" for key, account_id, region, summary in errors
    ]
    audit_record(
        actor=None,
        action="probe_run.errors",
        obj=run,
        deployment=run.deployment,
        after={"errors": len(errors), "trigger": run.trigger},
        reason="; ".join(lines)[:2000],
    )
    return lines


def watched_deployments() -> list[Deployment]:
    """Deployments the schedule re-probes: every approved one with an AWS target, and of the
    deployed or verified ones only the newest per team, service and environment — an older
    release was replaced and its accounts now show the new one."""
    candidates = (
        Deployment.objects.filter(state__in=WATCHED_STATES, aws_accounts__isnull=False)
        .distinct()
        .select_related("team")
        .order_by("team_id", "service", "environment", "-deployed_at", "-pk")
    )
    chosen, seen = [], set()
    for deployment in candidates:
        if deployment.state == DeploymentState.APPROVED:
            chosen.append(deployment)
            continue
        key = (deployment.team_id, deployment.service, deployment.environment)
        if key not in seen:
            seen.add(key)
            chosen.append(deployment)
    return chosen


def reprobe_watched() -> dict:
    """Start a scheduled run on every watched deployment (joining one already running);
    returns {"started": [run ids], "joined": [run ids], "failed": [deployment ids]}."""
    outcome: dict[str, list[int]] = {"started": [], "joined": [], "failed": []}
    for deployment in watched_deployments():
        try:
            run, created = probe_run_start(
                deployment=deployment, user=None, trigger=ProbeRunTrigger.SCHEDULE
            )
        except Exception:  # one broken deployment must not stop the others' re-probes
            log.exception("scheduled re-probe of deployment %s could not start", deployment.pk)
            outcome["failed"].append(deployment.pk)
            continue
        outcome["started" if created else "joined"].append(run.pk)
    return outcome


def _where(result: ProbeResult, *, accounts: bool) -> str:
    """Where a result was read, as a reason names it: the account only when the run read
    several (one account's failure fails the item, and the reason says which)."""
    place = [result.account_id] if accounts and result.account_id else []
    if result.region != "global":
        place.append(result.region)
    return f"[{' '.join(place)}] " if place else ""


def probe_runs_sweep(*, now=None) -> int:
    """Close the runs that outlived PROBE_RUN_TIMEOUT as failed, naming the checks that never
    finished (they become errors), and send again the checks of live runs whose claim ran
    out (their worker died), whatever the broker did with their message: the embedded
    broker never gives a killed worker's message back. Returns the number of runs closed."""
    now = now or timezone.now()
    deadline = now - timedelta(seconds=settings.PROBE_RUN_TIMEOUT)
    closed = 0
    for run_id, deployment_id in ProbeRun.objects.filter(
        state__in=ACTIVE_RUN_STATES, created_at__lt=deadline
    ).values_list("pk", "deployment_id"):
        closed += _close_timed_out(run_id=run_id, deployment_id=deployment_id, now=now)
    _send_expired_claims(now=now)
    return closed


# How many unfinished checks a run's error names before "and N more" (the audit has all).
_NAMED_CHECKS = 20


@transaction.atomic
def _close_timed_out(*, run_id: int, deployment_id: int, now) -> bool:
    # The lock order: the deployment's row first (closing applies verdicts to its items and
    # audits), then the results before the run, as a worker storing a result takes them.
    deployment_lock(deployment_id)
    unfinished = list(
        ProbeResult.objects.select_for_update()
        .filter(run_id=run_id)
        .exclude(state=ProbeResultState.DONE)
        .order_by("probe_key", "account_id", "region")
        .values_list("pk", "probe_key", "account_id", "region", "state")
    )
    never_started = [pk for pk, *_, state in unfinished if state == ProbeResultState.PENDING]
    ProbeResult.objects.filter(pk__in=never_started).update(
        state=ProbeResultState.DONE,
        status=ProbeOutcome.ERROR,
        summary="No result: no worker started this check before the run's time limit",
        finished_at=now,
    )
    ProbeResult.objects.filter(pk__in=[pk for pk, *_ in unfinished]).exclude(
        state=ProbeResultState.DONE
    ).update(
        state=ProbeResultState.DONE,
        status=ProbeOutcome.ERROR,
        summary=(
            "No result: the worker running this check stopped before it finished "
            "(killed, crashed or past its time limit)"
        ),
        finished_at=now,
    )
    names = [f"{key} [{account_id} {region}]" for _, key, account_id, region, _ in unfinished]
    shown = ", ".join(names[:_NAMED_CHECKS])
    if len(names) > _NAMED_CHECKS:
        shown += f" and {len(names) - _NAMED_CHECKS} more"
    error = (
        f"{len(names)} probe(s) did not finish within {settings.PROBE_RUN_TIMEOUT} s; "
        f"the run was closed by the sweeper. Unfinished: {shown or 'none'}"
    )
    updated = ProbeRun.objects.filter(pk=run_id, state__in=ACTIVE_RUN_STATES).update(
        state=ProbeRunState.FAILED, completed=F("total"), finished_at=now, error=error
    )
    if not updated:
        return False
    run = ProbeRun.objects.select_related("deployment").get(pk=run_id)
    audit_record(
        actor=None,
        action="probe_run.timed_out",
        obj=run,
        deployment=run.deployment,
        after={
            "checks": run.total,
            "unfinished": names,
            "never_started": len(never_started),
            "trigger": run.trigger,
        },
        reason=error[:2000],
    )
    apply_run(run)
    log.warning("closed probe run %s: %s", run_id, error)
    return True


def _send_expired_claims(*, now) -> int:
    """Send again, one task per account and probe as a run does, the checks of active runs
    whose claim is older than PROBE_CHECK_TIMEOUT; returns how many tasks were sent."""
    stale = now - timedelta(seconds=settings.PROBE_CHECK_TIMEOUT)
    active = list(ProbeRun.objects.filter(state__in=ACTIVE_RUN_STATES).values_list("pk", flat=True))
    by_probe: dict[tuple[int, str, str], list[int]] = defaultdict(list)
    for result_id, run_id, account_id, key in (
        ProbeResult.objects.filter(
            run_id__in=active, state=ProbeResultState.RUNNING, started_at__lt=stale
        )
        .order_by("pk")
        .values_list("pk", "run_id", "account_id", "probe_key")
    ):
        by_probe[(run_id, account_id, key)].append(result_id)
    sent = 0
    for (run_id, account_id, key), result_ids in by_probe.items():
        try:
            dispatch.delay(
                "readiness.probe_results_execute",
                result_ids,
                task_id=task_id_of(_intent_key(run_id, account_id, key)),
            )
        except Exception:  # the broker is away: these rows stay expired for the next sweep
            log.exception("could not send again %s of probe run %s", key, run_id)
            break
        sent += 1
    if sent:
        log.warning("sent again %s probe task(s) whose worker stopped", sent)
    return sent
