"""Signing under single sign-on: the signer re-authenticates at a real OpenID provider
(tests/oidc_provider) instead of typing a password here, and the ID token's subject and
auth_time decide whether that identifies them now."""

# The provider's fixtures are imported here, so pytest's parameters shadow them (F811).
# ruff: noqa: F811

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from readiness.audit.models import AuditEvent
from signoff.lifecycle import services
from signoff.signatures.models import SignOff
from signoff.teams import oidc
from tests.factories import TeamFactory, make_deployment
from tests.oidc_provider.fixtures import (  # noqa: F401 (fixtures)
    PROMPT_IGNORING_CLIENT_ID,
    ProviderBrowser,
    app_path,
    oidc_provider,
    sso,
)
from tests.signoff.test_oidc_login import sso_login
from tests.signoff_helpers import complete_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def review(client, sso):
    """Alice logged in through the provider (which made her Security in Payments), and a
    deployment in review whose Security items are done."""
    team = TeamFactory(slug="payments", name="Payments")
    browser = ProviderBrowser()
    sso_login(client, username="alice", password="alice-idp-password", browser=browser)
    alice = team.members.get(username="alice")
    deployment = make_deployment(user=alice, team=team)
    complete_items(deployment)
    services.signoff_request(deployment=deployment, user=alice)
    return deployment, alice, browser


def start_signing_answer(client, deployment, meaning="approve", comment=""):
    return client.post(
        reverse("oidc_sign_start", kwargs={"pk": deployment.pk, "role": "security"}),
        {"meaning": meaning, "comment": comment},
    )


def start_signing(client, deployment, meaning="approve", comment=""):
    answer = start_signing_answer(client, deployment, meaning, comment)
    assert answer.status_code == 302, answer.content[:300]
    return answer["Location"]


def page_text(client, deployment) -> str:
    return client.get(
        reverse("role_detail", kwargs={"pk": deployment.pk, "role": "security"})
    ).content.decode()


def test_signing_under_sso_re_authenticates_at_the_provider(client, review, sso):
    deployment, alice, browser = review
    assert "Re-authenticate with Test IdP to sign as Security" in page_text(client, deployment)

    authorize = start_signing(client, deployment, comment="reviewed the threat model")
    asked = parse_qs(urlsplit(authorize).query)
    assert asked["prompt"] == ["login"] and asked["max_age"] == ["300"]
    back = browser.authorize(authorize, username="alice", password="alice-idp-password")
    answer = client.get(app_path(back))

    # The provider had a session from the login, and still asked for the password.
    assert browser.login_forms == 2
    assert answer.status_code == 302
    signoff = SignOff.objects.get(deployment=deployment, role__slug="security")
    assert (signoff.user, signoff.meaning, signoff.comment) == (
        alice,
        "approve",
        "reviewed the threat model",
    )
    identified = AuditEvent.objects.get(action="signoff.signed").after["identified_by"]
    assert identified["method"] == "oidc"
    assert (identified["issuer"], identified["sub"]) == (sso.issuer, sso.subjects["alice"])
    assert identified["auth_time"] >= signoff.signed_at.timestamp() - 30
    assert "identified by Test IdP" in page_text(client, deployment)


def test_a_provider_that_reuses_an_old_sign_in_signs_nothing(client, settings, sso):
    # The provider ignores prompt=login for this client, and Alice's sign-in there is an
    # hour old: only auth_time shows that nobody typed a password for this signature.
    settings.OIDC_RP_CLIENT_ID = PROMPT_IGNORING_CLIENT_ID
    team = TeamFactory(slug="payments", name="Payments")
    browser = ProviderBrowser()
    sso_login(client, username="alice", password="alice-idp-password", browser=browser)
    alice = team.members.get(username="alice")
    deployment = make_deployment(user=alice, team=team)
    complete_items(deployment)
    services.signoff_request(deployment=deployment, user=alice)
    sso.seed({"backdate_login": {"alice": 3600}})

    back = browser.authorize(
        start_signing(client, deployment), username="alice", password="alice-idp-password"
    )
    answer = client.get(app_path(back))

    assert browser.login_forms == 1  # no password was asked for the signature
    assert answer.status_code == 302
    assert not SignOff.objects.filter(deployment=deployment).exists()
    failed = AuditEvent.objects.get(action="signoff.signing_failed")
    assert failed.after["failure"] == "stale_authentication"
    assert "did not ask for your password again" in page_text(client, deployment)


def test_signing_in_at_the_provider_as_someone_else_signs_nothing(client, review):
    deployment, _alice, browser = review

    back = browser.authorize(
        start_signing(client, deployment), username="bob", password="bob-idp-password"
    )
    client.get(app_path(back))

    assert not SignOff.objects.filter(deployment=deployment).exists()
    failed = AuditEvent.objects.get(action="signoff.signing_failed")
    assert (failed.after["user"], failed.after["failure"]) == ("alice", "wrong_subject")
    assert "identified someone else, not you" in page_text(client, deployment)


def test_the_provider_answer_signs_once(client, review):
    deployment, _alice, browser = review
    back = browser.authorize(
        start_signing(client, deployment), username="alice", password="alice-idp-password"
    )
    client.get(app_path(back))

    # The same answer again (a reload, or a replay): its state was used up.
    client.get(app_path(back))

    assert SignOff.objects.filter(deployment=deployment).count() == 1
    assert "not started here, or was already used" in client.get("/").content.decode()


def test_a_change_while_at_the_provider_signs_nothing(client, review):
    deployment, _alice, browser = review
    authorize = start_signing(client, deployment)
    complete_items(deployment, "security", status="open")
    back = browser.authorize(authorize, username="alice", password="alice-idp-password")

    client.get(app_path(back))

    assert not SignOff.objects.filter(deployment=deployment).exists()
    assert "changed while you were at Test IdP" in page_text(client, deployment)


def test_a_local_login_cannot_use_the_provider_to_sign(client, sso, member):
    team = TeamFactory(slug="payments", name="Payments", members=[member])
    deployment = make_deployment(user=member, team=team)
    client.force_login(member)
    answer = client.post(
        reverse("oidc_sign_start", kwargs={"pk": deployment.pk, "role": "security"}),
        {"meaning": "approve"},
    )
    assert answer.status_code == 404


def test_a_holder_of_another_role_cannot_start_signing(client, review):
    deployment, _alice, _browser = review
    answer = client.post(
        reverse("oidc_sign_start", kwargs={"pk": deployment.pk, "role": "devops"}),
        {"meaning": "approve"},
    )
    assert answer.status_code == 403


def test_an_unreachable_provider_signs_nothing_and_says_so(client, review, settings, monkeypatch):
    deployment, _alice, _browser = review
    # The provider went down, and this web process started since: nothing discovered.
    dead = "http://127.0.0.1:9/o"
    monkeypatch.setattr(oidc, "_discovered", {})
    settings.OIDC_ISSUER = dead
    session = client.session
    session[oidc.SSO_SESSION] = {**session[oidc.SSO_SESSION], "issuer": dead}
    session.save()

    answer = start_signing_answer(client, deployment)

    assert answer.status_code == 302
    assert not SignOff.objects.filter(deployment=deployment).exists()
    assert "Test IdP cannot be reached just now" in page_text(client, deployment)
