"""What the checklist page and its fragments show, for the pages of both layers.

The checklist page is composite: items (checklist layer), their probe results and evidence,
and the sign-off block (this layer). Edges of both apps render it through these functions,
never through each other's views.
"""

import functools
from collections.abc import Collection
from dataclasses import dataclass
from html import escape

from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from readiness.checklists import selectors
from readiness.checklists.forms import ITEM_FILTERS, BulkStatusForm, ItemFilterForm, ItemForm
from readiness.checklists.models import (
    ChecklistItem,
    DecisionSource,
    DeploymentState,
    ItemStatus,
)
from readiness.checklists.teams import held_role_ids, may_change_item
from readiness.evidence.selectors import latest_verdict_conflict, latest_verdicts
from readiness.probe_runs import selectors as probe_run_selectors
from readiness.probes.base import is_manual, probes_by_item
from readiness.templatetags.readiness_tags import probe_label
from signoff.lifecycle.forms import DeployedForm, PostCheckForm
from signoff.records.selectors import records_newest_first
from signoff.signatures.selectors import (
    DeploymentReads,
    active_waivers,
    all_roles,
    bound_results,
    read_changes,
    roles_of,
    standings,
)

CHECKLIST_TEMPLATE = "readiness/deployment_detail.html"

_STATUS_LABELS = dict(ItemStatus.choices)


def checklist_context(deployment, *, user, filters=None, bulk_form=None) -> dict:
    """The checklist page: every item as a compact row (title, owner, status, probe chips,
    who/when; its form is fetched when the row opens), the rows `filters` (an
    ItemFilterForm.of(query)) let through, the count each filter would list, and the
    sign-off block. `bulk_form`: a refused bulk change, its selection and errors kept."""
    filters = filters or ItemFilterForm.of({})
    # The probe panel lists the AWS accounts and their regions, and the signatures bind
    # them: one read for both (the panel and Deployment.aws_regions use the rows read).
    selectors.read_aws_accounts(deployment)
    # The rows name each item's owning role and the sign-off block lists the roles: one
    # read of the roles for both, rather than a Role per item.
    roles = all_roles()
    # `.id` rather than `.pk` in the page's loops: the property costs a call per read.
    sections = selectors.checklist_sections(deployment, roles={role.id: role for role in roles})
    items = [item for section in sections for item in section.item_list]
    # The panel reports the newest run (active, or cancelled too); the items show the
    # newest run that judged them all: most often the same run, then read once, for the
    # rows and for what the sign-offs bind (None: the standings read their own).
    run = probe_run_selectors.last_run(deployment)
    bound_probes = None
    if run is None:
        results, bound_probes = {}, {}
    elif probe_run_selectors.stands_for_the_checklist(run):
        rows = probe_run_selectors.result_rows(run)
        results, run.counts = probe_run_selectors.statuses_and_counts(rows)
        bound_probes = bound_results(rows).get(deployment.pk, {})
    else:
        latest_run = probe_run_selectors.latest_finished_run(deployment)
        results = probe_run_selectors.result_statuses_by_item(latest_run)
        run = probe_run_selectors.with_counts(run)
    coverage = probes_by_item()
    waivers = _waivers(deployment)
    overridden = selectors.overridden_item_ids(deployment)
    # A row flags CI evidence that disagrees with a person's decision, as it flags a probe.
    verdicts = latest_verdicts([deployment.pk])
    role_ids = held_role_ids(team=deployment.team, user=user)  # also the sign-off block's
    item_href = item_href_of(deployment)
    for section in sections:
        for item in section.item_list:
            decorate_row(item, section, results, coverage, waivers, overridden, role_ids)
            item.ci_evidence = verdicts.get(item.id)
            item.href = item_href(item.id)
            summarize_row(item)
    show, probe = filters.filters["show"], filters.filters["probe"]
    words = filters.filters["q"].lower().split()
    for section in sections:
        section.rows = [
            item
            for item in section.item_list
            if row_matches(item, show=show, probe=probe)
            and all(word in item.search_text for word in words)
        ]
    selected = set(bulk_form.cleaned_data.get("items", ())) if bulk_form is not None else set()
    if bulk_form is not None and not selected:
        selected = {int(pk) for pk in bulk_form.data.getlist("items") if pk.isdigit()}
    can_bulk = not deployment.is_closed and any(item.can_change for item in items)
    shown_sections = [section for section in sections if section.rows]
    for section in shown_sections:
        for item in section.rows:
            item.row_html = row_html(item, can_bulk=can_bulk, selected=selected)
        section.html = section_html(section)
    return {
        "deployment": deployment,
        "sections": sections,
        "shown_sections": shown_sections,
        "section_nav_html": section_nav_html(shown_sections),
        "shown_count": sum(len(section.rows) for section in sections),
        "filters": filters,
        "filters_query": filters.query(),
        "filter_all_href": _href(filters.query(show="")),
        "filter_links_html": filter_links_html(filters, filter_counts(items)),
        "selected": selected,
        "bulk_form": bulk_form or blank_bulk_form(),
        "can_bulk": can_bulk,
        "progress": selectors.Progress.of(items),
        "run": probe_run_selectors.with_progress(run),
        **lifecycle_context(
            deployment,
            user=user,
            held=role_ids,
            reads=DeploymentReads(
                items=items,
                waivers=waivers,
                verdicts=verdicts,
                accounts=list(deployment.aws_accounts.all()),
                roles=roles,
                probes=bound_probes,
            ),
        ),
    }


