"""The sign-off pages over HTTP: who may do what, plain and htmx, bad input, what pages show.

The rules themselves are tested on the services (test_signoff_services.py); here each view
is held to the permission matrix (anonymous → login, other team → 404, team member without
the role → 403 on a change, role holder → done) and to its answers: a redirect or the
re-rendered `#panel` fragment on success, 400 with the errors shown on bad input, 409 when
the deployment moved on, never a 500.
"""

import datetime
import re
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from readiness.audit.models import AuditEvent
from readiness.checklists import services as readiness_services
from readiness.checklists.models import (
    ChecklistItem,
    Deployment,
    DeploymentState,
    ItemStatus,
    PostDeploymentCheck,
)
from signoff.lifecycle import services
from signoff.signatures.models import Revocation, SignOff, Waiver
from signoff.teams.models import Role
from tests.factories import PASSWORD, TeamFactory, UserFactory, make_deployment
from tests.signoff_helpers import approve_all, complete_items, give_role, sign, signers_for

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "HX-Target": "panel"}
PLAIN_AND_HTMX = pytest.mark.parametrize(
    "headers", [pytest.param({}, id="plain"), pytest.param(HTMX, id="htmx")]
)
HUGE = "x" * 5001

# Ceilings measured on SQLite and PostgreSQL (the same statements, savepoints included);
# raise one only with a reason, never to make room for a query per item or deployment.
# The role page: session and user, the deployment, the role, the standings (roles, items,
# latest probe results, waivers in force, sign-offs), the viewer's roles, every waiver of
# the deployment, then the latest finished run (a member's item cards) or the role's
# members (anyone else). The htmx panel reads the same.
ROLE_PAGE_MAX = 13
# My sign-offs: session and user, the memberships, the deployments waiting, their standings
# (five reads for all of them at once) and the user's own signatures.
MY_SIGNOFFS_MAX = 11
# An htmx item save that turns two sign-offs stale: the save as in test_queries.py, then the
# re-evaluation under the deployment's lock (the standings, the stale events already
# recorded) and three more audit events (two stale, one state change), each reading the
# chain head and, on PostgreSQL, taking the advisory lock; the item card reads its waiver
# (37 there, 33 on SQLite); the newest CI evidence, for the digests and the item card (+2).
ITEM_SAVE_WITH_SIGNOFFS_MAX = 39


# Helpers


def client_for(user) -> Client:
    """A client of its own per user: one shared client would carry one login to the next."""
    client = Client()
    client.force_login(user)
    return client


def login_url(path: str) -> str:
    return f"/login/?next={quote(path, safe='/')}"


def text(response) -> str:
    return response.content.decode()


def is_full_page(response) -> bool:
    return b"<html" in response.content


def is_panel(response) -> bool:
    body = text(response)
    return not is_full_page(response) and body.lstrip().startswith('<section id="panel"')


def item_of(deployment, title: str) -> ChecklistItem:
    return ChecklistItem.objects.select_related("section").get(
        section__deployment=deployment, title=title
    )


def set_status(deployment, title: str, status: str) -> None:
    ChecklistItem.objects.filter(section__deployment=deployment, title=title).update(status=status)


def role_url(deployment, slug: str) -> str:
    return reverse("role_detail", args=[deployment.pk, slug])


def sign_url(deployment, slug: str) -> str:
    return reverse("role_sign", args=[deployment.pk, slug])


def revoke_url(deployment, signoff) -> str:
    return reverse("signoff_revoke", args=[deployment.pk, signoff.pk])


def waiver_url(deployment, item) -> str:
    return reverse("waiver_grant", args=[deployment.pk, item.pk])


def withdraw_url(deployment, waiver) -> str:
    return reverse("waiver_withdraw", args=[deployment.pk, waiver.pk])


def detail_url(deployment) -> str:
    return reverse("deployment_detail", args=[deployment.pk])


def in_days(days: int) -> str:
    return (timezone.now().date() + datetime.timedelta(days=days)).isoformat()


def sign_data(meaning="approve", comment="", password=PASSWORD) -> dict:
    return {"meaning": meaning, "comment": comment, "password": password}


