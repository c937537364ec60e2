import json

import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.security.helpers import run

ADMIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}

NARROW = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}],
}

SERVICE_WIDE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}

NOT_ACTION = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
}

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def test_least_privilege_passes_with_narrow_policies(aws, make_context):
    iam = aws.client("iam")
    iam.create_user(UserName="deployer")
    iam.put_user_policy(UserName="deployer", PolicyName="read", PolicyDocument=json.dumps(NARROW))
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=TRUST)
    arn = iam.create_policy(PolicyName="narrow", PolicyDocument=json.dumps(NARROW))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="app", PolicyArn=arn)
    result = run("iam.least_privilege", make_context("global"))
    assert result.status == Status.PASS, result
    assert result.facts["principals"] == 2


def test_least_privilege_fails_on_admin_and_not_action_and_warns_on_service_wildcards(
    aws, make_context
):
    iam = aws.client("iam")
    iam.create_user(UserName="admin-bob")
    admin = iam.create_policy(PolicyName="AdministratorAccess", PolicyDocument=json.dumps(ADMIN))
    iam.attach_user_policy(UserName="admin-bob", PolicyArn=admin["Policy"]["Arn"])
    iam.create_group(GroupName="ops")
    iam.put_group_policy(
        GroupName="ops", PolicyName="almost-all", PolicyDocument=json.dumps(NOT_ACTION)
    )
    iam.create_role(RoleName="storage", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(
        RoleName="storage", PolicyName="s3", PolicyDocument=json.dumps(SERVICE_WIDE)
    )
    result = run("iam.least_privilege", make_context("global"))
    assert result.status == Status.FAIL
    by_resource = {f.resource.split(":")[-1]: f for f in result.findings}
    assert by_resource["user/admin-bob"].status == Status.FAIL
    assert "AdministratorAccess" in by_resource["user/admin-bob"].reason
    assert by_resource["group/ops"].status == Status.FAIL
    assert "NotAction" in by_resource["group/ops"].reason
    assert by_resource["role/storage"].status == Status.WARN
    assert "s3:*" in by_resource["role/storage"].reason


def test_least_privilege_ignores_service_linked_roles(aws, make_context):
    aws.client("iam").create_role(
        RoleName="AWSServiceRoleForX",
        Path="/aws-service-role/x.amazonaws.com/",
        AssumeRolePolicyDocument=TRUST,
    )
    aws.client("iam").put_role_policy(
        RoleName="AWSServiceRoleForX", PolicyName="all", PolicyDocument=json.dumps(ADMIN)
    )
    assert run("iam.least_privilege", make_context("global")).status == Status.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDenied", "Access denied: the probe needs iam:GetAccountAuthorizationDetails"),
        ("Throttling", "Throttled by AWS on iam:GetAccountAuthorizationDetails"),
    ],
)
def test_aws_errors_become_error_results_naming_the_action(aws, make_context, code, expected):
    context = make_context("global")
    client = context.client("iam")
    with Stubber(client) as stubber:
        stubber.add_client_error("get_account_authorization_details", service_error_code=code)
        result = run("iam.least_privilege", context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(expected)
