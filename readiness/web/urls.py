"""Checklist pages: templates, deployments, items, probe runs, the probe catalogue."""

from django.urls import path

from readiness.web import aws_views, catalogue_views, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("deployments/new/", views.deployment_create, name="deployment_create"),
    path("deployments/<int:pk>/", views.deployment_detail, name="deployment_detail"),
    path("deployments/<int:pk>/items/<int:item_id>/", views.item_update, name="item_update"),
    path("deployments/<int:pk>/items/bulk/", views.items_bulk, name="items_bulk"),
    path("deployments/<int:pk>/aws/", aws_views.deployment_aws, name="deployment_aws"),
    path(
        "deployments/<int:pk>/aws/accounts/<str:account_id>/remove/",
        aws_views.deployment_aws_account_remove,
        name="deployment_aws_account_remove",
    ),
    path(
        "deployments/<int:pk>/aws/accounts/<str:account_id>/trust-policy.json",
        aws_views.deployment_trust_policy,
        name="deployment_trust_policy",
    ),
    path(
        "deployments/<int:pk>/aws/organization/",
        aws_views.deployment_aws_organization,
        name="deployment_aws_organization",
    ),
    path(
        "deployments/<int:pk>/aws/organization/list/",
        aws_views.deployment_aws_organization_list,
        name="deployment_aws_organization_list",
    ),
    path(
        "deployments/<int:pk>/aws/organization/accounts/",
        aws_views.deployment_aws_organization_accounts,
        name="deployment_aws_organization_accounts",
    ),
    path("deployments/<int:pk>/probes/", views.probe_run_start, name="probe_run_start"),
    path(
        "deployments/<int:pk>/probes/<int:run_id>/",
        views.probe_run_detail,
        name="probe_run_detail",
    ),
    path(
        "deployments/<int:pk>/probes/<int:run_id>/cancel/",
        views.probe_run_cancel,
        name="probe_run_cancel",
    ),
    path(
        "deployments/<int:pk>/items/<int:item_id>/history/",
        views.item_history,
        name="item_history",
    ),
    path("probes/", catalogue_views.probe_catalogue, name="probe_catalogue"),
    path("probes/policy.json", catalogue_views.probe_policy, name="probe_policy"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/import/", views.template_import, name="template_import"),
    path("templates/<int:pk>/", views.template_detail, name="template_detail"),
]
