"""The AWS emulator of the demo, the benchmark and the tests (readiness.emulator)."""

import boto3
import moto
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from readiness.dev import emulator

RETRYING = Config(retries={"mode": "standard", "total_max_attempts": 4})


def _refused(call) -> dict:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response


@pytest.mark.parametrize(
    ("service", "operation", "kwargs", "named"),
    [
        # JSON protocol, a service moto has no backend for at all.
        (
            "compute-optimizer",
            "get_ec2_instance_recommendations",
            {},
            "GetEC2InstanceRecommendations",
        ),
        # JSON protocol, a service moto has, an operation it lacks.
        ("ce", "get_anomaly_monitors", {}, "GetAnomalyMonitors"),
        # Query protocol (XML errors): the Action is read from the form body.
        ("ec2", "describe_capacity_block_offerings", {"CapacityDurationHours": 24}, None),
        # REST-JSON: named by method and path.
        ("appconfig", "list_applications", {}, "GET /applications"),
    ],
)
def test_an_operation_moto_lacks_answers_501_not_implemented_without_retries(
    aws, service, operation, kwargs, named
):
    client = boto3.client(service, region_name="us-east-1", config=RETRYING)
    response = _refused(lambda: getattr(client, operation)(**kwargs))
    assert response["Error"]["Code"] == "NotImplemented"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501
    # A 500 would have been retried three times with backoff; a 501 is final.
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    expected = (
        named
        or client.meta.service_model.operation_model(
            "".join(part.title() for part in operation.split("_"))
        ).name
    )
    assert response["Error"]["Message"] == (
        f"The AWS emulator (moto {moto.__version__}) does not implement {expected}"
    )


def test_what_moto_emulates_still_answers_and_its_own_errors_stay(aws):
    sts = boto3.client("sts", region_name="us-east-1")
    assert sts.get_caller_identity()["Account"] == "123456789012"
    s3 = boto3.client("s3", region_name="us-east-1")
    response = _refused(lambda: s3.get_bucket_policy(Bucket="no-such-bucket"))
    assert response["Error"]["Code"] == "NoSuchBucket"


def test_the_module_list_is_read_once(monkeypatch):
    from moto import backends

    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    emulator.app()
    first = backends.list_of_moto_modules()
    assert "ec2" in first and "s3" in first
    assert backends.list_of_moto_modules() is first


def test_a_not_implemented_answer_escapes_the_operation_in_xml():
    environ = {
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "emulator.form": "Action=Describe%3CThing%3E&Version=2016-11-15",
    }
    seen = {}
    body = b"".join(
        emulator.not_implemented(environ, lambda status, headers: seen.update(status=status))
    )
    assert seen["status"] == "501 Not Implemented"
    assert b"<Code>NotImplemented</Code>" in body
    assert b"Describe&lt;Thing&gt;" in body
