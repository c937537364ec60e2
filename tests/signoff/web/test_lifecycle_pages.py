"""The lifecycle on the checklist page: requesting sign-off, marking deployed, post-checks."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.checklists.models import DeploymentState
from signoff.lifecycle import services
from tests.factories import make_deployment
from tests.signoff.web.conftest import (
    HUGE,
    PLAIN_AND_HTMX,
    client_for,
    detail_url,
    is_full_page,
    text,
)

pytestmark = pytest.mark.django_db

BAD_TIME = "Enter a date and a 24-hour UTC time as YYYY-MM-DD HH:MM."


@pytest.fixture
def in_review_other(member, team):
    """A second deployment of the team, in review."""
    other = make_deployment(user=member, team=team, service="ledger-api")
    services.signoff_request(deployment=other, user=member)
    return other


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


def test_the_deployment_date_is_typed_as_24_hour_utc_text(member, approved):
    """Not the browser's datetime-local control, which en-US browsers show with AM/PM."""
    page = text(client_for(member).get(detail_url(approved)))
    now = timezone.now()
    field = page[page.index('name="deployed_at"') - 200 : page.index('name="deployed_at"') + 600]
    assert 'type="text"' in field and "datetime-local" not in field
    assert f'value="{now:%Y-%m-%d} ' in field  # now, as YYYY-MM-DD HH:MM
    assert "24-hour clock, UTC: YYYY-MM-DD HH:MM" in page
    # As the pages print a time, with its zone, also parses; 21:30 is read as UTC.
    response = client_for(member).post(
        reverse("deployment_deployed", args=[approved.pk]),
        {"deployed_at": f"{now - datetime.timedelta(days=1):%Y-%m-%d} 21:30 UTC"},
    )
    assert response.status_code == 302
    approved.refresh_from_db()
    assert approved.deployed_at.tzinfo is not None
    assert approved.deployed_at.astimezone(datetime.UTC).strftime("%H:%M") == "21:30"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({}, "Enter when it was deployed.", id="missing"),
        pytest.param({"deployed_at": "yesterday"}, BAD_TIME, id="garbage"),
        pytest.param({"deployed_at": "2026-02-30 10:00"}, BAD_TIME, id="feb-30"),
        pytest.param({"deployed_at": "2026-02-03 2:05 PM"}, BAD_TIME, id="12-hour"),
        pytest.param(
            {"deployed_at": "0001-01-01T00:00"},
            "Enter a deployment date within the last ten years.",
            id="year-1",
        ),
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
