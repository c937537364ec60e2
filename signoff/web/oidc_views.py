"""Single sign-on pages: the login page's SSO button, the OpenID Connect login round trip,
and signing by re-authenticating at the provider (signoff.teams.oidc explains the rules).

Every view here is a 404 while OIDC_ISSUER is empty, so an install without SSO has no new
surface."""

import time
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, resolve_url
from django.urls import reverse
from django.utils.crypto import get_random_string
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from mozilla_django_oidc.utils import (
    add_state_and_verifier_and_nonce_to_session,
    generate_code_challenge,
)
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from readiness.checklists import selectors as readiness_selectors
from signoff.lifecycle import services
from signoff.lifecycle.forms import SignForm
from signoff.signatures import selectors
from signoff.teams import oidc
from signoff.teams.models import Role

# Session key: the signatures waiting for the provider's answer, by OAuth state.
PENDING = "readiness_oidc_signing"


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
        try:
            self.OIDC_OP_AUTH_ENDPOINT = self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except requests.RequestException:
            messages.error(request, _unreachable())
            return redirect("login")
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        return super().get(request)


def _unreachable() -> str:
    return (
        f"{oidc.provider_name()} cannot be reached just now: try again in a moment, or ask an "
        "administrator if it lasts."
    )


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

    @property
    def failure_url(self):
        # The parent hands LOGIN_REDIRECT_URL_FAILURE to the redirect as it is: a URL name
        # would become a path relative to the callback.
        return resolve_url(settings.LOGIN_REDIRECT_URL_FAILURE)

    def login_failure(self):
        messages.error(
            self.request,
            f"{oidc.provider_name()} did not log you in. Try again, or ask an administrator "
            "if it keeps failing.",
        )
        return super().login_failure()


# Signing.


def _deployment(request, pk: int):
    return get_object_or_404(readiness_selectors.deployments_visible_to(request.user), pk=pk)


def _role_url(deployment_id: int, role_slug: str) -> str:
    return reverse("role_detail", kwargs={"pk": deployment_id, "role": role_slug})


@require_POST
def sign_start(request: HttpRequest, pk: int, role: str) -> HttpResponse:
    """The sign form under SSO: what the signature says is kept in the session, bound to a
    new state and nonce, and the signer goes to the provider to authenticate again."""
    identity = oidc.session_identity(request)
    if identity is None:
        raise Http404("This session did not log in through single sign-on.")
    deployment = _deployment(request, pk)
    role_obj = get_object_or_404(Role, slug=role)
    services.require_role(team=deployment.team, role=role_obj, user=request.user)
    standing = next(
        (s for s in selectors.standings([deployment])[deployment.pk] if s.role.pk == role_obj.pk),
        None,
    )
    if standing is None:
        raise Http404(f"{role_obj} does not sign for this deployment.")
    form = SignForm(request.POST, identification_required=False)
    form.fields.pop("password")
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return _back(request, _role_url(deployment.pk, role_obj.slug))

    try:
        authorization_endpoint = oidc.setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
    except requests.RequestException:
        messages.error(request, _unreachable() + " Nothing was signed.")
        return _back(request, _role_url(deployment.pk, role_obj.slug))
    state = get_random_string(32)
    nonce = get_random_string(32)
    code_verifier = get_random_string(64)
    params = {
        "response_type": "code",
        "scope": "openid",
        "client_id": oidc.setting("OIDC_RP_CLIENT_ID"),
        "redirect_uri": request.build_absolute_uri(reverse("oidc_sign_callback")),
        "state": state,
        "nonce": nonce,
        "code_challenge": generate_code_challenge(code_verifier, "S256"),
        "code_challenge_method": "S256",
        # A new authentication, whatever session the provider keeps (OpenID Connect Core
        # §3.1.2.1); auth_time is checked on return, since a provider may ignore both.
        "prompt": "login",
        "max_age": str(settings.OIDC_SIGNING_MAX_AGE),
    }
    add_state_and_verifier_and_nonce_to_session(request, state, params, code_verifier)
    pending = request.session.get(PENDING, {})
    pending[state] = {
        "deployment": deployment.pk,
        "role": role_obj.slug,
        "meaning": form.cleaned_data["meaning"],
        "comment": form.cleaned_data["comment"],
        "digest": standing.digest,
        "user": request.user.pk,
        "started_at": time.time(),
    }
    # Only the latest few: a signer who abandons the provider's page leaves one behind.
    request.session[PENDING] = dict(list(pending.items())[-5:])
    url = f"{authorization_endpoint}?{urlencode(params)}"
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


