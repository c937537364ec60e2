"""Role pages, signing, revoking, waivers and the deployment lifecycle."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from readiness.checklists import selectors as readiness_selectors
from readiness.checklists.models import SIGNABLE_STATES, ChecklistItem
from readiness.checklists.ownership import UNOWNED_ITEM_ROLE_SLUG
from readiness.checklists.teams import require_member
from readiness.probe_runs import selectors as probe_run_selectors
from readiness.probes.base import probes_by_item
from signoff import presenters
from signoff.lifecycle import services
from signoff.lifecycle.forms import (
    MEANING_HELP,
    DeployedForm,
    PostCheckForm,
    ReasonForm,
    SignForm,
    WaiverForm,
)
from signoff.signatures import selectors
from signoff.signatures.models import SignOff, Waiver
from signoff.signatures.overrides import probe_overrides, waivers_in_force
from signoff.signatures.waiting import waiting_page
from signoff.teams import authentication
from signoff.teams.models import Role

ROLE_TEMPLATE = "signoff/role.html"
LIFECYCLE_TEMPLATE = "signoff/lifecycle.html"


def _deployment(request, pk: int):
    return get_object_or_404(readiness_selectors.deployments_visible_to(request.user), pk=pk)


def role_url(deployment, role) -> str:
    return reverse("role_detail", kwargs={"pk": deployment.pk, "role": role.slug})


def _role_context(request, deployment, role, **forms) -> dict:
    """Everything the role page and its panel show, for one role on one deployment."""
    all_standings = selectors.standings([deployment])[deployment.pk]
    standing = next((s for s in all_standings if s.role.pk == role.pk), None)
    if standing is None:
        raise Http404(f"{role} does not sign for this deployment's template.")
    held = selectors.roles_of(user=request.user, team=deployment.team)
    is_member = role.pk in held
    closed = deployment.is_closed
    waivers = selectors.item_waivers(deployment)
    blocked_ids = {b.item.pk for b in standing.blockers} | {b.item.pk for b in standing.waived}
    entries = {entry["id"]: entry for entry in standing.state["items"]}
    editable = is_member and not standing.summary_scope and not closed
    # Product's page lists every item, but only the item's owner role (a Tech Lead for an
    # unowned item) accepts its risk: offer the waiver forms to those who may use them.
    waiving_role_id = (
        _tech_lead_id()
        if is_member and not closed and any(i.owner_role_id is None for i in standing.items)
        else None
    )
    if editable:
        # Members edit their items here with the checklist page's own item cards.
        results = probe_run_selectors.results_by_item(
            probe_run_selectors.latest_finished_run(deployment)
        )
        coverage = probes_by_item()
    for item in standing.items:
        item.waiver_history = waivers.get(item.pk, [])
        item.probe_entries = entries[item.pk].get("probes", [])
        item.can_waive = (
            is_member and not closed and (item.owner_role_id or waiving_role_id) in held
        )
        if editable:
            presenters.decorate_item(
                item,
                item.section,
                results,
                coverage,
                deployment=deployment,
                role_ids=frozenset(held),
                roles={role.pk: role},
            )
    can_sign = is_member and deployment.state in SIGNABLE_STATES
    other_signature = next(
        (
            s
            for s in all_standings
            if s.role.pk != role.pk and s.active and s.active.user_id == request.user.pk
        ),
        None,
    )
    waiver_form = forms.get("waiver_form") or WaiverForm()
    error = forms.get("error", "")
    shown_ids = {b.item.pk for b in standing.blockers if b.item.can_waive}
    if waiver_form.errors and forms.get("waiver_item_id") not in shown_ids:
        # The item has no waiver form on this page (done already, or another role's):
        # its errors go above the panel instead of nowhere.
        error = error or " ".join(m for ms in waiver_form.errors.values() for m in ms)
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
        "sign_form": forms.get("sign_form") or _sign_form(request),
        "revoke_form": forms.get("revoke_form") or ReasonForm(),
        "waiver_form": waiver_form,
        "waiver_item_id": forms.get("waiver_item_id"),
        "meaning_help": MEANING_HELP,
        "blocked_ids": blocked_ids,
        "sections": _summary(standing) if standing.summary_scope else [],
        # What the signer approves besides the statuses, on the whole deployment.
        "overrides": probe_overrides(deployment),
        "waivers_in_force": waivers_in_force(waivers, now=timezone.now()),
        "error": error,
        "notice": forms.get("notice", ""),
    }


def _tech_lead_id() -> int | None:
    return Role.objects.filter(slug=UNOWNED_ITEM_ROLE_SLUG).values_list("pk", flat=True).first()


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


def _signing_roles(deployment) -> list[Role]:
    """The roles of the deployment template's Final Sign-Off table, in its order."""
    return selectors.required_roles(deployment, list(Role.objects.all()))


def _signing_role_from(deployment, slug: str) -> Role:
    """The role named in the URL, if it signs for this deployment; 404 otherwise."""
    role = _role_from(slug)
    if role not in _signing_roles(deployment):
        raise Http404(f"{role} does not sign for this deployment.")
    return role


@require_GET
def role_detail(request: HttpRequest, pk: int, role: str) -> HttpResponse:
    deployment = _deployment(request, pk)
    context = _role_context(request, deployment, _role_from(role))
    if request.htmx and request.htmx.target == "panel":
        return _panel_fragment(request, context)
    return render(request, ROLE_TEMPLATE, context)