@dataclass(frozen=True)
class RenderedField:
    """A form field rendered once, read by a template as a bound field is (`{{ field }}`,
    its `label` and `id_for_label`)."""

    label: str
    id_for_label: str
    html: SafeString

    def __html__(self) -> SafeString:
        return self.html

    def __str__(self) -> str:
        return self.html


@dataclass(frozen=True)
class BlankBulkForm:
    """The bulk change's form before anything was posted: its fields as the unbound
    BulkStatusForm renders them, no errors."""

    status: RenderedField
    reason: RenderedField
    errors: tuple = ()


@functools.cache
def blank_bulk_form() -> BlankBulkForm:
    """Rendered once per process: an unbound form's widgets are the same on every page
    (fixed ids, choices and attributes), and rendering them through the form renderer's
    templates cost the checklist page ~0.6 ms of CPU each time."""
    form = BulkStatusForm(item_ids=())
    fields = {
        name: RenderedField(
            label=form[name].label, id_for_label=form[name].id_for_label, html=form[name].__html__()
        )
        for name in ("status", "reason")
    }
    return BlankBulkForm(**fields)


def _href(query: str) -> str:
    return f"?{query}" if query else "?"


def decorate_row(item, section, results, coverage, waivers, overridden, role_ids) -> None:
    """What an item's compact row shows and its filters test; no form."""
    item.can_change = may_change_item(item, role_ids)
    item.mine = item.owner_role_id is not None and item.owner_role_id in role_ids
    item.waiver = waivers.get(item.id)
    item.overridden = item.id in overridden
    latest = results.get(item.id, [])
    item.result_counts = probe_run_selectors.result_counts(latest)
    item.result_statuses = {result.status or result.state for result in latest}
    probes = coverage.get((section.title, item.title), [])
    item.manual = is_manual(probes)
    supporting = {probe.key for probe in probes if probe.supporting}
    item.probe_conflict = probe_run_selectors.probe_conflict(
        item, [r for r in latest if r.probe_key not in supporting]
    )
    owner = item.owner_role.name if item.owner_role_id else ""
    item.search_text = " ".join((item.title, item.description, section.title, owner)).lower()


def item_href_of(deployment):
    """The function giving an item's URL by id: one `reverse` for a page of rows, where a
    `{% url %}` per row was a fifth of the rows' rendering."""
    marker = 2_147_483_647  # no real item id: it only marks where the id goes
    prefix, _, suffix = reverse(
        "item_update", kwargs={"pk": deployment.pk, "item_id": marker}
    ).partition(str(marker))
    return lambda pk: f"{prefix}{pk}{suffix}"


