"""Compliance / Audit Logging: AWS Config records every resource, and the CloudTrail buckets
log who read them."""

from __future__ import annotations

from readiness.probes.aws import _per_bucket
from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    probe,
    verdict,
)

SECTION = "Compliance"


@probe(
    key="compliance.config_recorder",
    section=SECTION,
    item="Audit Logging",
    title="AWS Config records all resources and delivers them in this region",
    actions=(
        "config:DescribeConfigurationRecorders",
        "config:DescribeConfigurationRecorderStatus",
        "config:DescribeDeliveryChannels",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Turn on AWS Config for all resource types with a delivery channel to the log bucket: "
        "AWS Config > Settings > Record all resources, or `aws configservice "
        "put-configuration-recorder --recording-group allSupported=true` + "
        "`put-delivery-channel` + `start-configuration-recorder`."
    ),
)
def config_recorder(context: ProbeContext) -> ProbeResult:
    """A recorder recording allSupported, running, with a delivery channel."""
    config = context.client("config")
    recorders = config.describe_configuration_recorders().get("ConfigurationRecorders", [])
    if not recorders:
        return ProbeResult(Status.FAIL, "AWS Config is not recording in this region")
    statuses = {
        status["name"]: status
        for status in config.describe_configuration_recorder_status().get(
            "ConfigurationRecordersStatus", []
        )
    }
    channels = config.describe_delivery_channels().get("DeliveryChannels", [])
    findings = []
    for recorder in recorders:
        group = recorder.get("recordingGroup") or {}
        problems = []
        if not group.get("allSupported"):
            problems.append("records only selected resource types")
        if not statuses.get(recorder["name"], {}).get("recording"):
            problems.append("stopped")
        if not channels:
            problems.append("no delivery channel")
        global_types = "with" if group.get("includeGlobalResourceTypes") else "without"
        findings.append(
            Finding(
                recorder["name"],
                Status.FAIL if problems else Status.PASS,
                "; ".join(problems)
                if problems
                else f"records all resources ({global_types} global types), delivers to "
                f"{channels[0].get('s3BucketName', 'a channel')}",
            )
        )
    return verdict(
        findings,
        passed="AWS Config records every resource type and delivers it",
        failed="AWS Config is incomplete in this region",
        empty="",
        facts={"recorders": len(recorders), "delivery_channels": len(channels)},
    )


@probe(
    key="compliance.trail_bucket_logging",
    section=SECTION,
    item="Audit Logging",
    title="CloudTrail buckets log who read them (S3 server access logging)",
    actions=("cloudtrail:DescribeTrails", "s3:GetBucketLogging"),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Enable server access logging on each trail bucket to a separate log bucket: S3 > "
        "bucket > Properties > Server access logging, or `aws s3api put-bucket-logging "
        "--bucket TRAIL_BUCKET --bucket-logging-status file://logging.json`."
    ),
)
def trail_bucket_logging(context: ProbeContext) -> ProbeResult:
    """Each trail's bucket has server access logging enabled."""
    s3 = context.client("s3")

    def judge(bucket: str) -> Finding:
        enabled = s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled")
        if enabled:
            return Finding(bucket, Status.PASS, f"access logs to {enabled.get('TargetBucket')}")
        return Finding(bucket, Status.FAIL, "no server access logging")

    return verdict(
        _per_bucket(context, judge),
        passed="{total} trail buckets log their own access",
        failed="{failed} of {total} trail buckets do not log who reads them",
        empty="No CloudTrail trail delivers to S3",
    )
