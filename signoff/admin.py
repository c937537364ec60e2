"""Roles, memberships, user accounts and permission groups change here through the audited
services; the signed record and the audit trail are shown read-only (they are append-only by
design)."""

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.shortcuts import redirect

from readiness.checklists.models import Team
from readiness.checklists.teams import is_member
from readiness.project.admin import ReadOnlyAdmin
from signoff.signatures.models import Revocation, SignOff, Waiver
from signoff.teams import accounts, authentication
from signoff.teams import services as memberships
from signoff.teams.models import Role, RoleMembership

User = get_user_model()


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    """A role's name is printed on every sign-off for it: adding, renaming and deleting one
    are audited (and need the "manage teams" permission, like memberships)."""

    list_display = ("name", "slug", "position")
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request, obj, form, change):
        values = {
            field: form.cleaned_data[field]
            for field in memberships.ROLE_FIELDS
            if field in form.cleaned_data
        }
        if change:
            memberships.role_update(role=obj, actor=request.user, **values)
            return
        created = memberships.role_create(actor=request.user, **values)
        obj.pk = created.pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        memberships.role_delete(role=obj, actor=request.user)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        for role in queryset:
            memberships.role_delete(role=role, actor=request.user)


# Accounts and groups decide who may sign: every change goes through signoff.teams.accounts.

admin.site.unregister(User)
admin.site.unregister(Group)

ACCOUNT_VALUES = (*accounts.PROFILE_FIELDS, "is_active", *accounts.PRIVILEGE_FIELDS)
PRIVILEGE_FORM_FIELDS = (*accounts.PRIVILEGE_FIELDS, "groups", "user_permissions")