def waiver_data(**changes) -> dict:
    data = {"reason": "accepted until the audit", "expires_on": in_days(7), "role": "security"}
    return {key: value for key, value in {**data, **changes}.items() if value is not None}


def item_form(item, **values) -> dict:
    """The checklist item form's POST data, prefixed `item<pk>-` like the page sends it."""
    fields = {
        "status": item.status,
        "note": item.note,
        "evidence_url": item.evidence_url,
        "na_reason": item.na_reason,
        "version": item.version,
        **values,
    }
    return {f"item{item.pk}-{name}": value for name, value in fields.items()}


def rows() -> tuple[int, int, int, int]:
    """Sign-offs, revocations, waivers and withdrawn waivers: what a refused POST must not add."""
    return (
        SignOff.objects.count(),
        Revocation.objects.count(),
        Waiver.objects.count(),
        Waiver.objects.filter(withdrawn_at__isnull=False).count(),
    )


def queries_of(request) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as context:
        response = request()
    return len(context.captured_queries), response


def checklist_markdown(name: str, *, security: int) -> str:
    """Security owns `security` items; Tech Lead (Testing) and DevOps (Reliability) one each."""
    lines = [f"# {name}", "", "A checklist built for a test.", "", "## Security", ""]
    lines += [f"- [ ] **Guard {n}:** Check guard {n}" for n in range(1, security + 1)]
    lines += ["", "## Reliability", "", "- [ ] **Spare:** Check the spare", ""]
    lines += ["## Testing", "", "- [ ] **Unit:** Run the unit tests", ""]
    return "\n".join(lines)


# Fixtures


@pytest.fixture
def signers(team):
    return signers_for(team)


@pytest.fixture
def in_review(deployment, signers):
    services.signoff_request(deployment=deployment, user=signers["tech-lead"])
    deployment.refresh_from_db()
    return deployment


@pytest.fixture
def security_ready(in_review):
    """Every Security item done: Security may approve."""
    complete_items(in_review, "security")
    return in_review


@dataclass
class Scene:
    deployment: Deployment
    signoff: SignOff
    waiver: Waiver
    open_item: ChecklistItem
    check: PostDeploymentCheck


@pytest.fixture
def scene(in_review, signers):
    """Something for each sign-off view to act on: Security rejected (MFA is open), the
    Penetration Test is waived, MFA has no waiver yet."""
    complete_items(in_review, "security")
    set_status(in_review, "MFA", ItemStatus.OPEN)
    set_status(in_review, "Penetration Test", ItemStatus.OPEN)
    security = signers["security"]
    waiver = services.waiver_grant(
        item=item_of(in_review, "Penetration Test"),
        user=security,
        reason="booked for next sprint",
        expires_at=timezone.now() + datetime.timedelta(days=7),
    )
    signoff = sign(in_review, security, "security", "reject", "MFA is still open")
    return Scene(
        deployment=in_review,
        signoff=signoff,
        waiver=waiver,
        open_item=item_of(in_review, "MFA"),
        check=in_review.post_deployment_checks.order_by("position").first(),
    )


@pytest.fixture
def approved(in_review, signers):
    approve_all(in_review, signers)
    assert in_review.state == DeploymentState.APPROVED
    return in_review


@pytest.fixture
def deployed(approved, signers):
    services.deployment_mark_deployed(
        deployment=approved, user=signers["devops"], deployed_at=timezone.now()
    )
    approved.refresh_from_db()
    return approved


@pytest.fixture
def in_review_other(member, team):
    """A second deployment of the team, in review."""
    other = make_deployment(user=member, team=team, service="ledger-api")
    services.signoff_request(deployment=other, user=member)
    return other


def role_action(name: str, scene: Scene) -> tuple[str, dict]:
    """URL and accepted input of each role-gated POST, as the Security role page sends it."""
    deployment = scene.deployment
    return {
        "sign": (sign_url(deployment, "security"), sign_data("reject", "still no MFA")),
        "revoke": (revoke_url(deployment, scene.signoff), {"reason": "signed the wrong build"}),
        "waiver_grant": (waiver_url(deployment, scene.open_item), waiver_data()),
        "waiver_withdraw": (
            withdraw_url(deployment, scene.waiver),
            {"reason": "pen test booked", "role": "security"},
        ),
    }[name]


