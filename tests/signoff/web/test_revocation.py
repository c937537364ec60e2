"""Revoking a sign-off over HTTP: the reason, conflicts, foreign ids, what the page shows."""

import pytest

from signoff.signatures.models import Revocation
from tests.factories import make_deployment
from tests.signoff.web.conftest import HUGE, PLAIN_AND_HTMX, client_for, revoke_url, role_url, text
from tests.signoff_helpers import complete_items, sign

pytestmark = pytest.mark.django_db


# Revoking


@PLAIN_AND_HTMX
def test_revoking_without_a_reason_is_400_with_the_error_shown(signers, scene, headers):
    client = client_for(signers["security"])
    for data in ({}, {"reason": "   "}, {"reason": HUGE}):
        response = client.post(revoke_url(scene.deployment, scene.signoff), data, headers=headers)
        assert response.status_code == 400
        body = text(response)
        assert "Give a reason." in body or "at most 5000 characters" in body
        # The revoke form opens to show its error.
        assert '<details class="revoke" open>' in body
    assert not Revocation.objects.exists()


@PLAIN_AND_HTMX
def test_revoking_twice_is_409(signers, scene, headers):
    client = client_for(signers["security"])
    url = revoke_url(scene.deployment, scene.signoff)
    assert client.post(url, {"reason": "wrong build"}).status_code == 302
    response = client.post(url, {"reason": "again"}, headers=headers)
    assert response.status_code == 409
    assert "This sign-off was already revoked." in text(response)
    assert Revocation.objects.count() == 1


def test_revoking_a_replaced_sign_off_is_409(signers, scene):
    complete_items(scene.deployment, "security")
    sign(scene.deployment, signers["security"], "security")
    response = client_for(signers["security"]).post(
        revoke_url(scene.deployment, scene.signoff), {"reason": "old one"}
    )
    assert response.status_code == 409
    assert "only the latest can be revoked" in text(response)
    assert not Revocation.objects.exists()


def test_a_sign_off_of_another_deployment_is_404(signers, team, scene):
    other = make_deployment(user=signers["tech-lead"], team=team, service="ledger-api")
    response = client_for(signers["security"]).post(
        revoke_url(other, scene.signoff), {"reason": "x"}
    )
    assert response.status_code == 404
    assert not Revocation.objects.exists()


def test_revoked_sign_off_shows_who_revoked_it_and_why(signers, scene):
    client = client_for(signers["security"])
    client.post(revoke_url(scene.deployment, scene.signoff), {"reason": "signed the wrong build"})
    body = text(client.get(role_url(scene.deployment, "security")))
    assert "was revoked by Security Signer: signed the wrong build" in body
