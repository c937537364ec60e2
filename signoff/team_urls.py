"""Team pages and the per-deployment audit trail."""

from django.urls import path

from signoff import team_views

urlpatterns = [
    path("teams/", team_views.team_list, name="team_list"),
    path("teams/<slug:slug>/", team_views.team_detail, name="team_detail"),
    path("deployments/<int:pk>/audit/", team_views.deployment_audit, name="deployment_audit"),
]
