"""What the overview pages show of sign-offs: dashboard badges, the checklist's sign-off
table, and My sign-offs."""

import re

import pytest
from django.urls import reverse

from readiness.checklists import services as readiness_services
from readiness.checklists.models import ItemStatus
from signoff.lifecycle import services
from tests.factories import make_deployment
from tests.signoff.web.conftest import client_for, detail_url, item_of, role_url, text, words
from tests.signoff_helpers import complete_items, sign

pytestmark = pytest.mark.django_db


# What the pages show


def test_dashboard_shows_a_badge_per_role_with_its_status(member, signers, security_ready):
    sign(security_ready, signers["security"], "security")
    body = text(client_for(member).get(reverse("dashboard")))
    badges = re.findall(
        r'<a class="signoff-badge signoff-(\w+)" href="([^"]+)"[^>]*>([^<]+)'
        r'<span class="visually-hidden">: ([^<]+)</span></a>',
        body,
    )
    assert [(status, name, label) for status, _, name, label in badges] == [
        ("missing", "Tech Lead", "not signed"),
        ("approve", "Security", "approved"),
        ("missing", "DevOps", "not signed"),
        ("missing", "Product", "not signed"),
    ]
    assert badges[1][1] == role_url(security_ready, "security")


def test_checklist_page_shows_the_final_sign_off_table_with_names_and_dates(
    member, signers, security_ready
):
    signoff = sign(security_ready, signers["security"], "security")
    body = text(client_for(member).get(detail_url(security_ready)))
    row = re.search(r'<tr id="signoff-row-security">(.*?)</tr>', body, re.S).group(1)
    assert '<td data-label="Name">Security Signer</td>' in row
    assert f"{signoff.signed_at:%Y-%m-%d %H:%M} UTC" in row
    assert "signoff-approve" in row and "approved" in row
    devops = re.search(r'<tr id="signoff-row-devops">(.*?)</tr>', body, re.S).group(1)
    assert "not signed" in devops and '<td data-label="Name">—</td>' in devops


def test_my_signoffs_lists_what_waits_for_my_role_and_not_what_i_signed(
    member, team, signers, security_ready
):
    security = signers["security"]
    signed = make_deployment(user=member, team=team, service="ledger-api")
    services.signoff_request(deployment=signed, user=member)
    complete_items(signed, "security")
    sign(signed, security, "security")
    make_deployment(user=member, team=team, service="draft-api")  # not requested yet
    response = client_for(security).get(reverse("my_signoffs"))
    assert response.status_code == 200
    waiting = [(d.service, s.role.slug) for d, s in response.context["waiting"]]
    assert waiting == [("payments-api", "security")]
    body = text(response)
    waiting_table = body.split('id="signed-title"', 1)[0]
    assert role_url(security_ready, "security") in waiting_table
    assert "ledger-api" not in waiting_table and "draft-api" not in waiting_table
    signed_table = body.split('id="signed-title"', 1)[1]
    assert "ledger-api 2.4.0 → production" in signed_table


def test_my_signoffs_lists_a_stale_sign_off_again_with_what_changed(signers, approved):
    mfa = item_of(approved, "MFA")
    readiness_services.item_update(
        item=mfa,
        user=signers["security"],
        expected_version=mfa.version,
        status=ItemStatus.FAILED,
        note="",
        evidence_url="",
        na_reason="",
        reason="MFA found off",
    )
    body = text(client_for(signers["security"]).get(reverse("my_signoffs")))
    assert 'signoff-badge signoff-stale">stale</span>' in body
    assert "MFA: done → failed — Security Signer, " in words(body)
    assert "“MFA found off”" in words(body)


def test_my_signoffs_for_someone_without_roles_says_nothing_waits(member, in_review):
    response = client_for(member).get(reverse("my_signoffs"))
    assert response.status_code == 200
    assert "Nothing waits for your signature." in text(response)
    assert "You have not signed anything yet." in text(response)
