"""pytest fixtures of the SSO tests: the test OpenID provider, the app configured for it, and
a provider-side "browser" that fills in the provider's login form.

Import them into a test module (`from tests.oidc_provider.fixtures import ...`); the provider
starts once per session, in its own process.
"""

import re
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from signoff.teams import oidc
from tests.oidc_provider import server

CLIENT_SECRET = "readiness-test-client-secret"
CLIENT_ID = "readiness"
PROMPT_IGNORING_CLIENT_ID = "readiness-prompt-ignored"
USERS = {
    "alice": {
        "password": "alice-idp-password",
        "email": "alice@example.com",
        "first_name": "Alice",
        "last_name": "Okafor",
        "groups": ["team:payments", "team:payments:security", "unrelated-group"],
    },
    "bob": {
        "password": "bob-idp-password",
        "email": "bob@example.com",
        "first_name": "Bob",
        "last_name": "Meyer",
        "groups": ["team:payments"],
    },
}


# Each module that imports the fixture holds its own session-scoped copy of it: the first
# to run starts the provider (and stops it when the session ends), the others share it.
_running: list = []


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    if _running:
        yield _running[0]
        return
    provider = server.start(tmp_path_factory.mktemp("oidc-provider"))
    try:
        provider.seed({"users": [{"username": name, **user} for name, user in USERS.items()]})
        provider_clients(provider, ["http://testserver"])
        _running.append(provider)
        yield provider
    finally:
        _running.clear()
        provider.stop()


def provider_clients(provider, origins: list[str]) -> None:
    """Register both clients with the callbacks of the app at each origin."""
    redirects = [
        f"{origin}{path}"
        for origin in origins
        for path in ("/oidc/callback/", "/oidc/sign/callback/")
    ]
    provider.seed(
        {
            "clients": [
                {"client_id": client, "client_secret": CLIENT_SECRET, "redirect_uris": redirects}
                for client in (CLIENT_ID, PROMPT_IGNORING_CLIENT_ID)
            ]
        }
    )


@pytest.fixture
def sso(settings, oidc_provider):
    """The app with single sign-on on, as OIDC_* in the environment would set it."""
    settings.OIDC_ISSUER = oidc_provider.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.OIDC_TEAM_CLAIM = "groups"
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, oidc.BACKEND]
    return oidc_provider


class ProviderBrowser:
    """The user's browser as the provider sees it: its own cookies, its login form."""

    def __init__(self, app_origin: str = "http://testserver") -> None:
        self.session = requests.Session()
        self.app_origin = app_origin
        self.login_forms = 0

    def authorize(self, url: str, *, username: str, password: str) -> str:
        """Follow the provider from an authorization URL until it sends the browser back to
        the app; log in on the way if asked. Returns the app URL it was sent back to."""
        for _ in range(10):
            answer = self.session.get(url, allow_redirects=False, timeout=30)
            if answer.status_code == 200 and 'name="password"' in answer.text:
                self.login_forms += 1
                next_url = re.search(r'name="next" value="([^"]*)"', answer.text)
                answer = self.session.post(
                    url,
                    data={
                        "username": username,
                        "password": password,
                        "next": next_url.group(1).replace("&amp;", "&") if next_url else "",
                        "csrfmiddlewaretoken": self.session.cookies["op_csrftoken"],
                    },
                    allow_redirects=False,
                    timeout=30,
                )
            if answer.status_code not in (301, 302, 303):
                raise AssertionError(f"the provider answered {answer.status_code}: {answer.text}")
            url = urljoin(url, answer.headers["Location"])
            if url.startswith(self.app_origin):
                return url
        raise AssertionError("the provider never sent the browser back")


def app_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