ROLE_ACTIONS = ["sign", "revoke", "waiver_grant", "waiver_withdraw"]


def every_view(scene: Scene) -> list[tuple[str, str, dict]]:
    """(method, URL, input a member could send) of every sign-off view."""
    deployment = scene.deployment
    views = [
        ("get", role_url(deployment, "security"), {}),
        ("get", reverse("my_signoffs"), {}),
        ("post", reverse("signoff_request", args=[deployment.pk]), {}),
        (
            "post",
            reverse("deployment_deployed", args=[deployment.pk]),
            {"deployed_at": "2026-01-02T03:04"},
        ),
        (
            "post",
            reverse("post_check", args=[deployment.pk, scene.check.pk]),
            {"note": "dashboards green"},
        ),
    ]
    views += [("post", *role_action(name, scene)) for name in ROLE_ACTIONS]
    return views


# Anonymous visitors


@PLAIN_AND_HTMX
def test_anonymous_visitor_is_sent_to_login_from_every_signoff_view(client, scene, headers):
    before = rows(), scene.deployment.state
    for method, url, data in every_view(scene):
        response = getattr(client, method)(url, data, headers=headers)
        assert response.status_code == 302, url
        assert response["Location"] == login_url(url)
    scene.deployment.refresh_from_db()
    assert (rows(), scene.deployment.state) == before


# Members of other teams


@PLAIN_AND_HTMX
def test_member_of_another_team_gets_404_from_every_deployment_signoff_view(
    outsider, scene, headers
):
    # Holding the role in their own team does not reach into this one.
    give_role(outsider, outsider.teams.get(), "security")
    client = client_for(outsider)
    before = rows(), scene.deployment.state
    for method, url, data in every_view(scene):
        if url == reverse("my_signoffs"):
            continue
        response = getattr(client, method)(url, data, headers=headers)
        assert response.status_code == 404, url
    scene.deployment.refresh_from_db()
    assert (rows(), scene.deployment.state) == before


def test_member_of_another_team_does_not_see_its_deployments_in_my_signoffs(outsider, scene):
    give_role(outsider, outsider.teams.get(), "security")
    response = client_for(outsider).get(reverse("my_signoffs"))
    assert response.status_code == 200
    assert response.context["waiting"] == []
    assert "payments-api" not in text(response)


# Team members without the role


def test_team_member_without_the_role_reads_the_role_page_without_a_sign_form(member, scene):
    response = client_for(member).get(role_url(scene.deployment, "security"))
    assert response.status_code == 200
    body = text(response)
    assert "Only members holding Security in Payments sign here: Security Signer" in body
    assert sign_url(scene.deployment, "security") not in body
    assert revoke_url(scene.deployment, scene.signoff) not in body
    assert waiver_url(scene.deployment, scene.open_item) not in body
    assert withdraw_url(scene.deployment, scene.waiver) not in body
    # What Security approves is still there to read.
    assert 'id="role-item-' in body and "MFA" in body


@pytest.mark.parametrize("action", ROLE_ACTIONS)
@PLAIN_AND_HTMX
def test_team_member_without_the_role_is_refused_every_role_action(member, scene, action, headers):
    url, data = role_action(action, scene)
    before = rows()
    response = client_for(member).post(url, data, headers=headers)
    assert response.status_code == 403
    assert "Only members holding Security in Payments may do this." in text(response)
    assert rows() == before


def test_devops_member_cannot_sign_as_security(signers, security_ready):
    response = client_for(signers["devops"]).post(sign_url(security_ready, "security"), sign_data())
    assert response.status_code == 403
    assert not SignOff.objects.exists()


def test_product_member_cannot_waive_a_security_item_and_is_not_offered_to(signers, scene):
    product = client_for(signers["product"])
    page = text(product.get(role_url(scene.deployment, "product")))
    # Product's page lists every item, but only the owner role accepts an item's risk.
    assert 'id="blocker-' + str(scene.open_item.pk) + '"' in page
    assert waiver_url(scene.deployment, scene.open_item) not in page
    assert withdraw_url(scene.deployment, scene.waiver) not in page
    response = product.post(
        waiver_url(scene.deployment, scene.open_item), waiver_data(role="product")
    )
    assert response.status_code == 403
    assert not Waiver.objects.filter(item=scene.open_item).exists()


