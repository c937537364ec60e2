from django.contrib import admin

from readiness.models import (
    ChecklistItem,
    ChecklistTemplate,
    Deployment,
    ItemChange,
    Team,
    TemplateItem,
    TemplateSection,
)
from signoff.admin import RoleMembershipInline


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)
    search_fields = ("name",)
    inlines = [RoleMembershipInline]


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


@admin.register(TemplateSection)
class TemplateSectionAdmin(admin.ModelAdmin):
    list_display = ("title", "template", "position")
    readonly_fields = ("template", "position", "title")
    inlines = [TemplateItemInline]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ("service", "version", "environment", "team", "state", "planned_date")
    list_filter = ("state", "team", "environment")
    search_fields = ("service", "version")
    readonly_fields = ("template", "created_at", "updated_at")


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
