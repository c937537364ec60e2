"""Admin plumbing shared by the apps' admin pages."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never added, changed or deleted here: rows of the signed record and the
    audit trail are written by the application, with their audit events."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
