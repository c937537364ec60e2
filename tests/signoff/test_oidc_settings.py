"""OIDC_* as a freshly started process reads them (tests/readiness/project/test_settings.py's
way: manage.py in a subprocess with an environment built from nothing)."""

import json

import pytest

from tests.readiness.project.test_settings import _environment, _manage

SNAPSHOT = """
import json
from django.conf import settings
print(json.dumps({
    "backends": settings.AUTHENTICATION_BACKENDS,
    "form_action": settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"],
}))
"""


def _snapshot(tmp_path, **variables) -> dict:
    result = _manage(_environment(tmp_path / "data", **variables), "shell", "-c", SNAPSHOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_an_issuer_nothing_of_sso_is_on(tmp_path):
    snapshot = _snapshot(tmp_path)
    assert not any("oidc" in backend for backend in snapshot["backends"])
    assert snapshot["form_action"] == ["'self'"]


def test_an_issuer_adds_the_backend_and_lets_the_sign_form_reach_it(tmp_path):
    snapshot = _snapshot(
        tmp_path,
        OIDC_ISSUER="https://login.example.com/realms/company/",
        OIDC_CLIENT_ID="readiness",
        OIDC_CLIENT_SECRET="secret",
        OIDC_LOCAL_LOGIN="false",
    )
    assert snapshot["backends"] == [
        "signoff.teams.authentication.LockoutBackend",
        "signoff.teams.oidc.OidcBackend",
    ]
    assert snapshot["form_action"] == ["'self'", "https://login.example.com"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OIDC_ISSUER": "https://login.example.com"}, "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"),
        (
            {
                "OIDC_ISSUER": "http://login.example.com",
                "OIDC_CLIENT_ID": "readiness",
                "OIDC_CLIENT_SECRET": "secret",
            },
            "OIDC_ISSUER must be an https:// URL (http only on loopback)",
        ),
    ],
)
def test_an_incomplete_or_plain_http_issuer_stops_start_up(tmp_path, variables, message):
    result = _manage(_environment(tmp_path / "data", **variables), "check")
    assert result.returncode != 0
    assert message in result.stderr
