"""Sessions of one worker share the API models they load."""

import boto3

from readiness.probes.base import ProbeContext
from readiness.probes.session import _LOADER, new_session, target_session


def test_sessions_share_the_loaded_api_models(aws):
    first = new_session(region_name="us-east-1").client("ec2")
    second = target_session(region="eu-west-1").client("ec2", region_name="eu-west-1")
    # The same parsed model, not a copy per session (about 120 MB for the probes' services).
    assert first.meta.service_model._service_description is (
        second.meta.service_model._service_description
    )
    assert second.meta.region_name == "eu-west-1"


def test_the_models_carry_no_documentation_and_still_serve_calls(aws):
    sts = new_session(region_name="us-east-1").client("sts")
    model = sts.meta.service_model
    assert model.documentation == ""
    assert model.operation_model("GetCallerIdentity").documentation == ""
    assert sts.get_caller_identity()["Account"] == "123456789012"


def test_a_name_the_models_repeat_is_one_string_object():
    # The models repeat shape names and types some 185,000 times: each parsed as its own
    # object, they took 8 MB instead of 2.5.
    ec2 = _LOADER.load_service_model("ec2", "service-2")["shapes"]
    iam = _LOADER.load_service_model("iam", "service-2")["shapes"]
    first = ec2["DescribeInstancesRequest"]["type"]
    second = iam["GetUserRequest"]["type"]
    assert first == second == "structure"
    assert first is second
    dry_run = ec2["DescribeInstancesRequest"]["members"]["DryRun"]["shape"]
    assert dry_run is ec2["DescribeVpcsRequest"]["members"]["DryRun"]["shape"]


def test_services_whose_endpoints_read_documentation_still_work(aws):
    # botocore reads some documentation keys without a default (S3, ACM).
    session = new_session(region_name="eu-west-1")
    assert session.client("s3").list_buckets()["Buckets"] == []
    assert session.client("acm").list_certificates()["CertificateSummaryList"] == []


def test_clients_of_a_service_share_one_class_and_model_across_sessions(aws):
    # botocore builds both per client otherwise: ~1.3 MB per EC2 client, and a worker holds
    # one per account, service and region.
    first = new_session(region_name="us-east-1").client("ec2")
    second = new_session(region_name="eu-west-1").client("ec2", region_name="eu-west-1")
    assert type(first) is type(second)
    assert first.meta.service_model is second.meta.service_model
    assert first.meta.region_name == "us-east-1" and second.meta.region_name == "eu-west-1"
    assert second.describe_vpcs()["Vpcs"]  # the default VPC of its own region


def test_sessions_of_other_code_keep_their_own_models(aws):
    # The sharing is for the probes' loader only: any other botocore session in the process
    # (boto3's default, the demo's seeding) builds its clients as botocore always did.
    shared = new_session(region_name="us-east-1").client("sts")
    plain = boto3.Session(region_name="us-east-1").client("sts")
    assert type(plain) is not type(shared)
    assert plain.meta.service_model is not shared.meta.service_model


def test_an_account_sessions_clients_go_to_the_region_asked_else_their_configs(aws):
    session = target_session(region="us-east-1")
    # Probe clients name their region in their config, as a boto3 session lets them.
    context = ProbeContext(session=session, region="eu-west-1")
    assert context.client("ec2").meta.region_name == "eu-west-1"
    assert context.client("ec2").describe_vpcs()["Vpcs"]
    assert session.client("ec2").meta.region_name == "us-east-1"
    assert session.client("ec2", region_name="ap-south-1").meta.region_name == "ap-south-1"
