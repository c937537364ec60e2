"""Granting and withdrawing waivers over HTTP: bad input, conflicts, what the page shows."""

import re

import pytest

from signoff.signatures.models import Waiver
from signoff.teams.models import Role
from tests.factories import make_deployment
from tests.signoff.web.conftest import (
    HTMX,
    HUGE,
    PLAIN_AND_HTMX,
    client_for,
    in_days,
    is_panel,
    item_of,
    role_url,
    text,
    waiver_data,
    waiver_url,
    withdraw_url,
)

pytestmark = pytest.mark.django_db


# Waivers


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"reason": None}, "Say why the risk is accepted.", id="no-reason"),
        pytest.param({"reason": HUGE}, "at most 5000 characters", id="huge-reason"),
        pytest.param({"expires_on": None}, "Choose when the waiver expires.", id="no-expiry"),
        pytest.param({"expires_on": "2026-13-45"}, "Enter a date.", id="impossible-date"),
        pytest.param({"expires_on": "next tuesday"}, "Enter a date.", id="not-a-date"),
        pytest.param({"expires_on": in_days(-1)}, "The expiry must be in the future.", id="past"),
        pytest.param({"expires_on": in_days(400)}, "A waiver lasts at most 90 days.", id="far"),
        pytest.param({"expires_on": "99999-01-01"}, "Enter a date.", id="year-99999"),
    ],
)
@PLAIN_AND_HTMX
def test_bad_waiver_input_is_400_with_the_error_shown_on_the_item(
    signers, scene, changes, message, headers
):
    response = client_for(signers["security"]).post(
        waiver_url(scene.deployment, scene.open_item), waiver_data(**changes), headers=headers
    )
    assert response.status_code == 400
    body = text(response)
    assert message in body
    assert is_panel(response) == bool(headers)
    # The form that failed is the one that opens, with what was typed.
    opened = (
        rf'<li id="blocker-{scene.open_item.pk}">((?!</li>).)*<details class="waiver-form" open>'
    )
    assert re.search(opened, body, re.S)
    assert not Waiver.objects.filter(item=scene.open_item).exists()


@PLAIN_AND_HTMX
def test_waiving_a_done_item_is_400_with_the_reason_shown(signers, scene, headers):
    done = item_of(scene.deployment, "Encryption")
    response = client_for(signers["security"]).post(
        waiver_url(scene.deployment, done), waiver_data(), headers=headers
    )
    assert response.status_code == 400
    assert "“Encryption” is done: no waiver." in text(response)
    assert not Waiver.objects.filter(item=done).exists()


@PLAIN_AND_HTMX
def test_waiving_an_item_already_waived_is_409(signers, scene, headers):
    waived = item_of(scene.deployment, "Penetration Test")
    response = client_for(signers["security"]).post(
        waiver_url(scene.deployment, waived), waiver_data(), headers=headers
    )
    assert response.status_code == 409
    assert "“Penetration Test” already has a waiver in force." in text(response)
    assert Waiver.objects.filter(item=waived).count() == 1


def test_waiving_an_item_of_another_deployment_is_404(signers, team, scene):
    other = make_deployment(user=signers["tech-lead"], team=team, service="ledger-api")
    response = client_for(signers["security"]).post(
        waiver_url(scene.deployment, item_of(other, "MFA")), waiver_data()
    )
    assert response.status_code == 404
    assert Waiver.objects.count() == 1


@pytest.mark.parametrize("page_role", ["", "no-such-role", "legal", "../../admin"])
def test_a_waiver_posted_with_a_role_the_page_cannot_have_answers_with_the_owner_page(
    signers, scene, page_role
):
    Role.objects.create(name="Legal", slug="legal", position=9)
    client = client_for(signers["security"])
    response = client.post(
        waiver_url(scene.deployment, scene.open_item), waiver_data(role=page_role)
    )
    assert response.status_code == 302
    assert response["Location"] == role_url(scene.deployment, "security")
    response = client.post(
        waiver_url(scene.deployment, scene.open_item),
        waiver_data(role=page_role, reason=""),
        headers=HTMX,
    )
    assert response.status_code == 400
    assert "Security sign-off" in text(response)


def test_a_waived_item_shows_on_the_role_page_with_who_and_until_when(signers, scene):
    client = client_for(signers["security"])
    client.post(
        waiver_url(scene.deployment, scene.open_item),
        waiver_data(reason="hardware keys arrive Monday", expires_on=in_days(5)),
    )
    body = text(client.get(role_url(scene.deployment, "security")))
    waived = body.split("<h3>Waived</h3>", 1)[1]
    assert "<strong>MFA</strong>" in waived
    assert f"waived by Security Signer until {in_days(5)} 23:59 UTC: hardware keys" in waived


@PLAIN_AND_HTMX
def test_withdrawing_a_waiver_without_a_reason_is_400(signers, scene, headers):
    for data in ({"role": "security"}, {"reason": HUGE, "role": "security"}):
        response = client_for(signers["security"]).post(
            withdraw_url(scene.deployment, scene.waiver), data, headers=headers
        )
        assert response.status_code == 400
        assert "Give a reason to withdraw the waiver." in text(response)
        assert is_panel(response) == bool(headers)
    scene.waiver.refresh_from_db()
    assert scene.waiver.withdrawn_at is None


@PLAIN_AND_HTMX
def test_withdrawing_a_waiver_twice_is_409(signers, scene, headers):
    client = client_for(signers["security"])
    url = withdraw_url(scene.deployment, scene.waiver)
    assert client.post(url, {"reason": "booked", "role": "security"}).status_code == 302
    response = client.post(url, {"reason": "again", "role": "security"}, headers=headers)
    assert response.status_code == 409
    assert "This waiver was already withdrawn." in text(response)


@pytest.mark.parametrize("body", [{}, {"reason": ""}], ids=["empty", "no-reason"])
def test_a_member_without_the_role_is_refused_before_the_form_is_read(signers, scene, body):
    devops = client_for(signers["devops"])
    grant = devops.post(waiver_url(scene.deployment, scene.open_item), body)
    withdraw = devops.post(withdraw_url(scene.deployment, scene.waiver), body)
    assert (grant.status_code, withdraw.status_code) == (403, 403)
    assert not Waiver.objects.filter(item=scene.open_item).exists()
