"""Role pages, signing, revoking, waivers and the deployment lifecycle."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from readiness import selectors as readiness_selectors
from readiness.models import ChecklistItem, DeploymentState
from signoff import selectors, services
from signoff.forms import (
    MEANING_HELP,
    DeployedForm,
    PostCheckForm,
    ReasonForm,
    SignForm,
    WaiverForm,
)
from signoff.models import Role, SignOff, Waiver

ROLE_TEMPLATE = "signoff/role.html"
CLOSED = (DeploymentState.DEPLOYED, DeploymentState.VERIFIED)


def _deployment(request, pk: int):
    return get_object_or_404(readiness_selectors.deployments_visible_to(request.user), pk=pk)


def role_url(deployment, role) -> str:
    return reverse("role_detail", kwargs={"pk": deployment.pk, "role": role.slug})


def _role_context(request, deployment, role, **forms) -> dict:
    """Everything the role page and its panel show, for one role on one deployment."""
    all_standings = selectors.standings([deployment])[deployment.pk]
    standing = next((s for s in all_standings if s.role.pk == role.pk), None)
    if standing is None:
        raise ValidationError(f"{role} does not sign for this deployment's template.")
    held = selectors.roles_of(user=request.user, team=deployment.team)
    is_member = role.pk in held
    waivers = selectors.item_waivers(deployment)
    blocked_ids = {b.item.pk for b in standing.blockers} | {b.item.pk for b in standing.waived}
    entries = {entry["id"]: entry for entry in standing.state["items"]}
    editable = is_member and not standing.summary_scope and deployment.state not in CLOSED
    if editable:
        # Members edit their items here with the checklist page's own item cards.
        from readiness.views import _decorate_item

        results = readiness_selectors.results_by_item(
            readiness_selectors.latest_finished_run(deployment)
        )
        coverage = readiness_selectors.probe_keys_by_item()
    for item in standing.items:
        item.waiver_history = waivers.get(item.pk, [])
        item.probe_entries = entries[item.pk].get("probes", [])
        if editable:
            _decorate_item(item, item.section, results, coverage)
    can_sign = is_member and deployment.state in (
        DeploymentState.IN_REVIEW,
        DeploymentState.APPROVED,
    )
    other_signature = next(
        (
            s
            for s in all_standings
            if s.role.pk != role.pk and s.active and s.active.user_id == request.user.pk
        ),
        None,
    )
    return {
        "deployment": deployment,
        "role": role,
        "standing": standing,
        "standings": all_standings,
        "is_member": is_member,
        "editable": editable,
        "can_sign": can_sign,
        "other_signature": other_signature,
        "members": selectors.role_members(deployment.team, role),
        "sign_form": forms.get("sign_form") or SignForm(),
        "revoke_form": forms.get("revoke_form") or ReasonForm(),
        "waiver_form": forms.get("waiver_form") or WaiverForm(),
        "waiver_item_id": forms.get("waiver_item_id"),
        "meaning_help": MEANING_HELP,
        "blocked_ids": blocked_ids,
        "sections": _summary(standing) if standing.summary_scope else [],
        "error": forms.get("error", ""),
    }


def _summary(standing) -> list[dict]:
    """Per section counts, for a role that signs for the whole checklist's summary."""
    sections: dict[str, list] = {}
    for item in standing.items:
        sections.setdefault(item.section.title, []).append(item)
    return [
        {"title": title, "progress": readiness_selectors.Progress.of(items)}
        for title, items in sections.items()
    ]


def _role_from(slug: str) -> Role:
    return get_object_or_404(Role, slug=slug)


@require_GET
def role_detail(request: HttpRequest, pk: int, role: str) -> HttpResponse:
    deployment = _deployment(request, pk)
    role_obj = _role_from(role)
    try:
        context = _role_context(request, deployment, role_obj)
    except ValidationError as error:
        raise Http404(f"{role_obj} does not sign for this deployment.") from error
    template = ROLE_TEMPLATE + ("#panel" if request.htmx and request.htmx.target == "panel" else "")
    return render(request, template, context)


