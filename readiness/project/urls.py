"""The site's URLs: each concern's pages come from its edge package."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from readiness.project import health, metrics
from signoff.web.oidc_views import LoginView

handler403 = "readiness.web.views.permission_denied"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path(
        "login/",
        # Django's own, offering single sign-on beside it when OIDC_ISSUER is set.
        LoginView.as_view(),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("readiness.web.urls")),
    path("", include("signoff.web.urls")),
    path("", include("readiness.api.urls")),
    # The audit trail's admin pages moved app with the model; old bookmarks still arrive.
    re_path(
        r"^admin/signoff/auditevent/(?P<rest>.*)$",
        RedirectView.as_view(url="/admin/readiness/auditevent/%(rest)s", query_string=True),
    ),
    path("admin/", admin.site.urls),
]
