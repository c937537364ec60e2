from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from readiness.checklists import markdown_import, selectors, services
from readiness.checklists.forms import (
    ENVIRONMENT_SUGGESTIONS,
    BulkStatusForm,
    DashboardFilterForm,
    DeploymentCreateForm,
    ItemFilterForm,
    ItemForm,
    TemplateImportForm,
)
from readiness.checklists.models import ChecklistTemplate, DecisionSource
from readiness.checklists.teams import held_role_ids, may_change_item, not_owner_message
from readiness.probe_runs import selectors as probe_run_selectors
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.forms import ProbeRunForm
from signoff import presenters
from signoff.signatures.selectors import standings


def _posted(request: HttpRequest):
    """The POST data of a POST (even an empty one, so it is validated), None otherwise."""
    return request.POST if request.method == "POST" else None


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    filters = DashboardFilterForm(request.GET, user=request.user)
    filters.is_valid()
    cleaned = {key: filters.cleaned_data.get(key) or "" for key in ("team", "state", "text")}
    deployments = selectors.dashboard_deployments(user=request.user, **cleaned)
    page = Paginator(deployments, settings.DASHBOARD_PAGE_SIZE).get_page(request.GET.get("page"))
    role_standings = standings(list(page), rows=True, signed_only=True)
    for deployment in page:
        deployment.standings = role_standings.get(deployment.pk, [])
        deployment.progress = selectors.Progress.of_deployment(deployment)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"filters": filters, "page": page, "query": query.urlencode()}
    template = "readiness/dashboard.html"
    if request.htmx and request.htmx.target == "deployment-results":
        template += "#results"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def deployment_create(request: HttpRequest) -> HttpResponse:
    form = DeploymentCreateForm(_posted(request), user=request.user)
    if request.method == "POST" and form.is_valid():
        deployment = services.deployment_create(user=request.user, **form.cleaned_data)
        messages.success(request, f"Created {deployment}.")
        return redirect("deployment_detail", pk=deployment.pk)
    if not form.fields["team"].queryset.exists():
        messages.warning(request, "You are not in a team yet: ask an administrator to add you.")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "readiness/deployment_create.html",
        {"form": form, "environments": ENVIRONMENT_SUGGESTIONS},
        status=status,
    )


@require_GET
def deployment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = selectors.deployment_visible_to(request.user, pk)
    if deployment is None:
        raise Http404("No Deployment matches the given query.")
    if request.htmx and request.htmx.target == "signoff":
        context = {
            "deployment": deployment,
            **presenters.lifecycle_context(deployment, user=request.user),
        }
        return render(request, "signoff/lifecycle.html", context)
    filters = ItemFilterForm.of(request.GET)
    return render(
        request,
        presenters.CHECKLIST_TEMPLATE,
        presenters.checklist_context(deployment, user=request.user, filters=filters),
    )


ITEM_PAGE = "readiness/item_detail.html"


def _item_page(request, deployment, item, *, status: int = 200) -> HttpResponse:
    """An item's own page: its full card, as the checklist's row opens to with JavaScript.
    `item` was decorated (single_item), with a bound form or a conflict notice if any."""
    return render(request, ITEM_PAGE, {"deployment": deployment, "item": item}, status=status)


def row_url(deployment, item) -> str:
    return f"{deployment_url(deployment)}#row-{item.pk}"


def _item_fragment(request, deployment, item) -> str:
    return render_to_string(
        f"{presenters.CHECKLIST_TEMPLATE}#item",
        {"deployment": deployment, "item": item},
        request=request,
    )


def _saved_response(
    request, deployment, item, form, *, role_ids, reason_slot_changed: bool, status_changed: bool
) -> HttpResponse:
    """What the save changed: the item's status block, version, who/when and, if it changed,
    its reason field (readiness/item_saved.html), each swapped out of band by id, with the
    progress bars of its section and the deployment when its status changed (they count
    statuses only). The fields stay as the person left them: they may be typing on while the
    save is in flight (app.js marks what differs from the saved values as unsaved).
    `form`: the item's form as it now reads."""
    # The progress bars and the row exist on the checklist page only (role pages edit items
    # too).
    try:
        page = request.htmx.current_url_abs_path
    except ValueError:
        # An HX-Current-URL no browser sends ("http://[" fails urlsplit): the item is
        # saved, so answer as for an unknown page rather than with a 500.
        page = None
    on_checklist = page is None or page.split("?")[0].split("#")[0] == deployment_url(deployment)
    presenters.saved_item(deployment, item, form, role_ids=role_ids, with_row=on_checklist)
    # One render for every part: one context, its processors run once.
    parts = [
        render_to_string(
            "readiness/item_saved.html",
            {
                "deployment": deployment,
                "item": item,
                "oob": True,
                "reason_slot_changed": reason_slot_changed,
            },
            request=request,
        )
    ]
    if status_changed and on_checklist:
        parts += _progress_fragments(request, deployment, item)
    if on_checklist:  # who/when changes with any save
        parts.append(_row_summary(request, deployment, item))
    response = HttpResponse("".join(parts))
    # Role pages and the checklist's Final Sign-Off block show the blockers and whether a
    # sign-off went stale: they reload on this.
    response["HX-Trigger"] = "checklist-changed"
    return response