def _back(request, url: str) -> HttpResponse:
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)


@require_GET
def sign_callback(request: HttpRequest) -> HttpResponse:
    """The provider's answer to a signing: the ID token is verified (signature, nonce,
    issuer, audience), then its subject and auth_time (oidc.step_up_identity), and the
    signature goes through the same service as a password-identified one."""
    if not oidc.enabled():
        raise Http404("Single sign-on is off.")
    state = request.GET.get("state", "")
    pending = request.session.get(PENDING, {}).pop(state, None)
    started = request.session.get("oidc_states", {}).pop(state, None)
    request.session.modified = True
    if pending is None or started is None or pending["user"] != request.user.pk:
        messages.error(request, "That signing was not started here, or was already used.")
        return redirect("dashboard")
    role_url = _role_url(pending["deployment"], pending["role"])
    deployment = _deployment(request, pending["deployment"])
    role_obj = get_object_or_404(Role, slug=pending["role"])
    if request.GET.get("error") or not request.GET.get("code"):
        messages.error(
            request,
            f"{oidc.provider_name()} did not confirm your identity "
            f"({request.GET.get('error', 'no answer')}): nothing was signed.",
        )
        return redirect(role_url)
    backend = oidc.OidcBackend()
    backend.request = request
    try:
        tokens = backend.get_token(
            {
                "client_id": oidc.setting("OIDC_RP_CLIENT_ID"),
                "client_secret": oidc.setting("OIDC_RP_CLIENT_SECRET"),
                "grant_type": "authorization_code",
                "code": request.GET["code"],
                "redirect_uri": request.build_absolute_uri(reverse("oidc_sign_callback")),
                "code_verifier": started.get("code_verifier"),
            }
        )
        payload = backend.verify_token(tokens.get("id_token", ""), nonce=started["nonce"])
    except (SuspiciousOperation, requests.RequestException, ValueError) as error:
        messages.error(
            request,
            f"The answer of {oidc.provider_name()} could not be verified ({error}): "
            "nothing was signed.",
        )
        return redirect(role_url)
    standing = next(
        (s for s in selectors.standings([deployment])[deployment.pk] if s.role.pk == role_obj.pk),
        None,
    )
    if standing is None or standing.digest != pending["digest"]:
        messages.error(
            request,
            "What this role approves changed while you were at "
            f"{oidc.provider_name()}: nothing was signed. Review it and sign again.",
        )
        return redirect(role_url)
    try:
        identified_by = oidc.step_up_identity(
            payload=payload, user=request.user, started_at=pending["started_at"]
        )
    except oidc.StepUpRefused as refusal:
        identified_by = refusal
    try:
        signoff = services.signoff_record(
            deployment=deployment,
            role=role_obj,
            user=request.user,
            meaning=pending["meaning"],
            comment=pending["comment"],
            request=request,
            identified_by=identified_by,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(role_url)
    except services.SignOffConflict as conflict:
        messages.error(request, str(conflict))
        return redirect(role_url)
    messages.success(
        request,
        f"Signed for {role_obj}: {signoff.get_meaning_display()}, "
        f"{signoff.signed_at:%Y-%m-%d %H:%M} UTC, identified by {oidc.provider_name()}.",
    )
    return redirect(role_url)
