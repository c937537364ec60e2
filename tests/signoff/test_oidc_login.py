"""Logging in through a real OpenID provider (tests/oidc_provider), over HTTP on loopback."""

# The provider's fixtures are imported here, so pytest's parameters shadow them (F811).
# ruff: noqa: F811

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model

from readiness.audit.models import AuditEvent
from signoff.teams import oidc
from signoff.teams.models import OidcIdentity, RoleMembership
from tests.factories import TeamFactory, UserFactory
from tests.oidc_provider.fixtures import (  # noqa: F401 (fixtures)
    ProviderBrowser,
    app_path,
    oidc_provider,
    sso,
)
from tests.signoff_helpers import role

pytestmark = pytest.mark.django_db


def sso_login(client, *, username: str, password: str, browser=None):
    browser = browser or ProviderBrowser()
    start = client.get("/oidc/login/")
    assert start.status_code == 302
    back = browser.authorize(start["Location"], username=username, password=password)
    return client.get(app_path(back))


def test_sso_is_off_without_an_issuer(client):
    assert client.get("/oidc/login/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    assert b"Log in with" not in client.get("/login/").content


def test_the_login_page_offers_the_provider(client, sso):
    page = client.get("/login/")
    assert b"Log in with Test IdP" in page.content
    assert b'name="password"' in page.content


def test_a_first_login_through_the_provider_creates_the_account_and_its_roles(client, sso):
    TeamFactory(slug="payments", name="Payments")

    answer = sso_login(client, username="alice", password="alice-idp-password")

    assert answer.status_code == 302 and answer["Location"] == "/"
    user = get_user_model().objects.get(username="alice")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session[oidc.SSO_SESSION] == {
        "issuer": sso.issuer,
        "sub": sso.subjects["alice"],
        "name": "Test IdP",
    }
    assert (user.email, user.get_full_name()) == ("alice@example.com", "Alice Okafor")
    assert not user.has_usable_password()
    assert OidcIdentity.objects.get(user=user).subject == sso.subjects["alice"]
    assert list(user.teams.values_list("slug", flat=True)) == ["payments"]
    assert [(m.team.slug, m.role.slug) for m in RoleMembership.objects.filter(user=user)] == [
        ("payments", "security")
    ]
    actions = list(
        AuditEvent.objects.filter(action__startswith="user.").values_list("action", flat=True)
    ) + list(
        AuditEvent.objects.filter(action__in=["team.member_added", "membership.added"])
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["user.created", "user.logged_in", "team.member_added", "membership.added"]
    assert client.get("/").status_code == 200


def test_the_account_is_found_by_subject_and_a_local_account_is_never_taken_over(client, sso):
    TeamFactory(slug="payments", name="Payments")
    local = UserFactory(username="alice", email="alice@example.com")

    sso_login(client, username="alice", password="alice-idp-password")
    first = OidcIdentity.objects.get(subject=sso.subjects["alice"]).user
    client.logout()
    sso_login(client, username="alice", password="alice-idp-password")

    assert first != local and first.username == "alice-2"
    assert client.session["_auth_user_id"] == str(first.pk)
    assert get_user_model().objects.filter(email="alice@example.com").count() == 2


def test_the_team_claim_withdraws_what_it_no_longer_lists(client, sso):
    payments = TeamFactory(slug="payments", name="Payments")
    sso_login(client, username="bob", password="bob-idp-password")
    bob = get_user_model().objects.get(username="bob")
    other = TeamFactory(slug="other", name="Other")
    other.members.add(bob)
    RoleMembership.objects.create(team=payments, user=bob, role=role("devops"))
    client.logout()

    sso_login(client, username="bob", password="bob-idp-password")

    assert list(bob.teams.values_list("slug", flat=True)) == ["payments"]
    assert not RoleMembership.objects.filter(user=bob).exists()
    assert AuditEvent.objects.filter(action="membership.removed", actor=None).count() == 1


def test_a_wrong_password_at_the_provider_logs_nobody_in(client, sso):
    browser = ProviderBrowser()
    start = client.get("/oidc/login/")
    with pytest.raises(AssertionError, match="answered 200"):
        browser.authorize(start["Location"], username="alice", password="wrong")
    assert "_auth_user_id" not in client.session


def test_a_forged_callback_logs_nobody_in(client, sso):
    client.get("/oidc/login/")
    answer = client.get("/oidc/callback/?code=forged&state=unknown-state")
    assert answer.status_code == 400
    assert "_auth_user_id" not in client.session


def test_local_login_can_be_turned_off(client, sso, settings, member):
    settings.OIDC_LOCAL_LOGIN = False
    page = client.get("/login/")
    assert b"Log in with Test IdP" in page.content and b'name="password"' not in page.content
    assert client.post("/login/", {"username": "lee", "password": "x"}).status_code == 404


def test_pages_of_a_logged_in_user_do_not_need_the_provider(client, sso, settings, monkeypatch):
    TeamFactory(slug="payments", name="Payments")
    sso_login(client, username="alice", password="alice-idp-password")
    # A web process started while the provider is unreachable: nothing discovered yet.
    monkeypatch.setattr(oidc, "_discovered", {})
    settings.OIDC_ISSUER = "http://127.0.0.1:9/o"

    assert client.get("/").status_code == 200


def test_an_unreachable_provider_is_said_on_the_login_page(client, sso, settings, monkeypatch):
    monkeypatch.setattr(oidc, "_discovered", {})
    settings.OIDC_ISSUER = "http://127.0.0.1:9/o"

    answer = client.get("/oidc/login/", follow=True)

    assert answer.redirect_chain == [("/login/", 302)]
    assert "Test IdP cannot be reached just now" in answer.content.decode()


def test_a_refusal_at_the_provider_comes_back_to_the_login_page(client, sso):
    start = client.get("/oidc/login/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]

    answer = client.get(f"/oidc/callback/?error=access_denied&state={state}", follow=True)

    assert answer.redirect_chain == [("/login/", 302)]
    assert "Test IdP did not log you in" in answer.content.decode()


def test_a_deactivated_account_cannot_log_in_through_the_provider(client, sso):
    TeamFactory(slug="payments", name="Payments")
    sso_login(client, username="alice", password="alice-idp-password")
    client.logout()
    get_user_model().objects.filter(username="alice").update(is_active=False)

    answer = sso_login(client, username="alice", password="alice-idp-password")

    assert answer.status_code == 302 and answer["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="user.login_failed").count() == 1


def test_an_sso_session_reads_its_user_until_the_account_is_deactivated(client, sso):
    TeamFactory(slug="payments", name="Payments")
    sso_login(client, username="alice", password="alice-idp-password")
    assert client.session["_auth_user_backend"] == oidc.BACKEND
    page = client.get("/")
    assert page.status_code == 200 and page.wsgi_request.user.get_username() == "alice"

    get_user_model().objects.filter(username="alice").update(is_active=False)

    page = client.get("/")
    assert page.status_code == 302 and not page.wsgi_request.user.is_authenticated