def summarize_row(item) -> None:
    """The words and chips of an item's compact row (row_summary_html), worked out
    here once: the same tests and lookups as template tags cost several times more per row,
    and the page repeats them for every item. The item is decorated (decorate_row, or
    decorate_item with `overridden` and `ci_evidence` set)."""
    item.owner_name = item.owner_role.name if item.owner_role_id else "any member"
    # The label get_status_display gives, without the dict of choices it builds per call.
    item.status_words = str(_STATUS_LABELS.get(item.status, item.status)) + (
        " · by probe" if item.source == DecisionSource.PROBE else ""
    )
    chips = [
        (
            f"probe-chip probe-{status}",
            f"{count} {probe_label(status)}" if count > 1 else probe_label(status),
        )
        for status, count in item.result_counts
    ]
    if item.probe_conflict:
        chips.append(("flag flag-disagrees", "Probe disagrees"))
    if item.ci_evidence and item.ci_evidence.conflict:
        chips.append(("flag flag-disagrees", "CI evidence disagrees"))
    if item.manual:
        chips.append(("flag", "Manual check"))
    if item.overridden:
        chips.append(("flag", "Overridden"))
    if item.waiver:
        chips.append(("flag", "Waived"))
    item.row_chips = chips
    editor = item.updated_by
    item.updated_by_words = (
        (editor.get_full_name() or editor.username) if editor is not None else "a probe run"
    )


def row_summary_html(item, *, oob: bool = False) -> SafeString:
    """The `<summary>` of an item's compact row (summarize_row's words and chips), for the
    page and the swap after a save. Built here rather than as a template partial: the page
    repeats it for every item, and rendering its ~20 template variables per row was most
    of the page's rendering time. Plain f-strings over `html.escape` (what Django's escape
    calls; format_html's conditional_escape around it cost more than the escaping)."""
    qualifier = (
        f' <span class="qualifier">{escape(item.qualifier)}</span>' if item.qualifier else ""
    )
    who = ""
    if item.updated_at:
        changed = timezone.localtime(item.updated_at)
        # The `date` filter's "c" and "Y-m-d H:i", written out: DateFormat parsed its
        # format string again for every row. Digits and ISO 8601's signs need no escaping.
        who = (
            f"{escape(item.updated_by_words)} · "
            f'<time datetime="{changed.isoformat()}">'
            f"{changed.year:04d}-{changed.month:02d}-{changed.day:02d}"
            f" {changed.hour:02d}:{changed.minute:02d}</time>"
        )
    chips = "".join(
        f'<span class="{escape(css)}">{escape(words)}</span>' for css, words in item.row_chips
    )
    status = escape(item.status)
    oob_attribute = ' hx-swap-oob="true"' if oob else ""
    return mark_safe(  # every value above is escaped
        f'<summary class="row-summary status-{status}" id="row-{item.id}-summary"'
        f"{oob_attribute}>\n"
        f'<span class="row-title">{escape(item.title)}{qualifier}</span>\n'
        f'<span class="row-owner">{escape(item.owner_name)}</span>\n'
        f'<span class="status-pill status-{status}">{escape(item.status_words)}</span>\n'
        f'<span class="row-flags">{chips}</span>\n'
        f'<span class="row-who">{who}</span>\n'
        "</summary>"
    )


def row_html(item, *, can_bulk: bool, selected: Collection[int]) -> SafeString:
    """An item's compact row (`<li>`): a tick box for the bulk change when it may change,
    its summary (row_summary_html) and the body its form is fetched into when it opens."""
    title = escape(item.title)
    select = ""
    if can_bulk:
        box = ""
        if item.can_change:
            checked = " checked" if item.id in selected else ""
            box = (
                f'<input type="checkbox" name="items" value="{item.id}" form="bulk-form"'
                f' aria-label="Select “{title}”"{checked}>'
            )
        select = f'<span class="row-select">{box}</span>'
    href = escape(item.href)
    return mark_safe(  # every value above is escaped
        f'<li class="item-row" id="row-{item.id}">\n{select}\n<details class="row-details">\n'
        f"{row_summary_html(item)}\n"
        f'<div class="row-body" hx-get="{href}" hx-trigger="toggle once from:closest details">\n'
        f'<p><a href="{href}">Open “{title}”</a> to read its evidence and change it.</p>\n'
        "</div>\n</details>\n</li>"
    )


def section_progress_html(section, *, oob: bool = False) -> SafeString:
    """A section's progress bar and counts (`section.progress`), for its heading on the page
    and the swap after a save changed a status. Built here, as row_html: the page repeats it
    for every section, and its numbers went through the template's localization one by one."""
    progress, key = section.progress, section.id
    percent = progress.percent
    failed = (
        f' <span class="badge failed">{progress.failed} failed</span>' if progress.failed else ""
    )
    oob_attribute = 'hx-swap-oob="true"' if oob else ""
    return mark_safe(  # the title is escaped; the rest are numbers
        f'<div class="section-progress" id="section-progress-{key}" {oob_attribute}>\n'
        '        <div class="mini-progress" role="progressbar" aria-valuemin="0"'
        f' aria-valuemax="100" aria-valuenow="{percent}"'
        f' aria-label="{escape(section.title)} {percent}% complete">'
        f'<span class="pct-{percent}"></span></div>\n'
        f'        <span class="num">{progress.complete}/{progress.total}</span>{failed}\n'
        "      </div>"
    )


