"""What the checklist page and its fragments show, for the pages of both layers.

The checklist page is composite: items (checklist layer), their probe results and evidence,
and the sign-off block (this layer). Edges of both apps render it through these functions,
never through each other's views.
"""

from django.utils import timezone

from readiness.checklists import selectors
from readiness.checklists.forms import ItemForm
from readiness.checklists.models import DeploymentState
from readiness.evidence.selectors import latest_verdicts
from readiness.probe_runs import selectors as probe_run_selectors
from readiness.probes.base import is_manual, probes_by_item
from signoff.lifecycle.forms import DeployedForm, PostCheckForm
from signoff.signatures.selectors import active_waivers, roles_of, standings

CHECKLIST_TEMPLATE = "readiness/deployment_detail.html"


def checklist_context(deployment, *, user, shown_item=None) -> dict:
    """The checklist page; `shown_item` carries a bound form (errors) or a conflict notice."""
    sections = selectors.deployment_sections(deployment)
    items = [item for section in sections for item in section.items.all()]
    latest_run = probe_run_selectors.latest_finished_run(deployment)
    results = probe_run_selectors.results_by_item(latest_run)
    coverage = probes_by_item()
    waivers = _waivers(deployment)
    verdicts = latest_verdicts([deployment.pk])
    for section in sections:
        for item in section.items.all():
            decorate_item(item, section, results, coverage, waivers, deployment=deployment)
            item.ci_evidence = verdicts.get(item.pk)
            if shown_item is not None and item.pk == shown_item.pk:
                item.form = shown_item.form
                item.conflict = getattr(shown_item, "conflict", False)
                item.rejected = getattr(shown_item, "rejected", None)
    return {
        "deployment": deployment,
        "sections": sections,
        "progress": selectors.Progress.of(items),
        "run": probe_run_selectors.with_counts(
            probe_run_selectors.active_probe_run(deployment) or latest_run
        ),
        **lifecycle_context(deployment, user=user),
    }


def lifecycle_context(deployment, *, user) -> dict:
    """The sign-off block of the checklist page: each role's standing and the next step."""
    all_standings = standings([deployment])[deployment.pk]
    held = roles_of(user=user, team=deployment.team)
    for standing in all_standings:
        standing.held = standing.role.pk in held
    return {
        "standings": all_standings,
        "post_checks": list(
            deployment.post_deployment_checks.select_related("checked_by").order_by("position")
        ),
        "records": list(deployment.records.order_by("-number")),
        "deployed_form": DeployedForm(),
        "deployment_states": DeploymentState.choices,
        "post_check_form": PostCheckForm(),
    }


def _waivers(deployment) -> dict:
    return active_waivers([deployment.pk], now=timezone.now())


def decorate_item(
    item, section, results: dict, coverage: dict, waivers=None, *, deployment
) -> None:
    """Attach what the item partial shows besides the item: form, probe evidence, conflict,
    the waiver in force. `deployment` is the item's (its state decides whether a change
    needs a reason)."""
    item.form = ItemForm.for_item(item, deployment=deployment)
    item.waiver = (waivers or {}).get(item.pk)
    item.latest_results = results.get(item.pk, [])
    item.result_counts = probe_run_selectors.result_counts(item.latest_results)
    item.probes = coverage.get((section.title, item.title), [])
    item.manual = is_manual(item.probes)
    supporting = {probe.key for probe in item.probes if probe.supporting}
    item.probe_conflict = probe_run_selectors.probe_conflict(
        item, [r for r in item.latest_results if r.probe_key not in supporting]
    )
    item.conflict, item.rejected = False, None
    item.ci_evidence = None


def single_item(deployment, item, form=None):
    """Decorate one item the way the checklist page does, for its fragment."""
    results = probe_run_selectors.results_by_item(
        probe_run_selectors.latest_finished_run(deployment)
    )
    decorate_item(
        item, item.section, results, probes_by_item(), _waivers(deployment), deployment=deployment
    )
    item.ci_evidence = latest_verdicts([deployment.pk]).get(item.pk)
    if form is not None:
        item.form = form
    return item