def _row_summary(request, deployment, item) -> str:
    """The item's compact row on the checklist page (status, probe chips, who/when)."""
    # Only a person's decision can be an override: the history is read only for one.
    item.overridden = item.source == DecisionSource.PERSON and bool(
        selectors.overridden_item_ids(deployment, item_ids=[item.pk])
    )
    presenters.summarize_row(item)
    return presenters.row_summary_html(item, oob=True)


def _progress_fragments(request, deployment, item) -> list[str]:
    section = item.section
    section.progress = selectors.section_progress(section)
    return [
        f"\n      {presenters.section_progress_html(section, oob=True)}\n      ",
        render_to_string(
            f"{presenters.CHECKLIST_TEMPLATE}#overall-progress",
            {"progress": selectors.deployment_progress(deployment), "oob": True},
            request=request,
        ),
    ]


@require_http_methods(["GET", "POST"])
def item_update(request: HttpRequest, pk: int, item_id: int) -> HttpResponse:
    # The item and its deployment in one read, which is also the access check.
    item = selectors.item_visible_to(request.user, deployment_id=pk, item_id=item_id)
    if item is None:
        raise Http404("No ChecklistItem matches the given query.")
    deployment = item.section.deployment
    if request.method == "GET":
        presenters.single_item(deployment, item, user=request.user)
        if not request.htmx:
            return _item_page(request, deployment, item)
        return HttpResponse(_item_fragment(request, deployment, item))
    role_ids = held_role_ids(team=deployment.team, user=request.user)
    if not may_change_item(item, role_ids):
        return _not_owner_response(request, deployment, item, not_owner_message(item))
    owner_role = item.owner_role  # an edit never changes it; the saved item is re-read
    previous_status = item.status
    form = ItemForm.for_item(item, data=request.POST, deployment=deployment)
    asked_reason = _reason_asked(item, form)
    if form.is_valid():
        data = form.cleaned_data
        try:
            item = services.item_update(
                item=item,
                user=request.user,
                expected_version=data["version"],
                status=data["status"],
                note=data["note"],
                evidence_url=data["evidence_url"],
                na_reason=data["na_reason"],
                reason=data["reason"],
            )
        except services.StaleEdit as stale:
            return _conflict_response(request, deployment, stale.current, rejected=data)
        except PermissionDenied as denied:  # the role was taken away since the check above
            return _not_owner_response(request, deployment, item, str(denied))
        except services.RecordClosed as closed:
            form.add_error(None, str(closed))
            presenters.single_item(deployment, item, form, user=request.user, role_ids=role_ids)
            if request.htmx:
                return _whole_item(
                    HttpResponse(_item_fragment(request, deployment, item), status=409), item
                )
            return _item_page(request, deployment, item, status=409)
        except ValidationError as error:
            for field, field_errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, field_errors)
        else:
            item.owner_role = owner_role
            if request.htmx:
                # The reason was used up, or the field asks differently now: replace it.
                after = ItemForm.for_item(item, deployment=deployment)
                reason_slot_changed = bool(data["reason"]) or asked_reason != _reason_asked(
                    item, after
                )
                return _saved_response(
                    request,
                    deployment,
                    item,
                    after,
                    role_ids=role_ids,
                    reason_slot_changed=reason_slot_changed,
                    status_changed=item.status != previous_status,
                )
            messages.success(request, f"Saved “{item.title}”.")
            return redirect(row_url(deployment, item))
    presenters.single_item(deployment, item, form, user=request.user, role_ids=role_ids)
    if request.htmx:
        return _whole_item(
            HttpResponse(_item_fragment(request, deployment, item), status=400), item
        )
    return _item_page(request, deployment, item, status=400)


def _reason_asked(item, form) -> str:
    """Which reason field the card shows (as the template decides)."""
    if form.reason_required:
        return "change"
    return "override" if item.source == "probe" else ""


