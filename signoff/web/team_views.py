"""Team pages (members and who holds each role) and a deployment's audit trail."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_http_methods

from readiness.audit import export as audit_export
from readiness.audit.verification import verify_chain
from readiness.checklists.selectors import deployments_visible_to
from readiness.people import display_name_with_username as person
from signoff.teams import services as memberships
from signoff.teams.models import Role, RoleMembership

TEAM_TEMPLATE = "signoff/team.html"
AUDIT_TEMPLATE = "signoff/audit.html"


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return person(obj)


class RoleAddForm(forms.Form):
    user = MemberChoiceField(
        queryset=None,
        label="Member",
        empty_label="Choose a member",
        error_messages={
            "required": "Choose the member who takes the role.",
            "invalid_choice": "That person is not a member of this team: add them first.",
        },
    )
    role = forms.ModelChoiceField(
        queryset=Role.objects.all(),
        empty_label="Choose a role",
        error_messages={"required": "Choose a role.", "invalid_choice": "There is no such role."},
    )

    def __init__(self, data=None, *, team):
        super().__init__(data)
        self.fields["user"].queryset = team.members.order_by("last_name", "first_name", "username")


class RoleRemoveForm(forms.Form):
    membership = forms.ModelChoiceField(
        queryset=None,
        error_messages={
            "required": "Choose the role to withdraw.",
            "invalid_choice": "That person no longer holds that role in this team.",
        },
    )

    def __init__(self, data=None, *, team):
        super().__init__(data)
        self.fields["membership"].queryset = RoleMembership.objects.filter(team=team)


class MemberAddForm(forms.Form):
    username = forms.CharField(
        label="Username",
        max_length=150,
        error_messages={"required": "Enter the username of the person to add."},
    )

    def __init__(self, data=None, *, team):
        super().__init__(data)

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ValidationError(f"There is no user with the username “{username}”.")
        return user


class MemberRemoveForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=None,
        error_messages={
            "required": "Choose the member to remove.",
            "invalid_choice": "That person is not a member of this team.",
        },
    )

    def __init__(self, data=None, *, team):
        super().__init__(data)
        self.fields["user"].queryset = team.members.all()


TEAM_FORMS = {
    "role_add": RoleAddForm,
    "role_remove": RoleRemoveForm,
    "member_add": MemberAddForm,
    "member_remove": MemberRemoveForm,
}


def _team_change(action: str, data: dict, *, team, actor) -> str:
    """Run the service behind one of the page's forms; the message says what changed."""
    if action == "role_add":
        membership = memberships.membership_add(
            team=team, user=data["user"], role=data["role"], actor=actor
        )
        return f"{person(membership.user)} now holds {membership.role} in {team}."
    if action == "role_remove":
        membership = data["membership"]
        memberships.membership_remove(membership=membership, actor=actor)
        return f"{person(membership.user)} no longer holds {membership.role} in {team}."
    if action == "member_add":
        memberships.team_member_add(team=team, user=data["username"], actor=actor)
        return f"Added {person(data['username'])} to {team}."
    memberships.team_member_remove(team=team, user=data["user"], actor=actor)
    return f"Removed {person(data['user'])} from {team}, with the roles they held in it."


def _team_context(team, user, *, bound: dict, errors: list[str], notice: str) -> dict:
    context = {
        "team": team,
        "roster": memberships.team_roster(team),
        "can_manage": memberships.can_manage_teams(user),
        "errors": errors,
        "notice": notice,
    }
    if context["can_manage"]:
        context["role_add_form"] = bound.get("role_add") or RoleAddForm(team=team)
        context["member_add_form"] = bound.get("member_add") or MemberAddForm(team=team)
    return context


def _team_response(
    request, team, *, status: int = 200, bound=None, errors=(), notice=""
) -> HttpResponse:
    context = _team_context(
        team, request.user, bound=bound or {}, errors=list(errors), notice=notice
    )
    template = TEAM_TEMPLATE + ("#team-panel" if request.htmx else "")
    return render(request, template, context, status=status)


@require_GET
def team_list(request: HttpRequest) -> HttpResponse:
    teams = memberships.team_list(request.user)
    return render(request, "signoff/team_list.html", {"teams": teams})


@require_http_methods(["GET", "POST"])
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(memberships.teams_visible_to(request.user), slug=slug)
    if request.method == "GET":
        return _team_response(request, team)
    if not memberships.can_manage_teams(request.user):
        raise PermissionDenied("Only team managers change who is in a team and their roles.")
    action = request.POST.get("action", "")
    form_class = TEAM_FORMS.get(action)
    if form_class is None:
        return _team_response(
            request, team, status=400, errors=["Unknown change: use one of the forms below."]
        )
    form = form_class(request.POST, team=team)
    if form.is_valid():
        try:
            message = _team_change(action, form.cleaned_data, team=team, actor=request.user)
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            if request.htmx:
                return _team_response(request, team, notice=message)
            messages.success(request, message)
            return redirect("team_detail", slug=team.slug)
    errors = [message for field_errors in form.errors.values() for message in field_errors]
    return _team_response(request, team, status=400, bound={action: form}, errors=errors)


def _download(deployment, events, *, export: str, filters: dict) -> HttpResponse:
    if export == "csv":
        # The byte-order mark makes Excel read the file as UTF-8 (names, arrows).
        body = "\ufeff" + audit_export.events_csv(events)
        content_type = "text/csv; charset=utf-8"
    else:
        body = audit_export.events_json(deployment, events, filters=filters)
        content_type = "application/json; charset=utf-8"
    filename = f"deployment-{deployment.pk}-audit-{timezone.now():%Y-%m-%d}.{export}"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # Client addresses and names: not for shared caches.
    patch_cache_control(response, private=True, no_store=True)
    return response


@require_GET
def deployment_audit(request: HttpRequest, pk: int) -> HttpResponse:
    """Every audit event of one deployment, filtered, paged, or exported as CSV or JSON."""
    deployment = get_object_or_404(deployments_visible_to(request.user), pk=pk)
    form = audit_export.AuditFilterForm(request.GET, deployment=deployment)
    page, status = None, 400
    if form.is_valid():
        events = audit_export.deployment_events(deployment, **form.filters)
        export = form.cleaned_data["format"]
        if export:
            return _download(deployment, events, export=export, filters=form.filters)
        page = Paginator(events, audit_export.PAGE_SIZE).get_page(request.GET.get("page"))
        status = 200
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    query.pop("verify", None)
    context = {
        "deployment": deployment,
        "form": form,
        "page": page,
        "events": audit_export.with_summaries(page) if page is not None else [],
        "query": query.urlencode(),
    }
    if request.htmx:
        return render(request, AUDIT_TEMPLATE + "#events", context, status=status)
    # ?verify=full rehashes every event, not only those after the last full verification.
    context["chain"] = verify_chain(deployment.pk, full=request.GET.get("verify") == "full")
    return render(request, AUDIT_TEMPLATE, context, status=status)