# The role holder


def test_role_holder_sees_the_sign_form_and_the_role_actions(signers, scene):
    body = text(client_for(signers["security"]).get(role_url(scene.deployment, "security")))
    assert f'action="{sign_url(scene.deployment, "security")}"' in body
    assert f'action="{revoke_url(scene.deployment, scene.signoff)}"' in body
    assert f'action="{waiver_url(scene.deployment, scene.open_item)}"' in body
    assert f'action="{withdraw_url(scene.deployment, scene.waiver)}"' in body


def did(action: str, scene: Scene) -> bool:
    """Whether the role action took effect."""
    if action == "sign":
        return SignOff.objects.filter(deployment=scene.deployment, sequence=2).exists()
    if action == "revoke":
        return Revocation.objects.filter(signoff=scene.signoff).exists()
    if action == "waiver_grant":
        return Waiver.objects.filter(item=scene.open_item).exists()
    scene.waiver.refresh_from_db()
    return scene.waiver.withdrawn_at is not None


@pytest.mark.parametrize("action", ROLE_ACTIONS)
def test_role_action_as_plain_post_redirects_to_the_role_page(signers, scene, action):
    client = client_for(signers["security"])
    url, data = role_action(action, scene)
    response = client.post(url, data)
    assert response.status_code == 302
    assert response["Location"] == role_url(scene.deployment, "security")
    assert did(action, scene)
    page = client.get(response["Location"])
    assert len(list(page.context["messages"])) == 1


@pytest.mark.parametrize("action", ROLE_ACTIONS)
def test_role_action_over_htmx_answers_with_the_panel_and_a_trigger(signers, scene, action):
    client = client_for(signers["security"])
    url, data = role_action(action, scene)
    response = client.post(url, data, headers=HTMX)
    assert response.status_code == 200
    assert is_panel(response)
    assert response["HX-Trigger"] == "signoff-changed"
    assert did(action, scene)
    # The role tabs and the state badge outside the panel are swapped out of band.
    assert 'id="role-tabs" hx-swap-oob="true"' in text(response)
    assert 'id="deployment-state" hx-swap-oob="true"' in text(response)


def test_signing_over_htmx_shows_the_signature_in_the_panel(signers, security_ready):
    client = client_for(signers["security"])
    response = client.post(sign_url(security_ready, "security"), sign_data(), headers=HTMX)
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
        sign_url(in_review, "security"), sign_data(), headers=HTMX
    )
    assert response.status_code == 200
    badge = re.search(r'<span id="deployment-state"[^>]*>([^<]*)</span>', text(response))
    assert badge and badge.group(1) == "Approved"
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.APPROVED


def test_signing_a_conditional_approval_records_the_conditions(signers, security_ready):
    client = client_for(signers["security"])
    data = sign_data("approve_with_conditions", "rotate the keys within a week")
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
            sign_data(password="not my password"),
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
        sign_url(in_review, "security"), sign_data(), headers=headers
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
    response = client.post(sign_url(in_review, "devops"), sign_data())
    assert response.status_code == 400
    assert "one person may not sign for two roles" in text(response)
    assert SignOff.objects.count() == 1


# Signing: conflicts


@PLAIN_AND_HTMX
def test_approving_twice_is_409_naming_the_approval(signers, security_ready, headers):
    client = client_for(signers["security"])
    assert client.post(sign_url(security_ready, "security"), sign_data()).status_code == 302
    response = client.post(sign_url(security_ready, "security"), sign_data(), headers=headers)
    assert response.status_code == 409
    assert "Security already approved: Security Signer" in text(response)
    assert is_panel(response) == bool(headers)
    assert SignOff.objects.count() == 1


@PLAIN_AND_HTMX
def test_signing_before_sign_off_was_requested_is_409(signers, deployment, headers):
    complete_items(deployment)
    response = client_for(signers["security"]).post(
        sign_url(deployment, "security"), sign_data(), headers=headers
    )
    assert response.status_code == 409
    assert "Sign-off has not been requested yet for this deployment." in text(response)
    assert not SignOff.objects.exists()