def section_html(section) -> SafeString:
    """A section of the checklist page (`<section>`): its heading, progress
    (section_progress_html) and the rows it shows (`section.rows`, each with its
    `row_html`)."""
    key = section.id
    rows = "".join([f"{item.row_html}\n    " for item in section.rows])
    return mark_safe(  # the title is escaped; the rows and progress are built escaped
        f'<section class="checklist-section" id="section-{key}"'
        f' aria-labelledby="section-title-{key}">\n'
        '    <header class="section-head">\n'
        f'      <h2 id="section-title-{key}">{escape(section.title)}</h2>\n'
        f"      \n      {section_progress_html(section)}\n      \n"
        "    </header>\n"
        '    <ul class="item-rows">\n'
        f"    \n    {rows}\n"
        "    </ul>\n"
        "  </section>"
    )


def section_nav_html(sections) -> SafeString:
    """The page's list of links to the sections it shows."""
    return mark_safe(  # every title is escaped
        "".join(
            [
                f'<li><a href="#section-{section.id}">{escape(section.title)}</a></li>'
                for section in sections
            ]
        )
    )


def filter_counts(items) -> dict[str, int]:
    """How many of the decorated rows each of ITEM_FILTERS would list: row_matches' tests,
    in one pass over the rows rather than one per filter."""
    counts = dict.fromkeys(ITEM_FILTERS, 0)
    for item in items:
        if item.status == ItemStatus.OPEN:
            counts["open"] += 1
        elif item.status == ItemStatus.FAILED:
            counts["failed"] += 1
        if item.mine:
            counts["mine"] += 1
        if item.probe_conflict:
            counts["disagrees"] += 1
        if item.overridden:
            counts["overridden"] += 1
        if item.waiver is not None:
            counts["waived"] += 1
    return counts


def filter_links_html(filters, counts: dict[str, int]) -> SafeString:
    """The link of each of ITEM_FILTERS with the count of rows it would list, the one in
    force marked current."""
    shown = filters.filters["show"]
    links = []
    for key, label in ITEM_FILTERS.items():
        current = ' aria-current="page"' if shown == key else ""
        links.append(
            f'<a href="{escape(_href(filters.query(show=key)))}"{current}>'
            f'{escape(label)} <span class="num">{counts[key]}</span></a>'
        )
    return mark_safe("".join(links))  # every value is escaped or a number


def row_matches(item, *, show: str = "", probe: str = "") -> bool:
    """Whether a decorated row passes the page's filters (ITEM_FILTERS, a probe status)."""
    if probe and probe not in item.result_statuses:
        return False
    # Tests in turn rather than a dict of every filter's answer: the page asks this of
    # every row for each filter's count.
    if show == "open":
        return item.status == ItemStatus.OPEN
    if show == "failed":
        return item.status == ItemStatus.FAILED
    if show == "mine":
        return item.mine
    if show == "disagrees":
        return bool(item.probe_conflict)
    if show == "overridden":
        return item.overridden
    if show == "waived":
        return item.waiver is not None
    return True


def lifecycle_context(deployment, *, user, held=None, reads=None) -> dict:
    """The sign-off block of the checklist page: each role's standing and the next step.
    `held`: the ids of the roles `user` holds in the team, when the caller read them;
    `reads`: what the caller read of the deployment that the standings bind too."""
    all_standings = standings([deployment], reads=reads)[deployment.pk]
    if held is None:
        held = roles_of(user=user, team=deployment.team)
    for standing in all_standings:
        standing.held = standing.role.pk in held
    # Each stale signature lists what changed: the failing findings they name read once
    # for all of them, not once per role.
    read_changes(
        [standing for standing in all_standings if standing.status == "stale"],
        first=SHOWN_CHANGE_LINES,
    )
    return {
        "standings": all_standings,
        "standing_rows_html": standing_rows_html(deployment, all_standings),
        "post_checks": selectors.post_checks(deployment.pk),
        "records": records_newest_first(deployment.pk),
        "deployed_form": DeployedForm(),
        "deployment_states": DeploymentState.choices,
        "post_check_form": PostCheckForm(),
    }


