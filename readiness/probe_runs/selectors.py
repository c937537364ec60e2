"""Reads of probe runs and their results, shared by pages, the API, sign-offs and records."""

import functools
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from readiness.checklists.models import COMPLETE_STATUSES, DecisionSource, Deployment, ItemStatus
from readiness.probe_runs.models import (
    ACTIVE_RUN_STATES,
    JUDGED_RUN_STATES,
    ProbeOutcome,
    ProbeResult,
    ProbeResultState,
    ProbeRun,
)
from readiness.probe_runs.verdicts import item_verdict
from readiness.probes.base import STATUS_ORDER
from readiness.sql import column, columns, from_row


def active_probe_run(deployment) -> ProbeRun | None:
    return deployment.probe_runs.filter(state__in=ACTIVE_RUN_STATES).first()


def finished_runs() -> QuerySet[ProbeRun]:
    """Runs that judged their whole plan over the whole target, newest first: the newest is
    the one the checklist shows and signatures and records bind (a cancelled run is not one
    of them, nor a partial one: it says nothing of the accounts and regions it did not
    read). _latest_result_statuses_sql says the same in SQL: change both."""
    return ProbeRun.objects.filter(state__in=JUDGED_RUN_STATES, partial=False).order_by(
        "-created_at", "-pk"
    )


def stands_for_the_checklist(run: ProbeRun) -> bool:
    """Whether `run` is one finished_runs() lists (the same rule, on a run already read)."""
    return run.state in JUDGED_RUN_STATES and not run.partial


