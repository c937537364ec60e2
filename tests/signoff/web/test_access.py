"""Who reaches the sign-off views: anonymous visitors, other teams, members without the
role; wrong methods, unknown roles and ids."""

from urllib.parse import quote

import pytest
from django.urls import reverse

from signoff.signatures.models import Revocation, SignOff, Waiver
from signoff.teams.models import Role
from tests.factories import UserFactory
from tests.signoff.web.conftest import (
    HTMX,
    PLAIN_AND_HTMX,
    ROLE_ACTIONS,
    Scene,
    client_for,
    revoke_url,
    role_action,
    role_url,
    sign_data,
    sign_url,
    text,
    waiver_data,
    waiver_url,
    withdraw_url,
)
from tests.signoff_helpers import give_role

pytestmark = pytest.mark.django_db


def login_url(path: str) -> str:
    return f"/login/?next={quote(path, safe='/')}"


def rows() -> tuple[int, int, int, int]:
    """Sign-offs, revocations, waivers and withdrawn waivers: what a refused POST must not add."""
    return (
        SignOff.objects.count(),
        Revocation.objects.count(),
        Waiver.objects.count(),
        Waiver.objects.filter(withdrawn_at__isnull=False).count(),
    )


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
        if headers:
            # htmx would swap the login page into the fragment: it is told to leave instead.
            assert response.status_code == 200, url
            assert response["HX-Redirect"] == login_url(url)
        else:
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
