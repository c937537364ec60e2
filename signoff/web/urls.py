"""Sign-off pages: roles and signatures, waivers, teams and the audit trail, records."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from signoff.web import oidc_views, record_views, team_views, verify_views, views

urlpatterns = [
    path("signoffs/", views.my_signoffs, name="my_signoffs"),
    path("deployments/<int:pk>/request-signoff/", views.signoff_request, name="signoff_request"),
    path("deployments/<int:pk>/deployed/", views.deployment_deployed, name="deployment_deployed"),
    path(
        "deployments/<int:pk>/post-checks/<int:check_id>/",
        views.post_check,
        name="post_check",
    ),
    path("deployments/<int:pk>/roles/<slug:role>/", views.role_detail, name="role_detail"),
    path("deployments/<int:pk>/roles/<slug:role>/sign/", views.role_sign, name="role_sign"),
    path(
        "deployments/<int:pk>/signoffs/<int:signoff_id>/revoke/",
        views.signoff_revoke,
        name="signoff_revoke",
    ),
    path(
        "deployments/<int:pk>/items/<int:item_id>/waivers/",
        views.waiver_grant,
        name="waiver_grant",
    ),
    path(
        "deployments/<int:pk>/waivers/<int:waiver_id>/withdraw/",
        views.waiver_withdraw,
        name="waiver_withdraw",
    ),
    path("teams/", team_views.team_list, name="team_list"),
    path("teams/<slug:slug>/", team_views.team_detail, name="team_detail"),
    path("deployments/<int:pk>/audit/", team_views.deployment_audit, name="deployment_audit"),
    path(
        "deployments/<int:pk>/records/<int:number>/",
        record_views.record_download,
        name="record_download",
    ),
    path("deployments/<int:pk>/draft.pdf", record_views.record_draft, name="record_draft"),
    path(
        "deployments/<int:pk>/draft/", record_views.record_draft_status, name="record_draft_status"
    ),
    path(
        "deployments/<int:pk>/draft/retry/",
        record_views.record_draft_retry,
        name="record_draft_retry",
    ),
    path("records/verify/", verify_views.record_verify, name="record_verify"),
    # Single sign-on (404 while OIDC_ISSUER is empty); the names are mozilla-django-oidc's.
    path(
        "oidc/login/",
        login_not_required(oidc_views.LoginStartView.as_view()),
        name="oidc_authentication_init",
    ),
    path(
        "oidc/callback/",
        login_not_required(oidc_views.LoginCallbackView.as_view()),
        name="oidc_authentication_callback",
    ),
    path(
        "deployments/<int:pk>/roles/<slug:role>/sign/oidc/",
        oidc_views.sign_start,
        name="oidc_sign_start",
    ),
    path("oidc/sign/callback/", oidc_views.sign_callback, name="oidc_sign_callback"),
]