# How many change lines a stale role's row lists; its role page lists them all.
SHOWN_CHANGE_LINES = 3


def standing_rows_html(deployment, standing_list) -> SafeString:
    """The rows of the sign-off table (signoff/lifecycle.html): each role, who signed and
    when, its standing and, when stale, the first SHOWN_CHANGE_LINES change lines and how
    many more. Built here rather than in the template, as row_html is: the template's
    lookups, tests, `{% url %}` per link and include per change line were most of the
    block's rendering. One `reverse` per link kind (see item_href_of). The whitespace is
    the template loop's it replaces."""
    role_href = role_href_of(deployment)
    history_href = history_href_of(deployment)
    return mark_safe(  # every value is escaped
        "".join(_standing_row_html(standing, role_href, history_href) for standing in standing_list)
    )


def _standing_row_html(standing, role_href, history_href) -> str:
    role = escape(str(standing.role))
    href = escape(role_href(standing.role.slug))
    status = standing.status
    active = standing.active
    held = ' <span class="muted">(you)</span>' if standing.held else ""
    if active is not None:
        signed = timezone.localtime(active.signed_at)
        # The `date` filter's "c" and "Y-m-d H:i", written out (as row_summary_html does).
        name = escape(active.printed_name)
        date = (
            f'<time datetime="{signed.isoformat()}">'
            f"{signed.year:04d}-{signed.month:02d}-{signed.day:02d}"
            f" {signed.hour:02d}:{signed.minute:02d} UTC</time>"
        )
    else:
        name = date = "—"
    stale = ""
    if status == "stale":
        shown = "".join(
            f"<li>{change_line_html(line, history_href)}</li>"
            for line in standing.first_change_lines(SHOWN_CHANGE_LINES)
        )
        count = standing.change_count
        more = (
            f'<a href="{href}#signature">and {count - SHOWN_CHANGE_LINES} more on the'
            f" {role} page</a>"
            if count > SHOWN_CHANGE_LINES
            else ""
        )
        stale = (
            '<div class="stale-changes"><span class="muted">Changed since signing:</span>\n'
            f'            <ul class="change-lines">{shown}</ul>\n'
            f"            {more}</div>"
        )
    comment = ""
    if active is not None and active.comment and status != "stale":
        comment = f'<span class="muted"> — {escape(Truncator(active.comment).chars(120))}</span>'
    blockers = ""
    if standing.blockers and status not in ("approve", "approve_with_conditions"):
        count = len(standing.blockers)
        blockers = f'<span class="muted"> · {count} blocker{"" if count == 1 else "s"}</span>'
    return (
        "\n      \n"
        f'      <tr id="signoff-row-{escape(standing.role.slug)}">\n'
        f'        <th scope="row"><a href="{href}">{role}</a>{held}</th>\n'
        f'        <td data-label="Name">{name}</td>\n'
        f'        <td data-label="Date">{date}</td>\n'
        f'        <td data-label="Signature"><span class="signoff-badge signoff-{escape(status)}">'
        f"{escape(str(standing.status_label))}</span>\n"
        f"          {stale}\n"
        f"          {comment}\n"
        f"          {blockers}\n"
        "        </td>\n"
        "      </tr>\n"
        "      \n"
        "    "
    )


def change_line_html(line, history_href) -> str:
    """A change line as signoff/role.html's change-line partial renders it: its subject
    linked to the item's history, where it is an item's. `history_href(deployment id, item
    id)`: history_href_of(...)."""
    subject = escape(line.subject)
    if line.item_id:
        subject = (
            f'<a href="{escape(history_href(line.deployment_id, line.item_id))}">{subject}</a>'
        )
    by = f' — <span class="change-by">{escape(line.attribution)}</span>' if line.by else ""
    return f"{subject}: {escape(line.detail)}{by}"


def role_href_of(deployment):
    """The function giving a role's page on `deployment` by slug (one `reverse`)."""
    marker = "role-slug-marker"  # no real slug: it only marks where the slug goes
    prefix, _, suffix = reverse("role_detail", args=[deployment.pk, marker]).partition(marker)
    return lambda slug: f"{prefix}{slug}{suffix}"


