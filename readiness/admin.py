from django.contrib import admin
from django.db import transaction

from readiness.models import (
    ChecklistItem,
    ChecklistTemplate,
    Deployment,
    ItemChange,
    Team,
    TemplateItem,
    TemplateSection,
)
from signoff import memberships
from signoff.admin import RoleMembershipInline, save_role_memberships
from signoff.models import RoleMembership


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


class TemplateSectionInline(admin.TabularInline):
    model = TemplateSection
    extra = 0
    fields = ("position", "title")
    show_change_link = True


@admin.register(ChecklistTemplate)
class ChecklistTemplateAdmin(admin.ModelAdmin):
    """Templates are imported from Markdown (Templates → Import); here they are read only."""

    list_display = ("name", "version", "is_default", "created_at", "created_by")
    list_filter = ("is_default",)
    readonly_fields = (
        "name",
        "version",
        "introduction",
        "source",
        "content_sha256",
        "sign_off_roles",
        "has_deployment_date",
        "post_deployment_items",
        "created_at",
        "created_by",
    )
    fields = (*readonly_fields, "is_default")
    inlines = [TemplateSectionInline]

    def has_add_permission(self, request):
        return False


class TemplateItemInline(admin.TabularInline):
    """The wording is the imported Markdown's; only the owner role is chosen here."""

    model = TemplateItem
    extra = 0
    fields = ("position", "title", "description", "qualifier", "owner_role")
    readonly_fields = ("position", "title", "description", "qualifier")

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # The items are the imported Markdown's: removing one would part the template from
        # its source, unrecorded.
        return False


@admin.register(TemplateSection)
class TemplateSectionAdmin(admin.ModelAdmin):
    list_display = ("title", "template", "position")
    list_select_related = ("template",)
    readonly_fields = ("template", "position", "title")
    inlines = [TemplateItemInline]

    def has_add_permission(self, request):
        return False  # sections come from importing a template

    def has_delete_permission(self, request, obj=None):
        return False

    def save_formset(self, request, form, formset, change):
        if formset.model is not TemplateItem:
            super().save_formset(request, form, formset, change)
            return
        formset.save(commit=False)
        for item, fields in formset.changed_objects:
            if "owner_role" in fields:
                memberships.template_item_owner_set(
                    item=item, role=item.owner_role, actor=request.user
                )


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    """Read only: deployments change in the application, where every change is audited."""

    list_display = ("service", "version", "environment", "team", "state", "planned_date")
    list_filter = ("state", "team", "environment")
    list_select_related = ("team",)
    search_fields = ("service", "version")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ChecklistItem)
class ChecklistItemAdmin(admin.ModelAdmin):
    """Items change through the checklist page, where every edit is versioned and recorded."""

    list_display = ("title", "section", "status", "updated_by", "updated_at")
    list_filter = ("status",)
    search_fields = ("title",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ItemChange)
class ItemChangeAdmin(admin.ModelAdmin):
    list_display = ("item", "version", "previous_status", "status", "changed_by", "changed_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