@admin.register(User)
class AccountAdmin(DjangoUserAdmin):
    """Django's user admin, with each change audited; privileges are a superuser's to give,
    and a user the record names is deactivated, never deleted."""

    actions = ["deactivate_selected"]
    readonly_fields = ("last_login", "date_joined")

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and not request.user.is_superuser:
            fields = (*fields, *PRIVILEGE_FORM_FIELDS)
        return fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, each with its refusal
        return actions

    def save_model(self, request, obj, form, change):
        if not change:
            accounts.user_create(user=obj, actor=request.user)
        # A change is saved with its groups and permissions, in save_related.

    def save_related(self, request, form, formsets, change):
        if not change:
            super().save_related(request, form, formsets, change)
            return
        data = form.cleaned_data
        accounts.user_update(
            user=form.instance,
            actor=request.user,
            values={field: data[field] for field in ACCOUNT_VALUES if field in data},
            groups=data.get("groups"),
            permissions=data.get("user_permissions"),
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def user_change_password(self, request, id, form_url=""):
        # Django's view renders the form, its errors and refusals; a valid change is made
        # here, through the audited service, instead of by the form's save().
        if request.method != "POST":
            return super().user_change_password(request, id, form_url)
        user = self.get_object(request, unquote(id))
        if user is None or not self.has_change_permission(request, user):
            return super().user_change_password(request, id, form_url)
        form = self.change_password_form(user, request.POST)
        if not form.is_valid():
            return super().user_change_password(request, id, form_url)
        usable = form.cleaned_data["set_usable_password"]
        if not usable and "unset-password" not in request.POST:
            return super().user_change_password(request, id, form_url)
        user = accounts.user_password_set(
            user=user,
            password=form.cleaned_data["password1"] if usable else None,
            actor=request.user,
        )
        self.log_change(request, user, self.construct_change_message(request, form, None))
        messages.success(
            request,
            "Password changed successfully."
            if usable
            else "Password-based authentication was disabled.",
        )
        update_session_auth_hash(request, user)
        return redirect(f"{self.admin_site.name}:auth_user_change", user.pk)

    def delete_view(self, request, object_id, extra_context=None):
        user = self.get_object(request, unquote(object_id))
        if user is not None and self.has_delete_permission(request, user):
            history = accounts.user_history(user)
            if history:
                return self._refuse_deletion(
                    request, accounts.deletion_refusal(user, history), user
                )
        try:
            return super().delete_view(request, object_id, extra_context)
        except accounts.UserHasHistory as refusal:  # the record named them since the check
            return self._refuse_deletion(request, refusal.messages[0], user)

    def _refuse_deletion(self, request, message: str, user):
        messages.error(request, message)
        return redirect(f"{self.admin_site.name}:auth_user_change", user.pk)

    def delete_model(self, request, obj):
        accounts.user_delete(user=obj, actor=request.user)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        for user in queryset:
            accounts.user_delete(user=user, actor=request.user)

    @admin.action(description="Deactivate selected users", permissions=["change"])
    def deactivate_selected(self, request, queryset):
        try:
            count = accounts.users_deactivate(users=queryset, actor=request.user)
        except PermissionDenied as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
            return
        self.message_user(request, f"Deactivated {count} user(s).", messages.SUCCESS)


@admin.register(Group)
class PermissionGroupAdmin(DjangoGroupAdmin):
    """A group's permissions are its members': superusers change them, audited."""

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        pass  # saved with its permissions, in save_related

    def save_related(self, request, form, formsets, change):
        accounts.group_save(
            group=form.instance, permissions=form.cleaned_data["permissions"], actor=request.user
        )

    def delete_model(self, request, obj):
        accounts.group_delete(group=obj, actor=request.user)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        for group in queryset:
            accounts.group_delete(group=group, actor=request.user)


def _not_a_member(user, team) -> str:
    return f"{user} is not a member of {team}: add them to the team's members first."


class RoleMembershipForm(forms.ModelForm):
    class Meta:
        model = RoleMembership
        fields = ("team", "user", "role")

    def clean(self):
        cleaned = super().clean()
        team, user = cleaned.get("team"), cleaned.get("user")
        if team and user and not is_member(team=team, user=user):
            self.add_error("user", _not_a_member(user, team))
        return cleaned


@admin.register(RoleMembership)
class RoleMembershipAdmin(admin.ModelAdmin):
    """A membership is added or removed, never edited: each of those is one audit event."""

    form = RoleMembershipForm
    list_display = ("user", "role", "team", "created_at")
    list_filter = ("role", "team")
    list_select_related = ("user", "role", "team")
    search_fields = ("user__username", "user__first_name", "user__last_name")
    autocomplete_fields = ("user",)

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        created = memberships.membership_add(
            team=obj.team, user=obj.user, role=obj.role, actor=request.user
        )
        # The admin logs and redirects with the object it was given.
        obj.pk, obj.created_at = created.pk, created.created_at
        obj._state.adding = False

    def delete_model(self, request, obj):
        memberships.membership_remove(membership=obj, actor=request.user)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        for membership in queryset:
            memberships.membership_remove(membership=membership, actor=request.user)


class RoleMembershipFormSet(BaseInlineFormSet):
    """Checks each new or changed membership against the members this same form submits:
    the team page saves its members before its roles."""

    def _submitted_member_ids(self) -> set[int]:
        # TeamAdmin always shows `members`; an empty multiple select submits nothing at all.
        return {int(value) for value in self.data.getlist("members") if value.isdigit()}

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        member_ids = self._submitted_member_ids()
        for form in self.forms:
            if not form.has_changed() or self._should_delete_form(form):
                continue
            user = form.cleaned_data.get("user")
            if user is not None and user.pk not in member_ids:
                form.add_error("user", _not_a_member(user, self.instance))


class RoleMembershipInline(admin.TabularInline):
    """Shown on the team's admin page: who holds which role in this team."""

    model = RoleMembership
    formset = RoleMembershipFormSet
    extra = 1
    autocomplete_fields = ("user",)


def save_role_memberships(request, formset) -> None:
    """Apply a RoleMembershipInline formset through the audited services."""
    formset.save(commit=False)
    actor = request.user
    for membership in formset.deleted_objects:
        memberships.membership_remove(membership=membership, actor=actor)
    # An edited row means someone else now holds the role (or the person holds another one):
    # on the record that is one role withdrawn and one given.
    changed = [membership for membership, _fields in formset.changed_objects]
    for membership in changed:
        original = RoleMembership.objects.filter(pk=membership.pk).first()
        if original is not None:
            memberships.membership_remove(membership=original, actor=actor)
    for membership in [*changed, *formset.new_objects]:
        created = memberships.membership_add(
            team=membership.team, user=membership.user, role=membership.role, actor=actor
        )
        membership.pk = created.pk


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    list_display = (
        "deployment",
        "role",
        "sequence",
        "printed_name",
        "meaning",
        "signed_at",
        "revoked",
    )
    list_filter = ("role", "meaning", "signed_at")
    list_select_related = ("deployment", "role", "revocation")
    search_fields = ("printed_name", "comment", "deployment__service", "user__username")
    date_hierarchy = "signed_at"

    @admin.display(boolean=True)
    def revoked(self, obj) -> bool:
        return hasattr(obj, "revocation")


@admin.register(Revocation)
class RevocationAdmin(ReadOnlyAdmin):
    list_display = ("signoff", "revoked_by", "revoked_at", "reason")
    list_filter = ("revoked_at", "signoff__role")
    list_select_related = ("signoff__role", "revoked_by")
    search_fields = ("reason", "signoff__printed_name", "revoked_by__username")


@admin.register(Waiver)
class WaiverAdmin(ReadOnlyAdmin):
    list_display = ("item", "granted_by", "granted_at", "expires_at", "withdrawn_at")
    list_filter = ("granted_at", "expires_at", "withdrawn_at")
    list_select_related = ("item", "granted_by")
    search_fields = ("item__title", "reason", "granted_by__username")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    """Members and roles change through the audited services, as on the team page."""

    list_display = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)
    search_fields = ("name",)
    inlines = [RoleMembershipInline]

    def save_related(self, request, form, formsets, change):
        team = form.instance
        # Popped so that save_m2m() leaves the members to the services below.
        wanted = set(form.cleaned_data.pop("members"))
        form.save_m2m()
        current = set(team.members.all())
        for user in sorted(current - wanted, key=lambda u: u.pk):
            memberships.team_member_remove(team=team, user=user, actor=request.user)
        for user in sorted(wanted - current, key=lambda u: u.pk):
            memberships.team_member_add(team=team, user=user, actor=request.user)
        # Roles after members: a role may go to someone added in this same form.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        if formset.model is RoleMembership:
            save_role_memberships(request, formset)
        else:
            super().save_formset(request, form, formset, change)

    def delete_model(self, request, obj):
        memberships.team_delete(team=obj, actor=request.user)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        for team in queryset:
            memberships.team_delete(team=team, actor=request.user)


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(AxesAccessAttemptAdmin):
    """django-axes' failed attempts; deleting them unlocks their name and address, an audit
    event naming the administrator who did (`manage.py axes_reset…` is the other way)."""

    def delete_model(self, request, obj):
        authentication.access_attempts_clear(attempts=[obj], actor=request.user)

    def delete_queryset(self, request, queryset):
        authentication.access_attempts_clear(attempts=list(queryset), actor=request.user)


_django_password_change = admin.site.password_change


def _password_change(request, extra_context=None):
    """The admin's "Change password" for one's own account: Django's page and form, the
    change itself made by the audited service (`user.password_changed`)."""
    if request.method == "POST" and request.user.is_authenticated:
        form = AdminPasswordChangeForm(request.user, request.POST)
        if form.is_valid():
            user = accounts.user_password_change(
                user=request.user, password=form.cleaned_data["new_password1"]
            )
            update_session_auth_hash(request, user)
            return redirect(f"{admin.site.name}:password_change_done")
    return _django_password_change(request, extra_context)


admin.site.password_change = _password_change
