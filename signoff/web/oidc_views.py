"""Single sign-on pages: the login page's SSO button and the OpenID Connect login round trip
(signoff.teams.oidc explains the rules).

Every view here is a 404 while OIDC_ISSUER is empty, so an install without SSO has no new
surface."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import Http404
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from signoff.teams import oidc


class LoginView(auth_views.LoginView):
    """Django's login page, offering single sign-on when it is on (and only it when
    OIDC_LOCAL_LOGIN is false)."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if oidc.enabled():
            context["sso"] = {
                "name": oidc.provider_name(),
                "local": settings.OIDC_LOCAL_LOGIN,
            }
        return context

    def post(self, request, *args, **kwargs):
        if oidc.enabled() and not settings.OIDC_LOCAL_LOGIN:
            raise Http404("Local accounts are off: log in through single sign-on.")
        return super().post(request, *args, **kwargs)


class LoginStartView(OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc.setting)

    def __init__(self, **kwargs):
        # The parent reads the provider's endpoint here, before any request: with SSO off
        # there is none, and the view must answer 404, not fail.
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)

    def get(self, request):
        if not oidc.enabled():
            raise Http404("Single sign-on is off.")
        self.OIDC_OP_AUTH_ENDPOINT = self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT")
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        return super().get(request)


class LoginCallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc.setting)

    def get(self, request):
        if not oidc.enabled():
            raise Http404("Single sign-on is off.")
        return super().get(request)

    def login_success(self):
        response = super().login_success()
        identity = getattr(self.request, "oidc_identity", None)
        if identity:
            # After login(): it cycles the session, and signing asks for this mark.
            oidc.session_mark(self.request.session, identity)
        return response

    def login_failure(self):
        messages.error(
            self.request,
            f"{oidc.provider_name()} did not log you in. Try again, or ask an administrator "
            "if it keeps failing.",
        )
        return super().login_failure()