def test_signing_a_closed_record_is_409(signers, deployed):
    response = client_for(signers["security"]).post(
        sign_url(deployed, "security"), sign_data("reject", "too late")
    )
    assert response.status_code == 409
    assert "The record is closed: the deployment is Deployed." in text(response)
    assert SignOff.objects.filter(deployment=deployed).count() == 4


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


# The lifecycle on the checklist page


@PLAIN_AND_HTMX
def test_any_team_member_requests_sign_off(member, deployment, headers):
    response = client_for(member).post(
        reverse("signoff_request", args=[deployment.pk]), headers=headers
    )
    expected = detail_url(deployment) + "#signoff"
    if headers:
        assert response.status_code == 204 and response["HX-Location"] == expected
    else:
        assert response.status_code == 302 and response["Location"] == expected
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.IN_REVIEW


@PLAIN_AND_HTMX
def test_requesting_sign_off_twice_is_409_with_the_reason_shown(member, in_review, headers):
    response = client_for(member).post(
        reverse("signoff_request", args=[in_review.pk]), headers=headers
    )
    assert response.status_code == 409
    assert "Sign-off was already requested: the deployment is In review." in text(response)
    assert is_full_page(response) != bool(headers)
    assert AuditEvent.objects.filter(action="deployment.state_changed").count() == 1


@PLAIN_AND_HTMX
def test_marking_an_approved_deployment_deployed_records_the_date(member, approved, headers):
    an_hour_ago = (timezone.now() - datetime.timedelta(hours=1)).replace(second=0, microsecond=0)
    response = client_for(member).post(
        reverse("deployment_deployed", args=[approved.pk]),
        {"deployed_at": f"{an_hour_ago:%Y-%m-%dT%H:%M}"},
        headers=headers,
    )
    assert response.status_code == (204 if headers else 302)
    approved.refresh_from_db()
    assert approved.state == DeploymentState.DEPLOYED
    assert approved.deployed_at == an_hour_ago
    page = text(client_for(member).get(detail_url(approved)))
    assert "<strong>Deployment Date:</strong>" in page
    assert f"{an_hour_ago:%Y-%m-%d %H:%M} UTC" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({}, "Enter when it was deployed.", id="missing"),
        pytest.param({"deployed_at": "yesterday"}, "Enter a date and time.", id="garbage"),
        pytest.param({"deployed_at": "2026-02-30T10:00"}, "Enter a date and time.", id="feb-30"),
        pytest.param(
            {"deployed_at": "2999-01-01T00:00"},
            "The deployment date cannot be in the future.",
            id="future",
        ),
    ],
)
@PLAIN_AND_HTMX
def test_bad_deployment_date_is_400_and_leaves_the_deployment_approved(
    member, approved, data, message, headers
):
    response = client_for(member).post(
        reverse("deployment_deployed", args=[approved.pk]), data, headers=headers
    )
    assert response.status_code == 400
    body = text(response)
    assert f'<div class="error-box" role="alert">{message}</div>' in body
    assert is_full_page(response) != bool(headers)
    approved.refresh_from_db()
    assert approved.state == DeploymentState.APPROVED and approved.deployed_at is None


@PLAIN_AND_HTMX
def test_marking_a_deployment_in_review_deployed_is_409(member, in_review, headers):
    response = client_for(member).post(
        reverse("deployment_deployed", args=[in_review.pk]),
        {"deployed_at": "2026-01-02T03:04"},
        headers=headers,
    )
    assert response.status_code == 409
    assert "Only an approved deployment can be marked deployed" in text(response)
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.IN_REVIEW


@PLAIN_AND_HTMX
def test_post_deployment_check_is_recorded_with_the_note(member, deployed, headers):
    check = deployed.post_deployment_checks.order_by("position").first()
    response = client_for(member).post(
        reverse("post_check", args=[deployed.pk, check.pk]),
        {"note": "no 5xx in an hour"},
        headers=headers,
    )
    assert response.status_code == (204 if headers else 302)
    check.refresh_from_db()
    assert check.checked and check.checked_by == member and check.note == "no 5xx in an hour"
    page = text(client_for(member).get(detail_url(deployed)))
    assert "Lee Tran" in page and "no 5xx in an hour" in page