def history_href_of(deployment):
    """The function giving an item's history by (deployment id, item id): one `reverse` for
    the items of `deployment`, another for a line of any other deployment's."""
    marker = 2_147_483_647  # no real item id: it only marks where the id goes
    prefix, _, suffix = reverse(
        "item_history", kwargs={"pk": deployment.pk, "item_id": marker}
    ).partition(str(marker))

    def href(deployment_id, item_id) -> str:
        if deployment_id != deployment.pk:
            return reverse("item_history", args=[deployment_id, item_id])
        return f"{prefix}{item_id}{suffix}"

    return href


def _waivers(deployment) -> dict:
    return active_waivers([deployment.pk], now=timezone.now())


def decorate_item(
    item,
    section,
    results: dict,
    coverage: dict,
    waivers=None,
    *,
    deployment,
    role_ids: frozenset[int],
    roles: dict | None = None,
) -> None:
    """Attach what the item partial shows besides the item: form, probe evidence, conflict,
    the waiver in force. `deployment` is the item's (its state decides whether a change
    needs a reason); `role_ids` are the roles the reader holds in its team (whether they
    may change it, or only read it); `roles` {id: Role}, when the items were read without
    their owner role, names it without a query per item."""
    if roles and item.owner_role_id in roles and not ChecklistItem.owner_role.is_cached(item):
        item.owner_role = roles[item.owner_role_id]
    item.can_change = may_change_item(item, role_ids)
    # Nobody but the owning role's holders gets a form to fill.
    item.form = ItemForm.for_item(item, deployment=deployment) if item.can_change else None
    item.waiver = (waivers or {}).get(item.pk)
    item.latest_results = results.get(item.pk, [])
    item.result_counts = probe_run_selectors.result_counts(item.latest_results)
    item.results_by_account = probe_run_selectors.by_account(item.latest_results)
    item.probes = coverage.get((section.title, item.title), [])
    item.manual = is_manual(item.probes)
    supporting = {probe.key for probe in item.probes if probe.supporting}
    item.probe_conflict = probe_run_selectors.probe_conflict(
        item, [r for r in item.latest_results if r.probe_key not in supporting]
    )
    item.conflict, item.rejected = False, None
    item.ci_evidence = None


def single_item(deployment, item, form=None, *, user, role_ids=None):
    """Decorate one item the way the checklist page does, for its fragment. `role_ids`: the
    roles `user` holds in the team, when the caller read them."""
    only = [item.pk]
    results = probe_run_selectors.results_by_item(
        probe_run_selectors.latest_finished_run(deployment), item_ids=only
    )
    decorate_item(
        item,
        item.section,
        results,
        probes_by_item(),
        active_waivers([deployment.pk], now=timezone.now(), item_ids=only),
        deployment=deployment,
        role_ids=(held_role_ids(team=deployment.team, user=user) if role_ids is None else role_ids),
    )
    item.ci_evidence = latest_verdicts([deployment.pk], item_ids=only).get(item.pk)
    if form is not None and item.can_change:
        item.form = form
    return item


def saved_item(deployment, item, form, *, role_ids: frozenset[int], with_row: bool):
    """Decorate an item just saved for what its save swaps (readiness/item_saved.html's
    parts) and, `with_row`, its compact row (summarize_row): its probe results in the
    latest finished run (status only, one query), its waiver and, for the row, whether CI
    evidence disagrees. `form`: its form as it now reads. Less than single_item, which
    dresses the whole card: this is the work of every auto-save."""
    item.can_change = may_change_item(item, role_ids)
    item.form = form if item.can_change else None
    item.waiver = active_waivers([deployment.pk], now=timezone.now(), item_ids=[item.pk]).get(
        item.pk
    )
    item.latest_results = probe_run_selectors.latest_result_statuses(deployment, item_id=item.pk)
    item.result_counts = probe_run_selectors.result_counts(item.latest_results)
    item.probes = probes_by_item().get((item.section.title, item.title), [])
    item.manual = is_manual(item.probes)
    supporting = {probe.key for probe in item.probes if probe.supporting}
    item.probe_conflict = probe_run_selectors.probe_conflict(
        item, [r for r in item.latest_results if r.probe_key not in supporting]
    )
    item.conflict, item.rejected = False, None
    item.ci_evidence = latest_verdict_conflict(deployment.pk, item_id=item.pk) if with_row else None
    return item
