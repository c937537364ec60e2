"""The AWS target page: accounts added, changed and removed; the Organizations source and
its accounts picked (against moto's organization); each account's policies."""

import json

import pytest
from django.urls import reverse

from readiness.checklists.models import AwsAccount, Deployment
from tests.factories import set_aws_target

WORKLOAD = "123456789012"
PATTERN = "arn:aws:iam::{account}:role/ReadinessProbe"


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
    page = member_client.get(listing)
    assert page.status_code == 200
    html = page.content.decode()
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
def test_an_organization_that_refuses_is_a_400_saying_why(aws, member_client, deployment):
    member_client.post(
        reverse("deployment_aws_organization", args=[deployment.pk]),
        {
            "org_role_arn": f"arn:aws:iam::{WORKLOAD}:role/Missing",
            "org_member_role_pattern": PATTERN,
        },
    )
    page = member_client.get(reverse("deployment_aws_organization_accounts", args=[deployment.pk]))
    assert page.status_code == 400
    assert "AccessDenied" in page.content.decode()


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