@PLAIN_AND_HTMX
def test_bad_post_check_note_is_400(member, deployed, headers):
    check = deployed.post_deployment_checks.order_by("position").first()
    for data in ({}, {"note": "  "}, {"note": HUGE}):
        response = client_for(member).post(
            reverse("post_check", args=[deployed.pk, check.pk]), data, headers=headers
        )
        assert response.status_code == 400
        assert "Say what you checked and what you saw." in text(response)
    check.refresh_from_db()
    assert not check.checked


def test_post_check_twice_or_before_deployment_is_409(member, deployed, in_review_other):
    client = client_for(member)
    check = deployed.post_deployment_checks.order_by("position").first()
    url = reverse("post_check", args=[deployed.pk, check.pk])
    assert client.post(url, {"note": "fine"}).status_code == 302
    response = client.post(url, {"note": "again"})
    assert response.status_code == 409
    assert "was already checked" in text(response)
    early = in_review_other.post_deployment_checks.first()
    response = client.post(
        reverse("post_check", args=[in_review_other.pk, early.pk]), {"note": "too early"}
    )
    assert response.status_code == 409
    assert "Post-deployment checks are recorded after the deployment is marked deployed" in text(
        response
    )


def test_a_post_check_of_another_deployment_is_404(member, deployed, in_review_other):
    foreign = in_review_other.post_deployment_checks.first()
    response = client_for(member).post(
        reverse("post_check", args=[deployed.pk, foreign.pk]), {"note": "x"}
    )
    assert response.status_code == 404


# Methods, unknown roles and ids


def test_post_only_urls_refuse_get_with_405(signers, scene):
    client = client_for(signers["security"])
    for method, url, _ in every_view(scene):
        if method == "post":
            assert client.get(url).status_code == 405, url
    assert client.post(role_url(scene.deployment, "security")).status_code == 405
    assert client.post(reverse("my_signoffs")).status_code == 405


def test_an_unknown_role_slug_is_404(signers, in_review):
    client = client_for(signers["security"])
    assert client.get(role_url(in_review, "janitor")).status_code == 404
    response = client.post(sign_url(in_review, "janitor"), sign_data())
    assert response.status_code == 404


def test_a_role_the_template_does_not_sign_for_is_404(team, signers, security_ready):
    Role.objects.create(name="Legal", slug="legal", position=9)
    lawyer = UserFactory(username="lawyer", first_name="Lou", last_name="Law")
    give_role(lawyer, team, "legal")
    client = client_for(lawyer)
    assert client.get(role_url(security_ready, "legal")).status_code == 404
    assert client.get(role_url(security_ready, "legal"), headers=HTMX).status_code == 404
    for data in (sign_data(), {}):
        response = client.post(sign_url(security_ready, "legal"), data)
        assert response.status_code == 404
    assert not SignOff.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/deployments/{pk}/signoffs/99999999999999999999/revoke/",
        "/deployments/{pk}/waivers/99999999999999999999/withdraw/",
        "/deployments/{pk}/items/99999999999999999999/waivers/",
        "/deployments/{pk}/post-checks/99999999999999999999/",
        "/deployments/99999999999999999999/request-signoff/",
    ],
)
def test_unknown_or_out_of_range_ids_are_404(signers, in_review, path):
    response = client_for(signers["security"]).post(path.format(pk=in_review.pk), {"reason": "x"})
    assert response.status_code == 404


def test_role_page_fragment_for_the_panel_target_is_only_the_panel(signers, scene):
    client = client_for(signers["security"])
    response = client.get(role_url(scene.deployment, "security"), headers=HTMX)
    assert response.status_code == 200
    assert is_panel(response)
    assert "What Security approves" not in text(response)
    full = client.get(role_url(scene.deployment, "security"))
    assert is_full_page(full) and "What Security approves" in text(full)


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
    assert "<td>Security Signer</td>" in row
    assert f"{signoff.signed_at:%Y-%m-%d %H:%M} UTC" in row
    assert "signoff-approve" in row and "approved" in row
    devops = re.search(r'<tr id="signoff-row-devops">(.*?)</tr>', body, re.S).group(1)
    assert "not signed" in devops and "<td>—</td>" in devops


