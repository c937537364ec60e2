"""/deployments/{id}/aws-accounts, and a deployment created with its accounts."""

import json

import pytest

from readiness.audit.models import AuditEvent
from tests.factories import set_aws_target

BASE = "/api/v1"
WORKLOAD = "123456789012"
LOGGING = "210987654321"


def put(api, deployment, accounts):
    return api.client.put(
        f"{BASE}/deployments/{deployment.pk}/aws-accounts",
        json.dumps(accounts),
        content_type="application/json",
        headers=api.headers,
    )


@pytest.mark.django_db
def test_the_accounts_are_read_and_replaced_without_showing_external_ids(api, deployment):
    set_aws_target(deployment)
    listed = api.get(f"{BASE}/deployments/{deployment.pk}/aws-accounts")
    assert listed.status_code == 200
    assert listed.json() == [
        {
            "account_id": WORKLOAD,
            "name": "",
            "regions": ["us-east-1"],
            "role_arn": "",
            "external_id_set": False,
        }
    ]
    replaced = put(
        api,
        deployment,
        [
            {
                "account_id": LOGGING,
                "name": "logging",
                "regions": ["eu-west-1", "us-east-1"],
                "role_arn": f"arn:aws:iam::{LOGGING}:role/ReadinessProbe",
                "external_id": "secret-ish",
            }
        ],
    )
    assert replaced.status_code == 200, replaced.content
    assert replaced.json() == [
        {
            "account_id": LOGGING,
            "name": "logging",
            "regions": ["eu-west-1", "us-east-1"],
            "role_arn": f"arn:aws:iam::{LOGGING}:role/ReadinessProbe",
            "external_id_set": True,
        }
    ]
    assert "secret-ish" not in replaced.content.decode()
    event = AuditEvent.objects.filter(action="deployment.aws_target_set").last()
    assert [a["account_id"] for a in event.before["accounts"]] == [WORKLOAD]
    assert [a["account_id"] for a in event.after["accounts"]] == [LOGGING]


@pytest.mark.parametrize(
    ("accounts", "where", "words"),
    [
        ([{"account_id": "12", "regions": ["us-east-1"]}], "accounts.0.account_id", "12 digits"),
        (
            [{"account_id": WORKLOAD, "regions": ["mars-1"]}],
            "accounts.0.regions",
            "Unknown region",
        ),
        (
            [
                {"account_id": WORKLOAD, "regions": ["us-east-1"]},
                {
                    "account_id": LOGGING,
                    "regions": ["us-east-1"],
                    "role_arn": f"arn:aws:iam::{WORKLOAD}:role/x",
                },
            ],
            "accounts.1.role_arn",
            "in the account above",
        ),
        (
            [
                {"account_id": WORKLOAD, "regions": ["us-east-1"]},
                {"account_id": LOGGING, "regions": ["us-east-1"]},
            ],
            "aws_role_arn",
            "Only one account",
        ),
        ([{"account_id": "\x00" * 12, "regions": ["us-east-1"]}], "accounts.0.account_id", ""),
    ],
)
@pytest.mark.django_db
def test_bad_accounts_are_a_400_naming_the_field_and_change_nothing(
    api, deployment, accounts, where, words
):
    set_aws_target(deployment)
    response = put(api, deployment, accounts)
    assert response.status_code == 400, response.content
    body = response.json()
    assert where in body["errors"] and words in " ".join(body["errors"][where])
    assert list(deployment.aws_accounts.values_list("account_id", flat=True)) == [WORKLOAD]


@pytest.mark.django_db
def test_a_read_token_and_another_team_cannot_replace_the_accounts(
    read_api, outsider_api, deployment
):
    set_aws_target(deployment)
    body = [{"account_id": LOGGING, "regions": ["us-east-1"]}]
    assert put(read_api, deployment, body).status_code == 403
    assert put(outsider_api, deployment, body).status_code == 404
    assert outsider_api.get(f"{BASE}/deployments/{deployment.pk}/aws-accounts").status_code == 404
    assert list(deployment.aws_accounts.values_list("account_id", flat=True)) == [WORKLOAD]


@pytest.mark.django_db
def test_a_deployment_is_created_with_its_accounts(api, member, team):
    created = api.post(
        f"{BASE}/deployments",
        {
            "service": "ledger",
            "environment": "production",
            "version": "1.0.0",
            "aws_accounts": [
                {"account_id": WORKLOAD, "regions": ["us-east-1"]},
                {
                    "account_id": LOGGING,
                    "regions": ["eu-west-1"],
                    "role_arn": f"arn:aws:iam::{LOGGING}:role/ReadinessProbe",
                },
            ],
        },
    )
    assert created.status_code == 201, created.content
    accounts = api.get(f"{BASE}/deployments/{created.json()['id']}/aws-accounts").json()
    assert [a["account_id"] for a in accounts] == [WORKLOAD, LOGGING]


@pytest.mark.django_db
def test_the_openapi_schema_documents_the_accounts(client):
    schema = client.get(f"{BASE}/openapi.json").json()
    operations = schema["paths"]["/api/v1/deployments/{deployment_id}/aws-accounts"]
    assert set(operations) == {"get", "put"}
    assert {"200", "400", "403", "404"} <= set(operations["put"]["responses"])
    account = schema["components"]["schemas"]["AwsAccountIn"]
    assert {"account_id", "regions", "role_arn", "external_id", "name"} == set(
        account["properties"]
    )
