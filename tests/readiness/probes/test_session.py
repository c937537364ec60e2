"""Sessions of one worker share the API models they load."""

from readiness.probes.session import new_session, target_session


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


def test_services_whose_endpoints_read_documentation_still_work(aws):
    # botocore reads some documentation keys without a default (S3, ACM).
    session = new_session(region_name="eu-west-1")
    assert session.client("s3").list_buckets()["Buckets"] == []
    assert session.client("acm").list_certificates()["CertificateSummaryList"] == []
