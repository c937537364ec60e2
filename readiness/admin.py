from django.contrib import admin

from readiness.audit.models import AuditEvent
from readiness.checklists.models import (
    ChecklistItem,
    ChecklistTemplate,
    Deployment,
    ItemChange,
    TemplateItem,
    TemplateSection,
)
from readiness.project.admin import ReadOnlyAdmin
from signoff.teams import services as memberships


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