def _panel_fragment(request, context: dict, *, status: int = 200) -> HttpResponse:
    """The panel, plus the role tabs and the state badge out of band: a signature changes
    its role's badge and can move the deployment between in review and approved."""
    parts = [
        render_to_string(f"{ROLE_TEMPLATE}#{name}", {**context, "oob": name != "panel"}, request)
        for name in ("panel", "role-tabs", "state-badge")
    ]
    return HttpResponse("".join(parts), status=status)


def _panel_response(request, deployment, role, *, status=200, **forms) -> HttpResponse:
    # The service worked on its own locked copy: show the state it left, not the one read
    # before it ran (the last approval moves the deployment to approved).
    deployment.refresh_from_db(fields=["state", "deployed_at", "updated_at"])
    context = _role_context(request, deployment, role, **forms)
    if request.htmx:
        return _panel_fragment(request, context, status=status)
    return render(request, ROLE_TEMPLATE, context, status=status)


def _done(request, deployment, role, message: str) -> HttpResponse:
    if request.htmx:
        # Said in the panel itself; a queued message would surface on some later page.
        response = _panel_response(request, deployment, role, notice=message)
        # Anything else on the page that shows sign-offs may listen for this.
        response["HX-Trigger"] = "signoff-changed"
        return response
    messages.success(request, message)
    return redirect(role_url(deployment, role))


def _errors_of(error: ValidationError) -> tuple[dict, str]:
    if hasattr(error, "error_dict"):
        return error.message_dict, ""
    return {}, " ".join(error.messages)


def _sign_form(request, data=None) -> SignForm:
    """The sign form, asking for the username too at the first signing of a session."""
    return SignForm(
        data,
        identification_required=authentication.signing_identification_required(
            request, request.user
        ),
    )


@require_POST
def role_sign(request: HttpRequest, pk: int, role: str) -> HttpResponse:
    deployment = _deployment(request, pk)
    role_obj = _signing_role_from(deployment, role)
    services.require_role(team=deployment.team, role=role_obj, user=request.user)
    form = _sign_form(request, request.POST)
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
    return item.owner_role or get_object_or_404(Role, slug=UNOWNED_ITEM_ROLE_SLUG)


@require_POST
def waiver_grant(request: HttpRequest, pk: int, item_id: int) -> HttpResponse:
    deployment = _deployment(request, pk)
    item = _item(deployment, item_id)
    role = _page_role(request, deployment, item)
    # Who may is decided before what was sent: a member without the role gets a 403.
    services.require_waiver_authority(item, request.user)
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


def _page_role(request, deployment, item: ChecklistItem) -> Role:
    """The role whose page the form was on (Product's page shows every item), else the
    owner's; only a role that signs for this deployment has a page to answer with."""
    signing = _signing_roles(deployment)
    slug = request.POST.get("role", "")
    posted = next((role for role in signing if role.slug == slug), None)
    owner = _waiver_role(item)
    return posted or (owner if owner in signing else signing[0])


@require_POST
def waiver_withdraw(request: HttpRequest, pk: int, waiver_id: int) -> HttpResponse:
    deployment = _deployment(request, pk)
    waiver = get_object_or_404(
        Waiver.objects.select_related("item__section__deployment__team", "item__owner_role"),
        pk=waiver_id,
        item__section__deployment=deployment,
    )
    role = _page_role(request, deployment, waiver.item)
    services.require_waiver_authority(waiver.item, request.user)
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


def _back_to_deployment(request, deployment, message: str):
    messages.success(request, message)
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
        return _lifecycle_error(request, deployment, str(conflict), status=409)
    return _back_to_deployment(
        request, deployment, "Sign-off requested: the roles have been notified."
    )


@require_POST
def deployment_deployed(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = _deployment(request, pk)
    require_member(team=deployment.team, user=request.user)
    form = DeployedForm(request.POST)
    if not form.is_valid():
        problems = " ".join(message for errors in form.errors.values() for message in errors)
        return _lifecycle_error(request, deployment, problems, status=400)
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
    require_member(team=deployment.team, user=request.user)
    form = PostCheckForm(request.POST)
    if not form.is_valid():
        return _lifecycle_error(
            request, deployment, "Say what you checked and what you saw.", status=400
        )
    try:
        services.post_check_record(check=check, user=request.user, note=form.cleaned_data["note"])
    except ValidationError as invalid:
        return _lifecycle_error(request, deployment, " ".join(invalid.messages), status=400)
    except services.SignOffConflict as conflict:
        return _lifecycle_error(request, deployment, str(conflict), status=409)
    return _back_to_deployment(request, deployment, f"Checked “{check.label}”.")


def _lifecycle_error(request, deployment, message: str, *, status: int) -> HttpResponse:
    """Re-render the checklist page with the error above the sign-off block (an htmx request
    gets the block alone); nothing saved."""
    if request.htmx:
        context = {
            "deployment": deployment,
            **presenters.lifecycle_context(deployment, user=request.user),
        }
        context["lifecycle_error"] = message
        return render(request, LIFECYCLE_TEMPLATE, context, status=status)
    context = presenters.checklist_context(deployment, user=request.user)
    context["lifecycle_error"] = message
    return render(request, presenters.CHECKLIST_TEMPLATE, context, status=status)


@require_GET
def my_signoffs(request: HttpRequest) -> HttpResponse:
    waiting = waiting_page(request.user, request.GET.get("page"))
    return render(
        request,
        "signoff/my_signoffs.html",
        {
            "page": waiting.page,
            "waiting": waiting.waiting,
            "holding": waiting.holding,
            "signed": selectors.signed_by(request.user),
        },
    )
