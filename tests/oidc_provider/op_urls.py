"""The provider's login form and django-oauth-toolkit's OAuth 2.0 / OIDC endpoints under /o/."""

from django.contrib.auth import views as auth_views
from django.urls import include, path
from oauth2_provider import views as oauth_views

# A client registered under this id meets a provider that ignores `prompt=login` and hands
# back the session's old authentication (some IdPs do, misconfigured): the relying party
# must notice from `auth_time` alone.
PROMPT_IGNORING_CLIENT = "readiness-prompt-ignored"


class AuthorizationView(oauth_views.AuthorizationView):
    def get(self, request, *args, **kwargs):
        if request.GET.get("client_id") == PROMPT_IGNORING_CLIENT and "prompt" in request.GET:
            query = request.GET.copy()
            query.pop("prompt")
            request.GET = query
            request.META["QUERY_STRING"] = query.urlencode()
        return super().get(request, *args, **kwargs)


urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("o/authorize/", AuthorizationView.as_view(), name="authorize"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
