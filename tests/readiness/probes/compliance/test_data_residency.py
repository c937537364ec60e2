import json

from readiness.probes.base import Status
from tests.conftest import REGION
from tests.readiness.probes.compliance.helpers import by_id, run


def test_residency_not_applicable_without_approved_regions(aws, make_context):
    assert run("compliance.data_residency", make_context()).status == Status.NOT_APPLICABLE


def test_residency_warns_without_an_scp_when_everything_is_inside(aws, make_context):
    aws.client("s3").create_bucket(Bucket="home")
    aws.client("ec2").run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    result = run("compliance.data_residency", make_context(approved_regions=(REGION,)))
    assert result.status == Status.WARN, result
    assert "Organizations is not in use" in result.findings[0].reason


def test_residency_fails_for_stores_in_other_regions(aws, make_context):
    aws.client("s3", region_name="ap-south-1").create_bucket(
        Bucket="far-away", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"}
    )
    instance = aws.client("ec2", region_name="sa-east-1").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    aws.client("dynamodb", region_name="eu-central-1").create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    result = run("compliance.data_residency", make_context(approved_regions=(REGION,)))
    assert result.status == Status.FAIL
    found = by_id(result)
    assert found["s3:far-away"].reason.startswith("bucket in ap-south-1")
    assert found[instance].reason == "instance in sa-east-1"
    assert found["dynamodb:orders"].reason == "table in eu-central-1"
    assert result.summary.startswith("3 data store(s) outside the approved regions")


def test_residency_passes_with_an_scp_denying_other_regions(aws, make_context):
    organizations = aws.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    organizations.create_policy(
        Name="regions",
        Description="stay home",
        Type="SERVICE_CONTROL_POLICY",
        Content=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "NotAction": ["iam:*", "sts:*"],
                        "Resource": "*",
                        "Condition": {"StringNotEquals": {"aws:RequestedRegion": [REGION]}},
                    }
                ],
            }
        ),
    )
    result = run("compliance.data_residency", make_context(approved_regions=(REGION,)))
    assert result.status == Status.PASS, result
    assert result.findings[0].resource == "scp:regions"
