"""The sign-off pages over HTTP: who may do what, plain and htmx, bad input, what pages show.
Helpers and fixtures shared by the modules of this folder.

The rules themselves are tested on the services (tests/signoff/lifecycle/); here each view
is held to the permission matrix (anonymous → login, other team → 404, team member without
the role → 403 on a change, role holder → done) and to its answers: a redirect or the
re-rendered `#panel` fragment on success, 400 with the errors shown on bad input, 409 when
the deployment moved on, never a 500.
"""

import datetime
from dataclasses import dataclass
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from readiness.checklists.models import (
    ChecklistItem,
    Deployment,
    DeploymentState,
    ItemStatus,
    PostDeploymentCheck,
)
from signoff.lifecycle import services
from signoff.signatures.models import SignOff, Waiver
from tests.factories import PASSWORD
from tests.signoff_helpers import approve_all, complete_items, sign, signers_for

HTMX = {"HX-Request": "true", "HX-Target": "panel"}
PLAIN_AND_HTMX = pytest.mark.parametrize(
    "headers", [pytest.param({}, id="plain"), pytest.param(HTMX, id="htmx")]
)
HUGE = "x" * 5001


# Helpers


def client_for(user) -> Client:
    """A client of its own per user: one shared client would carry one login to the next."""
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


def words(html: str) -> str:
    """What a person reads in `html`: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(unescape(strip_tags(html)).split())


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


def sign_data(meaning="approve", comment="", password=PASSWORD, user=None) -> dict:
    """The sign form's POST; with `user`, their username too, which the first signature of
    a session needs (21 CFR 11.200(a)(1))."""
    data = {"meaning": meaning, "comment": comment, "password": password}
    if user is not None:
        data["username"] = user.get_username()
    return data


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


def role_action(name: str, scene: Scene) -> tuple[str, dict]:
    """URL and accepted input of each role-gated POST, as the Security role page sends it."""
    deployment = scene.deployment
    return {
        "sign": (
            sign_url(deployment, "security"),
            sign_data("reject", "still no MFA", user=scene.signoff.user),
        ),
        "revoke": (revoke_url(deployment, scene.signoff), {"reason": "signed the wrong build"}),
        "waiver_grant": (waiver_url(deployment, scene.open_item), waiver_data()),
        "waiver_withdraw": (
            withdraw_url(deployment, scene.waiver),
            {"reason": "pen test booked", "role": "security"},
        ),
    }[name]


ROLE_ACTIONS = ["sign", "revoke", "waiver_grant", "waiver_withdraw"]
