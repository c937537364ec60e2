"""The session limits and the lockout page, at the edge of every request.

Why a middleware rather than Django's SESSION_COOKIE_AGE + SESSION_SAVE_EVERY_REQUEST for
the idle limit: that pair writes the session on every request (each page, each htmx poll of
a probe run) and ends a session silently, as an anonymous request like any other; this one
writes the last-seen time at most once a minute, ends the session through logout() so the
end is an audit event with its reason (idle, absolute), says why on the login page, and
answers an htmx request with HX-Redirect instead of swapping the login page into a fragment.
The absolute limit needs the login time in the session anyway.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render, resolve_url
from django_htmx.http import HttpResponseClientRedirect

from signoff.teams import authentication

ENDED = {
    "idle": "Your session ended after {minutes} minutes without activity. Log in again.",
    "absolute": "Your session reached its limit of {hours:g} hours. Log in again.",
}


class SessionTimeoutMiddleware:
    """Ends a session past SESSION_IDLE_TIMEOUT without a request or SESSION_ABSOLUTE_TIMEOUT
    after its login; then the request goes on anonymous (LoginRequiredMiddleware sends it to
    the login page). A redirect to the login page answers an htmx request as HX-Redirect."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            reason = authentication.session_expiry(request.session)
            if reason:
                request.session_end_reason = reason
                logout(request)
                messages.info(
                    request,
                    ENDED[reason].format(
                        minutes=settings.SESSION_IDLE_TIMEOUT // 60,
                        hours=settings.SESSION_ABSOLUTE_TIMEOUT / 3600,
                    ),
                )
        response = self.get_response(request)
        if request.headers.get("HX-Request") == "true" and _to_login(response):
            return HttpResponseClientRedirect(_login_url_for(request))
        return response


def _to_login(response) -> bool:
    if response.status_code not in (301, 302, 303):
        return False
    try:
        return urlsplit(response["Location"]).path == resolve_url(settings.LOGIN_URL)
    except ValueError:
        return False


def _login_url_for(request) -> str:
    """The login page, coming back to the page the fragment was on (not the fragment)."""
    try:
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
    except ValueError:  # a header no browser sends ("http://[")
        current = urlsplit("")
    if current.path and current.netloc in ("", request.get_host()):
        page = current.path + (f"?{current.query}" if current.query else "")
    else:
        page = request.get_full_path()
    return redirect_to_login(page)["Location"]


def lockout_response(request, original_response, credentials):
    """django-axes' AXES_LOCKOUT_CALLABLE. A locked-out signing keeps its own answer (the
    form says it, see signoff.teams.authentication.signer_identify); a locked-out login gets
    the login page with the lockout explained, HTTP 429."""
    if credentials and credentials.get("purpose") == authentication.SIGNING:
        return original_response
    return render(
        request,
        "registration/login.html",
        {
            "form": AuthenticationForm(request),
            "lockout": authentication.lockout_message(),
            "next": request.POST.get("next", request.GET.get("next", "")),
        },
        status=429,
    )
