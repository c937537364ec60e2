"""The demo's emulated organization: three accounts, each read as the probes read it, and
`make run`'s demo deployment spanning them."""

import boto3
import pytest

from readiness.audit.models import AuditEvent
from readiness.checklists.models import AwsAccount, AwsOrganizationSource
from readiness.dev.demo_aws import (
    DEMO_ACCOUNT,
    DEMO_REGIONS,
    seed_account,
    seed_copies,
    seed_organization,
)
from readiness.management.commands.serve import demo_target
from readiness.probes.organizations import organization_accounts
from readiness.probes.session import target_session


@pytest.fixture
def organization(aws, moto_server):
    seed_account(moto_server)
    return seed_organization(moto_server)


def test_the_demo_organization_has_three_accounts_each_readable_through_its_role(aws, organization):
    assert [(a.name, bool(a.role_arn)) for a in organization] == [
        ("workload", False),
        ("networking", True),
        ("logging", True),
    ]
    listed = {a.account_id: a.name for a in organization_accounts(aws)}
    assert listed == {
        DEMO_ACCOUNT: "master",
        **{a.account_id: a.name for a in organization[1:]},
    }
    groups = {}
    for account in organization:
        session = target_session(role_arn=account.role_arn, name="demo-test")
        assert session.client("sts").get_caller_identity()["Account"] == account.account_id
        groups[account.name] = {
            group["GroupName"]
            for group in session.client("ec2", region_name="us-east-1").describe_security_groups()[
                "SecurityGroups"
            ]
        }
    # Resources live in their own account: networking's open bastion is its own.
    assert "bastion" in groups["networking"] and "bastion" not in groups["logging"]
    assert "ssh-open" in groups["workload"] and "ssh-open" not in groups["networking"]


@pytest.mark.django_db
def test_the_demo_deployment_spans_the_three_accounts_once(aws, moto_server, deployment, member):
    assert demo_target(moto_server) == 1
    accounts = list(AwsAccount.objects.filter(deployment=deployment).order_by("account_id"))
    assert len(accounts) == 3
    assert {a.name for a in accounts} == {"workload", "networking", "logging"}
    assert all(a.regions == list(DEMO_REGIONS) for a in accounts)
    assert AwsOrganizationSource.objects.get(deployment=deployment).member_role_pattern.endswith(
        ":role/ReadinessProbe"
    )
    assert AuditEvent.objects.filter(
        deployment=deployment, action="deployment.aws_target_set"
    ).exists()
    # A restart seeds a fresh emulator and leaves a target that spans it alone.
    urllib_reset(moto_server)
    assert demo_target(moto_server) == 0
    assert AwsAccount.objects.filter(deployment=deployment).count() == 3


def urllib_reset(endpoint: str) -> None:
    import urllib.request

    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10)
    assert not boto3.Session(region_name="us-east-1").client("s3").list_buckets()["Buckets"]


def test_the_benchmarks_organization_holds_a_copy_of_the_demo_account_in_each_member(
    aws, moto_server
):
    accounts = seed_copies(moto_server, members=2, regions=("us-east-1",))
    assert [a.name for a in accounts] == ["copy-0", "copy-1", "copy-2"]
    assert accounts[0] == accounts[0].__class__(DEMO_ACCOUNT, "copy-0", "")
    assert {a.account_id for a in organization_accounts(aws)} == {a.account_id for a in accounts}
    for account in accounts:
        session = target_session(role_arn=account.role_arn, name="bench-test")
        assert session.client("sts").get_caller_identity()["Account"] == account.account_id
        groups = {
            group["GroupName"]
            for group in session.client("ec2", region_name="us-east-1").describe_security_groups()[
                "SecurityGroups"
            ]
        }
        assert {"web", "ssh-open"} <= groups
        s3 = session.client("s3", region_name="us-east-1")
        # Bucket names are global: the members' copies carry their account id.
        suffix = "" if account.account_id == DEMO_ACCOUNT else f"-{account.account_id}"
        assert s3.get_bucket_policy(Bucket=f"demo-records-us-east-1-0{suffix}")["Policy"]
        trails = session.client("cloudtrail", region_name="us-east-1").describe_trails()
        assert [t["S3BucketName"] for t in trails["trailList"]] == [
            f"demo-trail-{account.account_id}"
        ]