def _whole_item(response: HttpResponse, item) -> HttpResponse:
    """A refusal replaces the whole card (what the server holds, with why); a save swaps
    only what it changed (`_saved_response`)."""
    response["HX-Retarget"] = f"#item-{item.pk}"
    response["HX-Reswap"] = "outerHTML"
    return response


def _not_owner_response(request, deployment, item, message: str) -> HttpResponse:
    """403: the item as its owning role left it, read-only, saying whose it is. htmx swaps
    it in (app.js), so a card whose form was opened before a role was taken away shows so."""
    if not request.htmx:
        raise PermissionDenied(message)
    presenters.single_item(deployment, item, user=request.user)
    item.denied = message
    return _whole_item(HttpResponse(_item_fragment(request, deployment, item), status=403), item)


def _conflict_response(request, deployment, current, *, rejected: dict) -> HttpResponse:
    """Refuse a stale edit: show what the item holds now and what was not saved."""
    presenters.single_item(deployment, current, user=request.user)
    current.conflict, current.rejected = True, rejected
    if request.htmx:
        return _whole_item(
            HttpResponse(_item_fragment(request, deployment, current), status=409), current
        )
    return _item_page(request, deployment, current, status=409)


@require_POST
def items_bulk(request: HttpRequest, pk: int) -> HttpResponse:
    """One status with one reason for the items ticked on the checklist page: all of them
    or none (services.items_set_status). Back to the checklist, its filters kept."""
    deployment = get_object_or_404(selectors.deployments_visible_to(request.user), pk=pk)
    filters = ItemFilterForm.of(request.GET)
    item_ids = selectors.item_ids_of(deployment)
    form = BulkStatusForm(request.POST, item_ids=item_ids)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = services.items_set_status(
                deployment=deployment,
                item_ids=data["items"],
                user=request.user,
                status=data["status"],
                reason=data["reason"],
            )
        except PermissionDenied as denied:
            form.add_error(None, str(denied))
            status = 403
        except services.RecordClosed as closed:
            form.add_error(None, str(closed))
            status = 409
        except ValidationError as error:
            for field, field_errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, field_errors)
        else:
            word = dict(form.fields["status"].choices)[data["status"]]
            changed = len(result.changed)
            message = f"Set {changed} item{'s' if changed != 1 else ''} to {word}."
            if result.unchanged:
                message += f" {len(result.unchanged)} already were."
            messages.success(request, message)
            query = filters.query()
            return redirect(deployment_url(deployment) + (f"?{query}" if query else ""))
    context = presenters.checklist_context(
        deployment, user=request.user, filters=filters, bulk_form=form
    )
    return render(request, presenters.CHECKLIST_TEMPLATE, context, status=status)


def deployment_url(deployment) -> str:
    return reverse("deployment_detail", kwargs={"pk": deployment.pk})


