"""The AWS target page: accounts added, changed and removed; the Organizations source and
its accounts picked (against moto's organization); each account's policies."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from readiness.checklists import targets
from readiness.checklists.models import AwsAccount, AwsOrganizationSource, Deployment
from readiness.checklists.targets import LISTING_TASK
from readiness.checklists.tasks import aws_organization_list
from readiness.outbox.models import OutboxMessage
from tests.factories import set_aws_target

WORKLOAD = "123456789012"
PATTERN = "arn:aws:iam::{account}:role/ReadinessProbe"
LISTING = "Listing accounts…"


def polls(html: str) -> bool:
    return 'hx-trigger="every' in html


def work() -> str:
    """What a worker does with the newest listing the outbox sends; the state it wrote."""
    message = OutboxMessage.objects.filter(task_name=LISTING_TASK).latest("id")
    return aws_organization_list.apply(args=message.args, throw=True).result


def page_of(deployment) -> str:
    return reverse("deployment_aws", args=[deployment.pk])


@pytest.mark.django_db
def test_accounts_are_added_then_removed_from_the_page(member_client, deployment):
    for account_id, name in ((WORKLOAD, "workload"), ("210987654321", "logging")):
        response = member_client.post(
            page_of(deployment),
            {
                "aws_account_id": account_id,
                "aws_name": name,
                "aws_regions": "eu-west-1",
                "aws_role_arn": f"arn:aws:iam::{account_id}:role/ReadinessProbe",
                "aws_external_id": f"ext-{name}",
            },
        )
        assert response.status_code == 302
    page = member_client.get(page_of(deployment)).content.decode()
    assert "workload" in page and "logging" in page
    # Each account's own trust policy block and its change link.
    assert 'id="policies-123456789012"' in page and 'id="policies-210987654321"' in page
    assert "?account=210987654321#account-form" in page
    edit = member_client.get(page_of(deployment), {"account": "210987654321"})
    assert edit.context["form"].initial["aws_external_id"] == "ext-logging"
    remove = reverse("deployment_aws_account_remove", args=[deployment.pk, "210987654321"])
    assert member_client.post(remove).status_code == 302
    assert list(AwsAccount.objects.values_list("account_id", flat=True)) == [WORKLOAD]
    assert member_client.post(remove).status_code == 404


@pytest.mark.django_db
def test_a_second_account_without_a_role_is_refused_with_the_reason(member_client, deployment):
    set_aws_target(deployment)
    response = member_client.post(
        page_of(deployment), {"aws_account_id": "210987654321", "aws_regions": "us-east-1"}
    )
    assert response.status_code == 400
    assert "Only one account can be read with the worker" in response.content.decode()
    assert AwsAccount.objects.count() == 1


@pytest.mark.django_db
def test_a_closed_records_target_is_shown_but_refuses_changes(member_client, deployment):
    set_aws_target(deployment)
    Deployment.objects.filter(pk=deployment.pk).update(state="verified")
    response = member_client.post(
        page_of(deployment), {"aws_account_id": WORKLOAD, "aws_regions": "eu-west-1"}
    )
    assert response.status_code == 409
    assert "record is closed" in response.content.decode()
    remove = reverse("deployment_aws_account_remove", args=[deployment.pk, WORKLOAD])
    assert member_client.post(remove).status_code == 409
    assert AwsAccount.objects.get().regions == ["us-east-1"]


@pytest.mark.django_db
def test_the_organizations_source_lists_accounts_to_pick(aws, member_client, deployment):
    org = aws.client("organizations")
    org.create_organization(FeatureSet="ALL")
    ids = {
        name: org.create_account(Email=f"{name}@example.com", AccountName=name)[
            "CreateAccountStatus"
        ]["AccountId"]
        for name in ("workload", "logging")
    }
    aws.client("iam").create_role(
        RoleName="OrganizationReader",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    saved = member_client.post(
        reverse("deployment_aws_organization", args=[deployment.pk]),
        {
            "org_role_arn": f"arn:aws:iam::{WORKLOAD}:role/OrganizationReader",
            "org_member_role_pattern": PATTERN,
            "org_external_id": "org-ext",
        },
    )
    listing = reverse("deployment_aws_organization_accounts", args=[deployment.pk])
    assert saved.status_code == 302 and saved["Location"] == listing
    # The request only asked: the page says a worker is listing, and htmx polls the panel.
    page = member_client.get(listing)
    assert page.status_code == 200
    html = page.content.decode()
    assert LISTING in html and polls(html)
    assert 'id="organization-accounts"' not in html
    early = member_client.post(listing, {"accounts": [ids["logging"]], "pick_regions": "eu-west-1"})
    assert early.status_code == 409 and "not listed yet" in early.content.decode()
    panel = member_client.get(listing, headers={"HX-Request": "true"})
    assert panel.status_code == 200 and panel["Cache-Control"] == "no-store"
    fragment = panel.content.decode()
    assert fragment.lstrip().startswith('<div id="organization-listing"')
    assert LISTING in fragment and polls(fragment) and "<html" not in fragment
    assert work() == "done"
    # The next poll brings the accounts to pick, and stops polling.
    fragment = member_client.get(listing, headers={"HX-Request": "true"}).content.decode()
    assert LISTING not in fragment and not polls(fragment)
    assert f"workload ({ids['workload']})" in fragment and f"logging ({ids['logging']})" in fragment
    html = member_client.get(listing).content.decode()
    assert f"workload ({ids['workload']})" in html and f"logging ({ids['logging']})" in html
    # An account the organization does not list is not a choice.
    refused = member_client.post(
        listing, {"accounts": ["999999999999"], "pick_regions": "eu-west-1"}
    )
    assert refused.status_code == 400 and not AwsAccount.objects.exists()
    added = member_client.post(
        listing, {"accounts": [ids["logging"]], "pick_regions": "eu-west-1, us-east-1"}
    )
    assert added.status_code == 302
    account = AwsAccount.objects.get()
    assert (account.account_id, account.name, account.regions, account.external_id) == (
        ids["logging"],
        "logging",
        ["eu-west-1", "us-east-1"],
        "org-ext",
    )
    assert account.role_arn == f"arn:aws:iam::{ids['logging']}:role/ReadinessProbe"


@pytest.mark.django_db
def test_an_organization_that_refuses_shows_why_and_offers_to_list_again(
    aws, member_client, deployment
):
    member_client.post(
        reverse("deployment_aws_organization", args=[deployment.pk]),
        {
            "org_role_arn": f"arn:aws:iam::{WORKLOAD}:role/Missing",
            "org_member_role_pattern": PATTERN,
        },
    )
    assert work() == "failed"
    listing = reverse("deployment_aws_organization_accounts", args=[deployment.pk])
    fragment = member_client.get(listing, headers={"HX-Request": "true"}).content.decode()
    assert "Could not list the organization's accounts." in fragment
    assert "AccessDenied" in fragment and "trust policy" in fragment and not polls(fragment)
    assert "List accounts again" in fragment
    # Listing again (htmx): a new attempt, polled again; the old attempt's worker is too late.
    again = member_client.post(
        reverse("deployment_aws_organization_list", args=[deployment.pk]),
        headers={"HX-Request": "true"},
    )
    assert again.status_code == 200 and LISTING in again.content.decode()
    assert polls(again.content.decode())
    first, second = OutboxMessage.objects.filter(task_name=LISTING_TASK).order_by("id")
    assert aws_organization_list.apply(args=first.args, throw=True).result == ""
    assert aws_organization_list.apply(args=second.args, throw=True).result == "failed"


@pytest.mark.django_db
def test_a_listing_no_worker_took_is_reported_failed_after_the_timeout(
    member_client, deployment, member
):
    targets.aws_organization_save(
        deployment=deployment,
        user=member,
        role_arn=f"arn:aws:iam::{WORKLOAD}:role/OrganizationReader",
        member_role_pattern=PATTERN,
        list_accounts=True,
    )
    listing = reverse("deployment_aws_organization_accounts", args=[deployment.pk])
    assert polls(member_client.get(listing, headers={"HX-Request": "true"}).content.decode())
    AwsOrganizationSource.objects.update(
        listing_requested_at=timezone.now() - targets.LISTING_TIMEOUT - timedelta(seconds=1)
    )
    fragment = member_client.get(listing, headers={"HX-Request": "true"}).content.decode()
    assert "No worker listed the accounts" in fragment and not polls(fragment)


@pytest.mark.django_db
def test_the_listing_panel_reads_a_bounded_number_of_queries(
    member_client, deployment, member, django_assert_max_num_queries
):
    targets.aws_organization_save(
        deployment=deployment,
        user=member,
        role_arn=f"arn:aws:iam::{WORKLOAD}:role/OrganizationReader",
        member_role_pattern=PATTERN,
    )
    AwsOrganizationSource.objects.update(
        listing_state="done",
        listed_accounts=[
            {"account_id": f"{n:012d}", "name": f"a{n}", "email": "", "status": "ACTIVE"}
            for n in range(200)
        ],
    )
    listing = reverse("deployment_aws_organization_accounts", args=[deployment.pk])
    with django_assert_max_num_queries(8):
        panel = member_client.get(listing, headers={"HX-Request": "true"})
    assert panel.content.decode().count('type="checkbox"') == 200


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"org_role_arn": "nope", "org_member_role_pattern": PATTERN}, "org_role_arn"),
        (
            {
                "org_role_arn": f"arn:aws:iam::{WORKLOAD}:role/R",
                "org_member_role_pattern": "arn:aws:iam::123456789012:role/Fixed",
            },
            "org_member_role_pattern",
        ),
        (
            {
                "org_role_arn": f"arn:aws:iam::{WORKLOAD}:role/R",
                "org_member_role_pattern": PATTERN,
                "org_parent_id": "not-an-ou",
            },
            "org_parent_id",
        ),
    ],
)
@pytest.mark.django_db
def test_a_bad_organizations_source_is_a_400_on_its_field(member_client, deployment, data, field):
    response = member_client.post(
        reverse("deployment_aws_organization", args=[deployment.pk]), data
    )
    assert response.status_code == 400
    assert field in response.context["organization_form"].errors