def test_an_item_change_makes_the_sign_off_stale_on_every_page(member, signers, approved):
    mfa = item_of(approved, "MFA")
    member_client = client_for(member)
    response = member_client.post(
        reverse("item_update", args=[approved.pk, mfa.pk]),
        item_form(mfa, status=ItemStatus.FAILED, note="ci-admin has no MFA"),
    )
    assert response.status_code == 302
    detail = text(member_client.get(detail_url(approved)))
    row = re.search(r'<tr id="signoff-row-security">(.*?)</tr>', detail, re.S).group(1)
    assert "signoff-stale" in row
    assert "changed since signing: MFA: done → failed" in row
    assert '<span class="state state-in_review">In review</span>' in detail

    own = text(client_for(signers["security"]).get(role_url(approved, "security")))
    assert "Stale — changed since you signed:" in own
    assert "<li>MFA: done → failed</li>" in own
    other = text(member_client.get(role_url(approved, "security")))
    assert "Stale — changed since Security Signer signed:" in other
    # DevOps owns nothing that changed.
    assert "Stale —" not in text(member_client.get(role_url(approved, "devops")))


def test_an_htmx_item_save_asks_role_panels_to_reload(signers, approved):
    mfa = item_of(approved, "MFA")
    client = client_for(signers["security"])
    response = client.post(
        reverse("item_update", args=[approved.pk, mfa.pk]),
        item_form(mfa, status=ItemStatus.FAILED),
        headers={"HX-Request": "true", "HX-Target": f"item-{mfa.pk}"},
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "checklist-changed"
    panel = client.get(role_url(approved, "security"), headers=HTMX)
    assert is_panel(panel) and "<li>MFA: done → failed</li>" in text(panel)


def test_role_members_edit_their_items_on_the_role_page(member, signers, in_review):
    mfa = item_of(in_review, "MFA")
    update = reverse("item_update", args=[in_review.pk, mfa.pk])
    own = text(client_for(signers["security"]).get(role_url(in_review, "security")))
    assert f'action="{update}"' in own
    assert own.count('<article class="item') == 14
    others = text(client_for(member).get(role_url(in_review, "security")))
    assert f'action="{update}"' not in others
    assert '<article class="item' not in others
    assert "Members holding Security edit these items here" in others


def test_items_are_not_editable_on_the_role_page_once_deployed(signers, deployed):
    body = text(client_for(signers["security"]).get(role_url(deployed, "security")))
    assert "/items/" not in re.sub(r'href="[^"]*"', "", body)
    assert "The record is closed: this deployment is deployed." in body


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
        reason="",
    )
    body = text(client_for(signers["security"]).get(reverse("my_signoffs")))
    assert 'signoff-badge signoff-stale">stale</span>' in body
    assert "MFA: done → failed" in body


def test_my_signoffs_for_someone_without_roles_says_nothing_waits(member, in_review):
    response = client_for(member).get(reverse("my_signoffs"))
    assert response.status_code == 200
    assert "Nothing waits for your signature." in text(response)
    assert "You have not signed anything yet." in text(response)


# Query counts


@pytest.fixture
def small_template():
    source = checklist_markdown("Small", security=3)
    return readiness_services.template_import(source=source).template


@pytest.fixture
def small_and_large(member, team, signers, small_template):
    """A 5-item deployment (3 for Security) and a 56-item one (14 for Security), each with
    a Security approval, a waiver and some probe-free history."""
    small = make_deployment(user=member, team=team, template=small_template, service="small")
    large = make_deployment(user=member, team=team, service="large")
    for deployment in (small, large):
        services.signoff_request(deployment=deployment, user=member)
        complete_items(deployment)
        item = ChecklistItem.objects.filter(
            section__deployment=deployment, owner_role__slug="security"
        ).first()
        ChecklistItem.objects.filter(pk=item.pk).update(status=ItemStatus.OPEN)
        services.waiver_grant(
            item=item,
            user=signers["security"],
            reason="accepted",
            expires_at=timezone.now() + datetime.timedelta(days=3),
        )
        sign(deployment, signers["security"], "security")
    return small, large


