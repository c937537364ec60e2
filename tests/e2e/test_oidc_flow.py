"""Single sign-on in a real browser: log in through the test OpenID provider
(tests/oidc_provider, its own process) and sign by re-authenticating there."""

# The provider's fixtures are imported here, so pytest's parameters shadow them (F811).
# ruff: noqa: F811

import re

import pytest
from playwright.sync_api import expect

from readiness.audit.models import AuditEvent
from readiness.checklists.models import Team
from signoff.lifecycle import services
from signoff.signatures.models import SignOff
from tests.factories import TeamFactory, make_deployment
from tests.oidc_provider.fixtures import (  # noqa: F401 (fixtures)
    USERS,
    oidc_provider,
    provider_clients,
    sso,
)
from tests.signoff_helpers import complete_items

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

WAIT = 10_000  # ms


def provider_login(page, username: str) -> None:
    expect(page.get_by_role("heading", name="Test IdP")).to_be_visible(timeout=WAIT)
    page.get_by_label("IdP username").fill(username)
    page.get_by_label("IdP password").fill(USERS[username]["password"])
    page.get_by_role("button", name="Sign in at the IdP").click()


def test_log_in_and_sign_through_the_provider(new_context, live_server, sso):
    provider_clients(sso, ["http://testserver", live_server.url])
    TeamFactory(name="Payments", slug="payments")
    page = new_context().new_page()
    page.set_default_timeout(WAIT)

    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Log in with Test IdP").click()
    provider_login(page, "alice")
    expect(page.get_by_role("heading", level=1, name="Deployments")).to_be_visible(timeout=WAIT)

    alice = Team.objects.get(slug="payments").members.get(username="alice")
    deployment = make_deployment(user=alice, team=Team.objects.get(slug="payments"))
    complete_items(deployment)
    services.signoff_request(deployment=deployment, user=alice)

    page.goto(f"{live_server.url}/deployments/{deployment.pk}/roles/security/")
    panel = page.locator("#panel")
    expect(panel.get_by_label("Your password")).to_have_count(0)
    panel.get_by_role("radio", name=re.compile(r"^Approve —")).check()
    panel.get_by_role("button", name="Re-authenticate with Test IdP to sign as Security").click()
    # prompt=login: the provider asks again although its session from the login is alive.
    provider_login(page, "alice")

    expect(page.locator("ul.messages")).to_contain_text("identified by Test IdP", timeout=WAIT)
    signoff = SignOff.objects.get(deployment=deployment, role__slug="security")
    expect(page.locator("#signature .manifestation")).to_have_text(
        f"Security — Alice Okafor — {signoff.signed_at:%Y-%m-%d %H:%M} UTC — approved",
        timeout=WAIT,
    )
    event = AuditEvent.objects.get(action="signoff.signed", object_id=str(signoff.pk))
    assert event.after["identified_by"]["sub"] == sso.subjects["alice"]
