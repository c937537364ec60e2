"""Roles and memberships change here through the audited services; the signed record and the
audit trail are shown read-only (they are append-only by design)."""

from django import forms
from django.contrib import admin
from django.db import transaction
from django.forms.models import BaseInlineFormSet

from readiness.checklists.models import Team
from readiness.checklists.teams import is_member
from readiness.project.admin import ReadOnlyAdmin
from signoff.signatures.models import Revocation, SignOff, Waiver
from signoff.teams import services as memberships
from signoff.teams.models import Role, RoleMembership


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "position")
    prepopulated_fields = {"slug": ("name",)}


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