def _panel_response(request, deployment, role, *, status=200, **forms) -> HttpResponse:
    context = _role_context(request, deployment, role, **forms)
    if request.htmx:
        return render(request, ROLE_TEMPLATE + "#panel", context, status=status)
    return render(request, ROLE_TEMPLATE, context, status=status)


def _done(request, deployment, role, message: str) -> HttpResponse:
    messages.success(request, message)
    if request.htmx:
        response = _panel_response(request, deployment, role)
        # The state badge and other roles' panels change too: let the page reload them.
        response["HX-Trigger"] = "signoff-changed"
        return response
    return redirect(role_url(deployment, role))


def _errors_of(error: ValidationError) -> tuple[dict, str]:
    if hasattr(error, "error_dict"):
        return error.message_dict, ""
    return {}, " ".join(error.messages)


@require_POST
def role_sign(request: HttpRequest, pk: int, role: str) -> HttpResponse:
    deployment = _deployment(request, pk)
    role_obj = _role_from(role)
    services.require_role(team=deployment.team, role=role_obj, user=request.user)
    form = SignForm(request.POST)
    if not form.is_valid():
        return _panel_response(request, deployment, role_obj, status=400, sign_form=form)
    try:
        signoff = services.signoff_record(
            deployment=deployment,
            role=role_obj,
            user=request.user,
            request=request,
            **form.cleaned_data,
        )
    except ValidationError as error:
        field_errors, general = _errors_of(error)
        for field, errors in field_errors.items():
            form.add_error(field if field in form.fields else None, errors)
        if general:
            form.add_error(None, general)
        return _panel_response(request, deployment, role_obj, status=400, sign_form=form)
    except services.SignOffConflict as conflict:
        return _panel_response(request, deployment, role_obj, status=409, error=str(conflict))
    return _done(
        request,
        deployment,
        role_obj,
        f"Signed for {role_obj}: {signoff.get_meaning_display()}, "
        f"{signoff.signed_at:%Y-%m-%d %H:%M} UTC.",
    )


@require_POST
def signoff_revoke(request: HttpRequest, pk: int, signoff_id: int) -> HttpResponse:
    deployment = _deployment(request, pk)
    signoff = get_object_or_404(
        SignOff.objects.select_related("role", "deployment__team"),
        pk=signoff_id,
        deployment=deployment,
    )
    services.require_role(team=deployment.team, role=signoff.role, user=request.user)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _panel_response(request, deployment, signoff.role, status=400, revoke_form=form)
    try:
        services.signoff_revoke(
            signoff=signoff, user=request.user, reason=form.cleaned_data["reason"]
        )
    except ValidationError as error:
        form.add_error("reason", error.messages)
        return _panel_response(request, deployment, signoff.role, status=400, revoke_form=form)
    except services.SignOffConflict as conflict:
        return _panel_response(request, deployment, signoff.role, status=409, error=str(conflict))
    return _done(request, deployment, signoff.role, f"Revoked the {signoff.role} sign-off.")


def _item(deployment, item_id: int) -> ChecklistItem:
    return get_object_or_404(
        ChecklistItem.objects.select_related("section__deployment__team", "owner_role"),
        pk=item_id,
        section__deployment=deployment,
    )


def _waiver_role(item: ChecklistItem) -> Role:
    return item.owner_role or get_object_or_404(Role, slug="tech-lead")


@require_POST
def waiver_grant(request: HttpRequest, pk: int, item_id: int) -> HttpResponse:
    deployment = _deployment(request, pk)
    item = _item(deployment, item_id)
    role = _page_role(request, item)
    form = WaiverForm(request.POST)
    status, error = 400, ""
    if form.is_valid():
        try:
            services.waiver_grant(
                item=item,
                user=request.user,
                reason=form.cleaned_data["reason"],
                expires_at=form.expires_at,
            )
        except ValidationError as invalid:
            field_errors, general = _errors_of(invalid)
            for field, errors in field_errors.items():
                form.add_error("expires_on" if field == "expires_at" else field, errors)
            if general:
                form.add_error(None, general)
        except services.SignOffConflict as conflict:
            status, error = 409, str(conflict)
        else:
            return _done(request, deployment, role, f"Waived “{item.title}”.")
    return _panel_response(
        request,
        deployment,
        role,
        status=status,
        waiver_form=form,
        waiver_item_id=item.pk,
        error=error,
    )


