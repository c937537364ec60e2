from django.contrib import admin

from signoff.models import Role, RoleMembership


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "position")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(RoleMembership)
class RoleMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "team", "created_at")
    list_filter = ("role", "team")
    search_fields = ("user__username", "user__first_name", "user__last_name")
    autocomplete_fields = ("user",)


class RoleMembershipInline(admin.TabularInline):
    """Shown on the team's admin page: who holds which role in this team."""

    model = RoleMembership
    extra = 1
    autocomplete_fields = ("user",)