@pytest.mark.parametrize("viewer", ["security", "devops"])
def test_role_page_queries_do_not_grow_with_the_number_of_items(
    signers, small_and_large, viewer, django_assert_max_num_queries
):
    small, large = small_and_large
    client = client_for(signers[viewer])

    def page(deployment, **headers):
        return lambda: client.get(role_url(deployment, "security"), headers=headers)

    page(small)()  # warm the session
    small_count, small_response = queries_of(page(small))
    large_count, large_response = queries_of(page(large))
    assert small_response.status_code == large_response.status_code == 200
    assert len(small_response.context["standing"].items) == 3
    assert len(large_response.context["standing"].items) == 14
    assert small_count == large_count
    with django_assert_max_num_queries(ROLE_PAGE_MAX):
        page(large)()
    small_count, _ = queries_of(page(small, **HTMX))
    large_count, fragment = queries_of(page(large, **HTMX))
    assert is_panel(fragment)
    assert small_count == large_count <= ROLE_PAGE_MAX


def test_my_signoffs_queries_do_not_grow_with_the_number_of_deployments(
    team, member, signers, django_assert_max_num_queries
):
    few_user = UserFactory(username="few")
    many_user = UserFactory(username="many")
    few_team = TeamFactory(name="Few", slug="few")
    many_teams = [TeamFactory(name=f"Many {n}", slug=f"many-{n}") for n in range(3)]
    give_role(few_user, few_team, "security")
    for many_team in many_teams:
        give_role(many_user, many_team, "security")
        give_role(many_user, many_team, "devops")
    cases = [(few_user, [few_team], 2), (many_user, many_teams, 15)]
    for user, teams, count in cases:
        for number in range(count):
            deployment = make_deployment(
                user=user, team=teams[number % len(teams)], service=f"{user.username}-{number}"
            )
            services.signoff_request(deployment=deployment, user=user)
            if number % 2:
                complete_items(deployment, "security")
                signoff = sign(deployment, user, "security")
                if number % 3 == 0:
                    services.signoff_revoke(signoff=signoff, user=user, reason="again")

    def page(user):
        client = client_for(user)
        client.get(reverse("my_signoffs"))
        return lambda: client.get(reverse("my_signoffs"))

    few_count, few_response = queries_of(page(few_user))
    many_count, many_response = queries_of(page(many_user))
    # Few: the unsigned one. Many: DevOps on all 15, Security on the 8 unsigned and the 2
    # revoked.
    assert len(few_response.context["waiting"]) == 1
    assert len(many_response.context["waiting"]) == 25
    assert len(many_response.context["signed"]) == 7
    assert few_count == many_count
    request = page(many_user)
    with django_assert_max_num_queries(MY_SIGNOFFS_MAX):
        request()


def test_htmx_item_save_with_sign_offs_does_not_grow_with_the_checklist(
    member, signers, small_and_large, django_assert_max_num_queries
):
    small, large = small_and_large
    for deployment in (small, large):
        approve_all(deployment, signers)
        assert deployment.state == DeploymentState.APPROVED
    client = client_for(member)
    client.get(reverse("dashboard"))

    def save_a_security_item(deployment, status):
        item = (
            ChecklistItem.objects.filter(
                section__deployment=deployment, owner_role__slug="security"
            )
            .order_by("section__position", "position")
            .last()
        )
        url = reverse("item_update", args=[deployment.pk, item.pk])
        data = item_form(item, status=status, note=f"now {status}")
        return lambda: client.post(url, data, headers={"HX-Request": "true"})

    # The change turns Security and Product stale and takes the deployment back to review.
    small_count, small_response = queries_of(save_a_security_item(small, ItemStatus.FAILED))
    request = save_a_security_item(large, ItemStatus.FAILED)
    with django_assert_max_num_queries(ITEM_SAVE_WITH_SIGNOFFS_MAX) as captured:
        large_response = request()
    assert small_response.status_code == large_response.status_code == 200
    assert small_count == len(captured)
    for deployment in (small, large):
        deployment.refresh_from_db()
        assert deployment.state == DeploymentState.IN_REVIEW
    stale = AuditEvent.objects.filter(action="signoff.stale")
    assert sorted(stale.values_list("after__changes__0", flat=True)) == [
        "Guard 3: done → failed",
        "Guard 3: done → failed",
        "Privacy: done → failed",
        "Privacy: done → failed",
    ]
