"""Reads shared by views, commands and (later) the PDF; they own the query shapes."""

from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet

from readiness.checklists.models import (
    COMPLETE_STATUSES,
    ChecklistItem,
    ChecklistTemplate,
    DecisionSource,
    Deployment,
    DeploymentSection,
    ItemStatus,
    Team,
)
from readiness.probe_runs.models import ACTIVE_RUN_STATES, ProbeResult, ProbeRun


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    not_applicable: int
    failed: int

    @property
    def complete(self) -> int:
        return self.done + self.not_applicable

    @property
    def open(self) -> int:
        return self.total - self.complete - self.failed

    @property
    def percent(self) -> int:
        return round(100 * self.complete / self.total) if self.total else 0

    @classmethod
    def of(cls, items) -> "Progress":
        statuses = [item.status for item in items]
        return cls(
            total=len(statuses),
            done=statuses.count(ItemStatus.DONE),
            not_applicable=statuses.count(ItemStatus.NOT_APPLICABLE),
            failed=statuses.count(ItemStatus.FAILED),
        )


def _progress_counts(prefix: str = "") -> dict:
    return {
        "total_items": Count(f"{prefix}id"),
        "done_items": Count(f"{prefix}id", filter=Q(**{f"{prefix}status": ItemStatus.DONE})),
        "na_items": Count(
            f"{prefix}id", filter=Q(**{f"{prefix}status": ItemStatus.NOT_APPLICABLE})
        ),
        "failed_items": Count(f"{prefix}id", filter=Q(**{f"{prefix}status": ItemStatus.FAILED})),
    }


def _progress_from(row: dict) -> Progress:
    return Progress(
        total=row["total_items"],
        done=row["done_items"],
        not_applicable=row["na_items"],
        failed=row["failed_items"],
    )


def teams_of(user) -> QuerySet[Team]:
    return Team.objects.filter(members=user)


def deployments_visible_to(user) -> QuerySet[Deployment]:
    """Only the user's teams' deployments exist for them; anything else is a 404."""
    if not user.is_authenticated:
        return Deployment.objects.none()
    return Deployment.objects.filter(team__members=user).select_related("team", "template", "owner")


def dashboard_deployments(
    *, user, team: str = "", state: str = "", text: str = ""
) -> QuerySet[Deployment]:
    deployments = deployments_visible_to(user)
    if team:
        deployments = deployments.filter(team__slug=team)
    if state:
        deployments = deployments.filter(state=state)
    for word in text.split():
        deployments = deployments.filter(
            Q(service__icontains=word) | Q(environment__icontains=word) | Q(version__icontains=word)
        )
    return deployments.annotate(**_progress_counts("sections__items__")).order_by(
        "-created_at", "-pk"
    )


def deployment_progress(deployment) -> Progress:
    row = ChecklistItem.objects.filter(section__deployment=deployment).aggregate(
        **_progress_counts()
    )
    return _progress_from(row)


def section_progress(section) -> Progress:
    return _progress_from(
        ChecklistItem.objects.filter(section=section).aggregate(**_progress_counts())
    )


def deployment_sections(deployment) -> list[DeploymentSection]:
    """Every section with its items (and who changed them) in two queries, plus progress."""
    items = ChecklistItem.objects.select_related("updated_by").order_by("position")
    sections = list(
        DeploymentSection.objects.filter(deployment=deployment)
        .order_by("position")
        .prefetch_related(Prefetch("items", queryset=items))
    )
    for section in sections:
        section.progress = Progress.of(section.items.all())
    return sections


def item_of_deployment(*, deployment, item_id: int) -> QuerySet[ChecklistItem]:
    return ChecklistItem.objects.select_related("section__deployment__team", "updated_by").filter(
        pk=item_id, section__deployment=deployment
    )


def item_history(item) -> QuerySet:
    return item.changes.select_related("changed_by").order_by("-version")


def latest_templates() -> list[ChecklistTemplate]:
    """The newest version of each template name, the default one first."""
    templates = ChecklistTemplate.objects.order_by("name", "-version").annotate(
        item_count=Count("sections__items")
    )
    latest: dict[str, ChecklistTemplate] = {}
    for template in templates:
        latest.setdefault(template.name, template)
    return sorted(latest.values(), key=lambda t: (not t.is_default, t.name))


def default_template() -> ChecklistTemplate | None:
    return ChecklistTemplate.objects.filter(is_default=True).first()


def probe_keys_by_item() -> dict[tuple[str, str], list]:
    """(section title, item title) → the probes that verify it."""
    from readiness.probes.base import registry

    keyed: dict[tuple[str, str], list] = {}
    for probe in sorted(registry().values(), key=lambda p: p.key):
        keyed.setdefault((probe.section, probe.item), []).append(probe)
    return keyed


def active_probe_run(deployment) -> ProbeRun | None:
    return deployment.probe_runs.filter(state__in=ACTIVE_RUN_STATES).first()


def latest_finished_run(deployment) -> ProbeRun | None:
    return (
        deployment.probe_runs.exclude(state__in=ACTIVE_RUN_STATES)
        .select_related("requested_by")
        .first()
    )


# What a reader needs first: failures, then what could not be read, then the rest.
RESULT_ORDER = {"fail": 0, "error": 1, "warn": 2, "pass": 3, "not_applicable": 4, "": 5}


def results_by_item(run: ProbeRun | None) -> dict[int, list[ProbeResult]]:
    """The run's results per checklist item id, worst first."""
    if run is None:
        return {}
    grouped: dict[int, list[ProbeResult]] = {}
    results = run.results.filter(item__isnull=False).order_by("probe_key", "region")
    for result in sorted(results, key=lambda r: RESULT_ORDER.get(r.status, 5)):
        grouped.setdefault(result.item_id, []).append(result)
    return grouped


def result_counts(results: list[ProbeResult]) -> list[tuple[str, int]]:
    """[(status, count)] worst first, for a compact summary of an item's evidence."""
    counts: dict[str, int] = {}
    for result in results:
        status = result.status or result.state
        counts[status] = counts.get(status, 0) + 1
    return sorted(counts.items(), key=lambda pair: RESULT_ORDER.get(pair[0], 5))


def run_results_by_section(run: ProbeRun) -> list[tuple[str, list[tuple[str, list]]]]:
    """[(section, [(item, results)])] in checklist order, for the run's results page."""
    results = list(run.results.select_related("item__section").order_by("probe_key", "region"))
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
    return [(section, list(items.items())) for section, items in sections.items()]


def probe_conflict(item, results: list[ProbeResult]) -> str:
    """What the latest probes say against a person's decision, or '' when they agree."""
    from readiness.probe_runs.services import item_verdict

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