def last_run(deployment) -> ProbeRun | None:
    """The deployment's newest run, whatever its state, with its `number`: what its probe
    panel reports (it names who cancelled a run, read for their name only; never who
    requested it: the run's page does)."""
    # Written in SQL: numbered()'s query with the canceller joined cost the checklist page
    # more CPU to compile than the database took to answer it.
    with connection.cursor() as cursor:
        cursor.execute(_last_run_sql(), [deployment.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(ProbeRun._meta.concrete_fields)
    run = from_row(ProbeRun, row[:width])
    run.number = row[width]
    canceller = ProbeRun._meta.get_field("cancelled_by")
    canceller.set_cached_value(
        run,
        None
        if row[width + 1] is None
        else from_row(canceller.related_model, row[width + 1 :], CANCELLER_FIELDS),
    )
    return run


# What the probe panel shows of who cancelled a run (their name).
CANCELLER_FIELDS = ("id", "username", "first_name", "last_name")


@functools.cache
def _last_run_sql() -> str:
    """numbered(deployment.probe_runs.select_related("cancelled_by")).first(), in SQL."""
    quote = connection.ops.quote_name
    runs = ProbeRun._meta
    users = runs.get_field("cancelled_by").related_model._meta
    created, pk = column(runs, "created_at"), quote(runs.pk.column)
    return (
        f"SELECT {columns(runs, 'r')},"
        f" (SELECT COUNT(*) FROM {quote(runs.db_table)} earlier"
        f" WHERE earlier.{column(runs, 'deployment')} = r.{column(runs, 'deployment')}"
        f" AND (earlier.{created} < r.{created}"
        f" OR (earlier.{created} = r.{created} AND earlier.{pk} <= r.{pk}))),"
        f" {columns(users, 'u', CANCELLER_FIELDS)}"
        f" FROM {quote(runs.db_table)} r"
        f" LEFT JOIN {quote(users.db_table)} u"
        f" ON u.{quote(users.pk.column)} = r.{column(runs, 'cancelled_by')}"
        f" WHERE r.{column(runs, 'deployment')} = %s"
        f" ORDER BY r.{created} DESC, r.{pk} DESC LIMIT 1"
    )


def numbered(runs: QuerySet[ProbeRun]) -> QuerySet[ProbeRun]:
    """`runs`, each with its `number` among its deployment's own runs (as run_numbers counts
    them) read in the same query, for the pages that name a run the way the deployment
    does. `runs` is read as a query of its own (not inside another's subquery): the count
    names the outer table."""
    # Written in SQL: the same correlated count built through the ORM (OuterRef, Q, Count)
    # took longer to compile than the rest of the checklist page's probe-run read.
    table = connection.ops.quote_name(ProbeRun._meta.db_table)
    up_to_this = RawSQL(
        f"SELECT COUNT(*) FROM {table} earlier WHERE earlier.deployment_id = {table}.deployment_id"
        f" AND (earlier.created_at < {table}.created_at"
        f" OR (earlier.created_at = {table}.created_at AND earlier.id <= {table}.id))",
        (),
        output_field=IntegerField(),
    )
    return runs.annotate(number=up_to_this)


def run_name(run: ProbeRun) -> str:
    """How a page names `run`: by its deployment's numbering when it was read numbered (see
    numbered), its id on the server beside; by that id alone otherwise."""
    number = getattr(run, "number", None)
    if number is None:
        return f"Probe run #{run.pk}"
    return f"Probe run {number} (#{run.pk} on this server)"


def latest_finished_run(deployment) -> ProbeRun | None:
    return finished_runs().filter(deployment=deployment).select_related("requested_by").first()


def run_numbers(run_ids) -> dict[int, int]:
    """{run id: its place among its deployment's own runs, from 1}, in one query: what the
    pages of a deployment call a run, where ids number every run on the server."""
    deployments = ProbeRun.objects.filter(pk__in=run_ids).values("deployment_id")
    numbers: dict[int, int] = {}
    counted: dict[int, int] = {}
    for pk, deployment_id in (
        ProbeRun.objects.filter(deployment_id__in=Subquery(deployments))
        .order_by("deployment_id", "created_at", "pk")
        .values_list("pk", "deployment_id")
    ):
        counted[deployment_id] = counted.get(deployment_id, 0) + 1
        numbers[pk] = counted[deployment_id]
    return {pk: numbers[pk] for pk in run_ids if pk in numbers}


def latest_finished_run_ids(deployment_ids) -> QuerySet:
    """The latest finished run's id of each deployment, as one subquery."""
    latest = finished_runs().filter(deployment=OuterRef("pk")).values("pk")[:1]
    return (
        Deployment.objects.filter(pk__in=deployment_ids)
        .annotate(latest_run=Subquery(latest))
        .values_list("latest_run", flat=True)
    )


# Worst first, unfinished results last.
RESULT_ORDER = {**STATUS_ORDER, "": len(STATUS_ORDER)}


def _name_accounts(run: ProbeRun, results) -> None:
    names = {account["account_id"]: account.get("name", "") for account in run.accounts}
    for result in results:
        result.account_name = names.get(result.account_id, "")


def results_by_item(
    run: ProbeRun | None, *, item_ids: Collection[int] | None = None
) -> dict[int, list[ProbeResult]]:
    """The run's results per checklist item id, worst first; only those items' with
    `item_ids` (one item's card need not read the findings of the whole run)."""
    if run is None:
        return {}
    grouped: dict[int, list[ProbeResult]] = {}
    results = run.results.filter(item__isnull=False)
    if item_ids is not None:
        results = results.filter(item_id__in=item_ids)
    results = list(results.order_by("probe_key", "account_id", "region"))
    _name_accounts(run, results)
    for result in sorted(results, key=lambda r: RESULT_ORDER.get(r.status, 5)):
        grouped.setdefault(result.item_id, []).append(result)
    return grouped


class ResultStatus(NamedTuple):
    """What the checklist's rows read of a result: enough for its chip and the conflict rule
    (`result_counts`, `probe_conflict`), without the findings and facts it carries."""

    probe_key: str
    status: str
    state: str


def result_statuses_by_item(run: ProbeRun | None) -> dict[int, list[ResultStatus]]:
    """The run's results per checklist item id, three columns each."""
    if run is None:
        return {}
    grouped: dict[int, list[ResultStatus]] = {}
    rows = run.results.filter(item__isnull=False).values_list(
        "item_id", "probe_key", "status", "state"
    )
    for item_id, probe_key, status, state in rows:
        grouped.setdefault(item_id, []).append(ResultStatus(probe_key, status, state))
    return grouped


def latest_result_statuses(deployment, *, item_id: int) -> list[ResultStatus]:
    """One item's results in the deployment's latest finished run (`latest_finished_run`),
    three columns each, in one query that picks the run itself: what a saved item's chips and
    probe conflict need, where reading the run and then its results took two."""
    with connection.cursor() as cursor:
        cursor.execute(
            _latest_result_statuses_sql(), [item_id, deployment.pk, *JUDGED_RUN_STATES, False]
        )
        return [ResultStatus(*row) for row in cursor.fetchall()]


@functools.cache
def _latest_result_statuses_sql() -> str:
    """finished_runs()'s newest run as a subquery, in SQL: built through the ORM it cost
    more CPU to compile than to run, on every save of an item."""
    quote = connection.ops.quote_name
    results, runs = ProbeResult._meta, ProbeRun._meta

    states = ", ".join(["%s"] * len(JUDGED_RUN_STATES))
    return (
        f"SELECT {column(results, 'probe_key')}, {column(results, 'status')},"
        f" {column(results, 'state')} FROM {quote(results.db_table)}"
        f" WHERE {column(results, 'item')} = %s AND {column(results, 'run')} = ("
        f"SELECT {quote(runs.pk.column)} FROM {quote(runs.db_table)}"
        f" WHERE {column(runs, 'deployment')} = %s AND {column(runs, 'state')} IN ({states})"
        f" AND {column(runs, 'partial')} = %s"
        f" ORDER BY {column(runs, 'created_at')} DESC, {quote(runs.pk.column)} DESC LIMIT 1)"
    )


# What result_rows() reads of each result: what a signature binds of it (signatures'
# latest_results reads these), and its state for the rows' chips.
RESULT_ROW_FIELDS = (
    "pk",
    "item_id",
    "account_id",
    "probe_key",
    "region",
    "status",
    "state",
    "summary",
    "finished_at",
)


def result_rows(run: ProbeRun) -> list[dict]:
    """Every result of the run as a dict of RESULT_ROW_FIELDS plus `run_id` and
    `run__deployment_id`, by probe, account and region: one read that gives the checklist's
    rows (statuses_and_counts) and, for the run that stands for the checklist, what the
    sign-offs bind of it."""
    # Written in SQL: .values() over the run's results cost the checklist page more CPU
    # to compile than to run.
    with connection.cursor() as cursor:
        cursor.execute(_result_rows_sql(), [run.pk])
        fetched = cursor.fetchall()
    # One dict per row, built from the row and the run's two values: merging two dicts per
    # row cost more than the rest of the read.
    names, extra = _RESULT_ROW_KEYS, (run.id, run.deployment_id)
    return [dict(zip(names, row + extra, strict=True)) for row in fetched]


_RESULT_ROW_KEYS = (*RESULT_ROW_FIELDS, "run_id", "run__deployment_id")


@functools.cache
def _result_rows_sql() -> str:
    """run.results.order_by("probe_key", "account_id", "region").values(*RESULT_ROW_FIELDS)"""
    results = ProbeResult._meta
    names = [results.pk.name if name == "pk" else name for name in RESULT_ROW_FIELDS]
    return (
        f"SELECT {', '.join(column(results, name) for name in names)}"
        f" FROM {connection.ops.quote_name(results.db_table)}"
        f" WHERE {column(results, 'run')} = %s"
        f" ORDER BY {column(results, 'probe_key')}, {column(results, 'account_id')},"
        f" {column(results, 'region')}"
    )


def statuses_and_counts(rows) -> tuple[dict[int, list[ResultStatus]], dict[str, int]]:
    """result_statuses_by_item(run) and the `counts` with_counts(run) attaches, from the
    run's result rows (result_rows()): the checklist page shows both when its newest run
    is the one that judged it."""
    grouped: dict[int, list[ResultStatus]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        item_id, probe_key, status, state = (
            row["item_id"],
            row["probe_key"],
            row["status"],
            row["state"],
        )
        if status:
            counts[status] = counts.get(status, 0) + 1
        if item_id is not None:
            grouped.setdefault(item_id, []).append(ResultStatus(probe_key, status, state))
    return grouped, dict(sorted(counts.items(), key=lambda pair: RESULT_ORDER.get(pair[0], 5)))


@dataclass(frozen=True)
class AccountResults:
    """One account's share of an item's results, as pages group evidence."""

    account_id: str
    name: str
    results: list

    @property
    def counts(self) -> list[tuple[str, int]]:
        return result_counts(self.results)


def by_account(results: list[ProbeResult]) -> list[AccountResults]:
    """Results grouped by account (in account id order), each group keeping their order:
    any failing account fails the item, and the page says which one."""
    grouped: dict[str, list[ProbeResult]] = {}
    for result in results:
        grouped.setdefault(result.account_id, []).append(result)
    return [
        AccountResults(account_id, getattr(group[0], "account_name", ""), group)
        for account_id, group in sorted(grouped.items())
    ]


def result_counts(results: list[ProbeResult]) -> list[tuple[str, int]]:
    """[(status, count)] worst first, for a compact summary of an item's evidence."""
    counts: dict[str, int] = {}
    for result in results:
        status = result.status or result.state
        counts[status] = counts.get(status, 0) + 1
    return sorted(counts.items(), key=lambda pair: RESULT_ORDER.get(pair[0], 5))


def run_results_by_section(run: ProbeRun) -> list[tuple[str, list[tuple[str, list]]]]:
    """[(section, [(item, [AccountResults])])] in checklist order, for the run's page."""
    results = list(
        run.results.select_related("item__section").order_by("probe_key", "account_id", "region")
    )
    _name_accounts(run, results)
    order = {
        (r.section_title, r.item_title): (
            r.item.section.position if r.item else 99,
            r.item.position if r.item else 99,
        )
        for r in results
    }
    sections: dict[str, dict[str, list]] = {}
    ordered = sorted(
        results,
        key=lambda r: (order[(r.section_title, r.item_title)], RESULT_ORDER.get(r.status, 5)),
    )
    for result in ordered:
        sections.setdefault(result.section_title, {}).setdefault(result.item_title, []).append(
            result
        )
    return [
        (section, [(title, by_account(results)) for title, results in items.items()])
        for section, items in sections.items()
    ]


def probe_conflict(item, results: list[ProbeResult]) -> str:
    """What the latest probes say against a person's decision, or '' when they agree."""
    if item.source != DecisionSource.PERSON or not results:
        return ""
    proposed = item_verdict([r.status for r in results])
    if proposed == ItemStatus.FAILED and item.status in COMPLETE_STATUSES:
        return "The latest probe run failed this item; a person marked it " + (
            item.get_status_display().lower()
        )
    if proposed == ItemStatus.DONE and item.status == ItemStatus.FAILED:
        return "The latest probe run passed this item; a person marked it failed"
    return ""


def with_counts(run: ProbeRun | None) -> ProbeRun | None:
    """Attach `counts` {status: n} of a run's finished results (one query)."""
    if run is not None:
        rows = run.results.exclude(status="").values("status").annotate(n=Count("id"))
        run.counts = {row["status"]: row["n"] for row in rows}
    return run


def eta_seconds(run: ProbeRun, *, now=None) -> float | None:
    """Seconds until an active run is likely done, from its pace so far; None until its
    first check finished.

    The checks done took their durations on however many worker threads ran them side by
    side; their mean duration over that parallelism (the sum of durations over the time
    elapsed) is the time elapsed per check done, so the pace is what is measured, whatever
    the number of workers."""
    if not run.is_active or not run.started_at or not run.completed:
        return None
    elapsed = ((now or timezone.now()) - run.started_at).total_seconds()
    remaining = max(run.total - run.completed, 0)
    return max(elapsed, 0.0) / run.completed * remaining


def with_progress(run: ProbeRun | None) -> ProbeRun | None:
    """Attach `eta_seconds` and, to an active run, `account_progress` (one query)."""
    if run is not None:
        run.eta_seconds = eta_seconds(run)
        run.account_progress = account_progress(run) if run.is_active else []
    return run


@dataclass(frozen=True)
class AccountProgress:
    """One account's share of a run: checks done of its total, and how many failed or
    could not be read."""

    account_id: str
    name: str
    done: int
    total: int
    failed: int
    errors: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100


def account_progress(run: ProbeRun) -> list[AccountProgress]:
    """Per account the run reads (in its order): done/total checks, failures and errors, in
    one grouped query whatever the number of accounts."""
    rows = {
        row["account_id"]: row
        for row in run.results.order_by()
        .values("account_id")
        .annotate(
            total=Count("id"),
            done=Count("id", filter=Q(state=ProbeResultState.DONE)),
            failed=Count("id", filter=Q(status=ProbeOutcome.FAIL)),
            errors=Count("id", filter=Q(status=ProbeOutcome.ERROR)),
        )
    }
    progress = []
    for account in run.accounts:
        row = rows.get(account["account_id"], {})
        progress.append(
            AccountProgress(
                account_id=account["account_id"],
                name=account.get("name", ""),
                done=row.get("done", 0),
                total=row.get("total", 0),
                failed=row.get("failed", 0),
                errors=row.get("errors", 0),
            )
        )
    return progress
