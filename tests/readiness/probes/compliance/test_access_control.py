import datetime
import json

from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.compliance.helpers import by_id, run


def test_root_keys(aws, make_context):
    assert run("compliance.root_keys", make_context()).status == Status.PASS
    context = make_context()
    with Stubber(context.client("iam")) as stubber:
        stubber.add_response("get_account_summary", {"SummaryMap": {"AccountAccessKeysPresent": 1}})
        assert run("compliance.root_keys", context).status == Status.FAIL


def test_password_policy_length(aws, make_context):
    result = run("compliance.password_policy", make_context())
    assert result.status == Status.FAIL and "No password policy" in result.summary
    aws.client("iam").update_account_password_policy(MinimumPasswordLength=12)
    assert run("compliance.password_policy", make_context()).status == Status.FAIL
    assert (
        run("compliance.password_policy", make_context(password_min_length=12)).status
        == Status.PASS
    )
    aws.client("iam").update_account_password_policy(MinimumPasswordLength=16)
    assert run("compliance.password_policy", make_context()).status == Status.PASS


def test_access_key_age(aws, make_context):
    assert run("compliance.access_key_age", make_context()).status == Status.NOT_APPLICABLE
    aws.client("iam").create_user(UserName="ci")
    aws.client("iam").create_access_key(UserName="ci")
    assert run("compliance.access_key_age", make_context()).status == Status.PASS
    # moto cannot backdate a key: the listing of an old one is stubbed.
    context = make_context()
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=200)
    with Stubber(context.client("iam")) as stubber:
        stubber.add_response(
            "list_users",
            {
                "Users": [
                    {
                        "UserName": "ci",
                        "UserId": "AIDAEXAMPLE000000001",
                        "Arn": "arn:aws:iam::123456789012:user/ci",
                        "Path": "/",
                        "CreateDate": old,
                    }
                ]
            },
        )
        stubber.add_response(
            "list_access_keys",
            {
                "AccessKeyMetadata": [
                    {
                        "UserName": "ci",
                        "AccessKeyId": "AKIAOLD0000000000001",
                        "Status": "Active",
                        "CreateDate": old,
                    },
                    {
                        "UserName": "ci",
                        "AccessKeyId": "AKIAOFF0000000000002",
                        "Status": "Inactive",
                        "CreateDate": old,
                    },
                ]
            },
        )
        result = run("compliance.access_key_age", context)
    assert result.status == Status.FAIL
    assert (
        result.findings == (result.findings[0],)
        and "200 days old (limit 90)" in result.findings[0].reason
    )


def test_user_policies(aws, make_context):
    iam = aws.client("iam")
    iam.create_user(UserName="grouped")
    iam.create_user(UserName="direct")
    iam.put_user_policy(
        UserName="direct",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    result = run("compliance.user_policies", make_context())
    found = by_id(result)
    assert result.status == Status.FAIL
    assert found["direct"].reason == "policies on the user: all (inline)"
    assert found["grouped"].status == Status.PASS
