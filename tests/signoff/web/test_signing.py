"""Signing for a role over HTTP: the signature shown, conditions, bad input, conflicts."""

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from readiness.audit.models import AuditEvent
from readiness.checklists.models import DeploymentState
from signoff.signatures.models import SignOff
from tests.signoff.web.conftest import (
    HTMX,
    HUGE,
    PLAIN_AND_HTMX,
    client_for,
    is_panel,
    role_url,
    sign_data,
    sign_url,
    text,
)
from tests.signoff_helpers import complete_items, give_role, sign

pytestmark = pytest.mark.django_db


# Signing


def test_signing_over_htmx_shows_the_signature_in_the_panel(signers, security_ready):
    client = client_for(signers["security"])
    response = client.post(
        sign_url(security_ready, "security"), sign_data(user=signers["security"]), headers=HTMX
    )
    assert response.status_code == 200
    body = text(response)
    signoff = SignOff.objects.get()
    assert f"{signoff.signed_at:%Y-%m-%d %H:%M} UTC" in body
    assert "Security Signer" in body and "<strong>approved</strong>" in body
    # The outcome is in the panel itself; it is not left queued for the next page.
    assert "Signed for Security: approved" in body
    assert list(client.get(reverse("dashboard")).context["messages"]) == []


def test_the_last_approval_over_htmx_updates_the_state_badge(signers, in_review):
    complete_items(in_review)
    for slug in ("tech-lead", "devops", "product"):
        sign(in_review, signers[slug], slug)
    response = client_for(signers["security"]).post(
        sign_url(in_review, "security"), sign_data(user=signers["security"]), headers=HTMX
    )
    assert response.status_code == 200
    badge = re.search(r'<span id="deployment-state"[^>]*>([^<]*)</span>', text(response))
    assert badge and badge.group(1) == "Approved"
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.APPROVED


def test_signing_a_conditional_approval_records_the_conditions(signers, security_ready):
    client = client_for(signers["security"])
    data = sign_data(
        "approve_with_conditions", "rotate the keys within a week", user=signers["security"]
    )
    response = client.post(sign_url(security_ready, "security"), data)
    assert response.status_code == 302
    signoff = SignOff.objects.get()
    assert signoff.meaning == "approve_with_conditions"
    assert signoff.comment == "rotate the keys within a week"
    page = text(client.get(role_url(security_ready, "security")))
    assert "rotate the keys within a week" in page


# Signing: bad input


def test_wrong_password_is_400_signs_nothing_and_says_so(signers, security_ready):
    client = client_for(signers["security"])
    for headers in ({}, HTMX):
        response = client.post(
            sign_url(security_ready, "security"),
            sign_data(password="not my password", user=signers["security"]),
            headers=headers,
        )
        assert response.status_code == 400
        assert "That is not your password. Nothing was signed." in text(response)
        assert is_panel(response) == bool(headers)
    assert not SignOff.objects.exists()
    assert not AuditEvent.objects.filter(action="signoff.signed").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({}, "Choose what your signature means.", id="nothing"),
        pytest.param(
            {"meaning": "approve", "comment": ""}, "Enter your password to sign.", id="no-password"
        ),
        pytest.param(
            sign_data("sign-everything"),
            "Select a valid choice. sign-everything is not one of the available choices.",
            id="unknown-meaning",
        ),
        pytest.param(
            sign_data("approve", HUGE),
            "Ensure this value has at most 5000 characters (it has 5001).",
            id="huge-comment",
        ),
        pytest.param(sign_data("reject"), "Say why you reject.", id="reject-without-reason"),
        pytest.param(
            sign_data("approve_with_conditions", "   "),
            "Write the conditions of your approval.",
            id="conditions-left-blank",
        ),
        pytest.param(
            sign_data(password="x" * 5000),
            "Ensure this value has at most 4096 characters (it has 5000).",
            id="huge-password",
        ),
    ],
)
@PLAIN_AND_HTMX
def test_bad_sign_input_is_400_with_the_error_shown(
    signers, security_ready, data, message, headers
):
    if data:  # the signer's username, so that the error shown is the one under test
        data = {**data, "username": signers["security"].username}
    response = client_for(signers["security"]).post(
        sign_url(security_ready, "security"), data, headers=headers
    )
    assert response.status_code == 400
    assert escape(message) in text(response)
    assert is_panel(response) == bool(headers)
    assert not SignOff.objects.exists()


@PLAIN_AND_HTMX
def test_approving_with_open_items_is_400_naming_the_blockers(signers, in_review, headers):
    response = client_for(signers["security"]).post(
        sign_url(in_review, "security"), sign_data(user=signers["security"]), headers=headers
    )
    assert response.status_code == 400
    body = text(response)
    assert "Security cannot approve while these items are open or failed" in body
    assert "MFA (open)" in body
    assert not SignOff.objects.exists()


def test_one_person_may_not_sign_for_a_second_role_over_http(signers, team, in_review):
    both = signers["security"]
    give_role(both, team, "devops")
    complete_items(in_review)
    sign(in_review, both, "security")
    client = client_for(both)
    page = text(client.get(role_url(in_review, "devops")))
    assert "You signed for Security on this deployment" in page
    assert sign_url(in_review, "devops") not in page
    response = client.post(sign_url(in_review, "devops"), sign_data(user=both))
    assert response.status_code == 400
    assert "one person may not sign for two roles" in text(response)
    assert SignOff.objects.count() == 1


# Signing: conflicts


@PLAIN_AND_HTMX
def test_approving_twice_is_409_naming_the_approval(signers, security_ready, headers):
    client = client_for(signers["security"])
    data = sign_data(user=signers["security"])
    assert client.post(sign_url(security_ready, "security"), data).status_code == 302
    # Within the session's signing continuity the password alone identifies.
    response = client.post(sign_url(security_ready, "security"), sign_data(), headers=headers)
    assert response.status_code == 409
    assert "Security already approved: Security Signer" in text(response)
    assert is_panel(response) == bool(headers)
    assert SignOff.objects.count() == 1


@PLAIN_AND_HTMX
def test_signing_before_sign_off_was_requested_is_409(signers, deployment, headers):
    complete_items(deployment)
    response = client_for(signers["security"]).post(
        sign_url(deployment, "security"), sign_data(user=signers["security"]), headers=headers
    )
    assert response.status_code == 409
    assert "Sign-off has not been requested yet for this deployment." in text(response)
    assert not SignOff.objects.exists()


def test_signing_a_closed_record_is_409(signers, deployed):
    response = client_for(signers["security"]).post(
        sign_url(deployed, "security"), sign_data("reject", "too late", user=signers["security"])
    )
    assert response.status_code == 409
    assert "The record is closed: the deployment is Deployed." in text(response)
    assert SignOff.objects.filter(deployment=deployed).count() == 4