@require_POST
def probe_run_start(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = get_object_or_404(selectors.deployments_visible_to(request.user), pk=pk)
    form = ProbeRunForm(request.POST, deployment=deployment)
    try:
        if not form.is_valid():
            raise ValidationError([m for messages in form.errors.values() for m in messages])
        run, created = probe_runs.probe_run_start(
            deployment=deployment,
            user=request.user,
            regions=form.picked_regions(),
            accounts=form.picked_accounts(),
        )
    except ValidationError as error:
        if request.htmx:
            return HttpResponse(
                render_to_string(
                    "readiness/probe_run.html#run-panel",
                    {
                        "deployment": deployment,
                        "error": " ".join(error.messages),
                    },
                    request=request,
                ),
                status=400,
            )
        messages.error(request, " ".join(error.messages))
        return redirect("deployment_detail", pk=deployment.pk)
    if request.htmx:
        context = {"deployment": deployment, "run": _with_progress(run)}
        return render(request, "readiness/probe_run.html#run-panel", context)
    if not created:
        messages.info(
            request,
            f"{probe_run_selectors.run_name(run)} was already running; showing its progress.",
        )
    return redirect("probe_run_detail", pk=deployment.pk, run_id=run.pk)


@require_POST
def probe_run_cancel(request: HttpRequest, pk: int, run_id: int) -> HttpResponse:
    """Cancel an active run (any member who may start one); a closed run answers 409."""
    deployment = get_object_or_404(selectors.deployments_visible_to(request.user), pk=pk)
    # Numbered: the panel that answers names the run as the deployment does.
    run = get_object_or_404(probe_run_selectors.numbered(deployment.probe_runs), pk=run_id)
    try:
        cancelled = probe_runs.probe_run_cancel(run=run, user=request.user)
    except probe_runs.ProbeRunClosed as closed:
        if request.htmx:
            context = {"deployment": deployment, "run": _with_progress(run), "error": str(closed)}
            return render(request, "readiness/probe_run.html#run-panel", context, status=409)
        context = {
            "deployment": deployment,
            "run": run,
            "error": str(closed),
            "sections": probe_run_selectors.run_results_by_section(run),
        }
        return render(request, "readiness/probe_run.html", context, status=409)
    if request.htmx:
        context = {"deployment": deployment, "run": _with_progress(run)}
        return render(request, "readiness/probe_run.html#run-panel", context)
    if cancelled:
        messages.success(
            request,
            f"Cancelled {probe_run_selectors.run_name(run).lower()}; what finished is kept.",
        )
    else:
        messages.info(request, f"{probe_run_selectors.run_name(run)} was cancelled already.")
    return redirect("probe_run_detail", pk=deployment.pk, run_id=run.pk)


def _with_progress(run):
    return probe_run_selectors.with_progress(probe_run_selectors.with_counts(run))


@require_GET
def probe_run_detail(request: HttpRequest, pk: int, run_id: int) -> HttpResponse:
    """A run's results grouped by section; htmx polls its progress panel while it runs."""
    deployment = get_object_or_404(selectors.deployments_visible_to(request.user), pk=pk)
    run = get_object_or_404(
        probe_run_selectors.numbered(
            deployment.probe_runs.select_related("requested_by", "cancelled_by")
        ),
        pk=run_id,
    )
    if request.htmx and request.htmx.target == "probe-run-panel":
        response = render(
            request,
            "readiness/probe_run.html#run-panel",
            {"deployment": deployment, "run": _with_progress(run)},
        )
        if not run.is_active and request.GET.get("refresh") == "1":
            # The results now live on the items: reload the checklist to show them.
            response["HX-Refresh"] = "true"
        return response
    context = {
        "deployment": deployment,
        # The deployment's own numbering, as the checklist, the record and signatures name it.
        "number": run.number,
        "run": _with_progress(run) if run.is_active else run,
        "sections": probe_run_selectors.run_results_by_section(run) if not run.is_active else [],
    }
    return render(request, "readiness/probe_run.html", context)


@require_GET
def item_history(request: HttpRequest, pk: int, item_id: int) -> HttpResponse:
    deployment = get_object_or_404(selectors.deployments_visible_to(request.user), pk=pk)
    item = get_object_or_404(selectors.item_of_deployment(deployment=deployment, item_id=item_id))
    template = "readiness/item_history.html"
    if request.htmx:
        template += "#changes"
    context = {"deployment": deployment, "item": item, "changes": selectors.item_history(item)}
    return render(request, template, context)


@require_GET
def template_list(request: HttpRequest) -> HttpResponse:
    templates = ChecklistTemplate.objects.order_by("name", "-version").select_related("created_by")
    return render(request, "readiness/template_list.html", {"templates": templates})


@require_GET
def template_detail(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(ChecklistTemplate, pk=pk)
    sections = template.sections.prefetch_related("items")
    return render(
        request, "readiness/template_detail.html", {"template": template, "sections": sections}
    )


@require_http_methods(["GET", "POST"])
def template_import(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("readiness.import_template"):
        raise PermissionDenied(
            "Importing templates needs the “Can import checklist templates” permission: ask "
            "an administrator."
        )
    form = TemplateImportForm(_posted(request), request.FILES if request.method == "POST" else None)
    import_errors: list = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        limit = settings.TEMPLATE_UPLOAD_MAX_BYTES
        try:
            if upload.size > limit:
                raise markdown_import.TemplateImportError(
                    [
                        markdown_import.LineError(
                            0, f"the file is {upload.size:,} bytes; the limit is {limit:,} bytes"
                        )
                    ]
                )
            source = markdown_import.decode(upload.read(), max_bytes=limit)
            result = services.template_import(
                source=source, name=form.cleaned_data["name"], user=request.user, max_bytes=limit
            )
        except markdown_import.TemplateImportError as error:
            import_errors = error.errors
        else:
            verb = "Imported" if result.created else "Already imported:"
            messages.success(request, f"{verb} {result.template}.")
            return redirect("template_detail", pk=result.template.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "readiness/template_import.html",
        {"form": form, "import_errors": import_errors},
        status=status,
    )


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    message = str(exception) if isinstance(exception, PermissionDenied) and str(exception) else ""
    return render(request, "403.html", {"message": message}, status=403)