def _page_role(request, item: ChecklistItem) -> Role:
    """The role whose page the form was on (Product's page shows every item), else the owner."""
    slug = request.POST.get("role", "")
    role = Role.objects.filter(slug=slug).first() if slug else None
    return role or _waiver_role(item)


@require_POST
def waiver_withdraw(request: HttpRequest, pk: int, waiver_id: int) -> HttpResponse:
    deployment = _deployment(request, pk)
    waiver = get_object_or_404(
        Waiver.objects.select_related("item__section__deployment__team", "item__owner_role"),
        pk=waiver_id,
        item__section__deployment=deployment,
    )
    role = _page_role(request, waiver.item)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _panel_response(
            request, deployment, role, status=400, error="Give a reason to withdraw the waiver."
        )
    try:
        services.waiver_withdraw(
            waiver=waiver, user=request.user, reason=form.cleaned_data["reason"]
        )
    except ValidationError as invalid:
        return _panel_response(
            request, deployment, role, status=400, error=" ".join(invalid.messages)
        )
    except services.SignOffConflict as conflict:
        return _panel_response(request, deployment, role, status=409, error=str(conflict))
    return _done(request, deployment, role, f"Withdrew the waiver on “{waiver.item.title}”.")


def _back_to_deployment(request, deployment, message: str, *, level=messages.SUCCESS):
    messages.add_message(request, level, message)
    url = reverse("deployment_detail", kwargs={"pk": deployment.pk}) + "#signoff"
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Location"] = url
        return response
    return redirect(url)


@require_POST
def signoff_request(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = _deployment(request, pk)
    try:
        services.signoff_request(deployment=deployment, user=request.user)
    except services.SignOffConflict as conflict:
        return _back_to_deployment(request, deployment, str(conflict), level=messages.ERROR)
    return _back_to_deployment(
        request, deployment, "Sign-off requested: the roles have been notified."
    )


@require_POST
def deployment_deployed(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = _deployment(request, pk)
    services.require_team_member(team=deployment.team, user=request.user)
    form = DeployedForm(request.POST)
    if not form.is_valid():
        return _lifecycle_error(request, deployment, form.errors.as_text(), status=400)
    try:
        services.deployment_mark_deployed(
            deployment=deployment, user=request.user, deployed_at=form.cleaned_data["deployed_at"]
        )
    except ValidationError as invalid:
        return _lifecycle_error(request, deployment, " ".join(invalid.messages), status=400)
    except services.SignOffConflict as conflict:
        return _lifecycle_error(request, deployment, str(conflict), status=409)
    return _back_to_deployment(request, deployment, "Recorded the deployment date.")


@require_POST
def post_check(request: HttpRequest, pk: int, check_id: int) -> HttpResponse:
    deployment = _deployment(request, pk)
    check = get_object_or_404(deployment.post_deployment_checks, pk=check_id)
    services.require_team_member(team=deployment.team, user=request.user)
    form = PostCheckForm(request.POST)
    if not form.is_valid():
        return _lifecycle_error(
            request, deployment, "Say what you checked and what you saw.", status=400
        )
    try:
        services.post_check_record(check=check, user=request.user, note=form.cleaned_data["note"])
    except services.SignOffConflict as conflict:
        return _lifecycle_error(request, deployment, str(conflict), status=409)
    return _back_to_deployment(request, deployment, f"Checked “{check.label}”.")


def _lifecycle_error(request, deployment, message: str, *, status: int) -> HttpResponse:
    """Re-render the checklist page with the error above the sign-off block; nothing saved."""
    from readiness.views import DETAIL_TEMPLATE, _detail_context

    context = _detail_context(deployment, user=request.user)
    context["lifecycle_error"] = message
    return render(request, DETAIL_TEMPLATE, context, status=status)


@require_GET
def my_signoffs(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "signoff/my_signoffs.html",
        {
            "waiting": selectors.waiting_for(request.user),
            "signed": selectors.signed_by(request.user),
        },
    )
