"""Roles and memberships change here through the audited services; the signed record and the
audit trail are shown read-only (they are append-only by design)."""

from django import forms
from django.contrib import admin
from django.db import transaction
from django.forms.models import BaseInlineFormSet

from signoff import memberships
from signoff.models import AuditEvent, Revocation, Role, RoleMembership, SignOff, Waiver


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
        if team and user and not team.members.filter(pk=user.pk).exists():
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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never added, changed or deleted here: rows of the signed record are written
    by the application, with their audit events."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "deployment",
        "ip",
        "short_hash",
    )
    list_filter = ("action", "object_type", "created_at")
    list_select_related = ("actor", "deployment")
    search_fields = ("action", "object_id", "reason", "actor__username", "hash", "ip")
    ordering = ("-id",)

    @admin.display(description="hash")
    def short_hash(self, obj) -> str:
        return obj.hash[:12]
