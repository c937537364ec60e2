from readiness.probes.base import Status
from tests.readiness.probes.compliance.helpers import _trail, by_id, run


def _recorder(aws, all_supported=True, start=True, channel=True):
    config = aws.client("config")
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": "arn:aws:iam::123456789012:role/config",
            "recordingGroup": {"allSupported": all_supported, "includeGlobalResourceTypes": True}
            if all_supported
            else {"allSupported": False, "resourceTypes": ["AWS::S3::Bucket"]},
        }
    )
    if channel:
        aws.client("s3").create_bucket(Bucket="config-logs")
        config.put_delivery_channel(
            DeliveryChannel={"name": "default", "s3BucketName": "config-logs"}
        )
    if start and channel:
        config.start_configuration_recorder(ConfigurationRecorderName="default")


def test_config_recorder_passes_when_recording_everything(aws, make_context):
    assert run("compliance.config_recorder", make_context()).status == Status.FAIL
    _recorder(aws)
    result = run("compliance.config_recorder", make_context())
    assert result.status == Status.PASS, result
    assert "delivers to config-logs" in result.findings[0].reason


def test_config_recorder_fails_partial_or_stopped(aws, make_context):
    _recorder(aws, all_supported=False, start=False)
    result = run("compliance.config_recorder", make_context())
    assert result.status == Status.FAIL
    assert result.findings[0].reason == "records only selected resource types; stopped"


def test_trail_bucket_logging(aws, make_context):
    assert run("compliance.trail_bucket_logging", make_context()).status == Status.NOT_APPLICABLE
    s3 = _trail(aws, "trail-logged")
    _trail(aws, "trail-silent")
    s3.create_bucket(Bucket="access-logs", ACL="log-delivery-write")
    s3.put_bucket_logging(
        Bucket="trail-logged",
        BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": "access-logs", "TargetPrefix": "t/"}
        },
    )
    result = run("compliance.trail_bucket_logging", make_context())
    found = by_id(result)
    assert result.status == Status.FAIL
    assert found["trail-logged"].reason == "access logs to access-logs"
    assert found["trail-silent"].reason == "no server access logging"
