import pytest

from readiness.probes.base import Status
from tests.readiness.probes.monitoring.helpers import (
    REGION,
    assert_access_denied_names_a_declared_action,
    run,
    statuses,
)


def _bucket(aws, name: str) -> str:
    aws.client("s3").create_bucket(Bucket=name)
    return name


def _vpc_ids(aws) -> list[str]:
    return [vpc["VpcId"] for vpc in aws.client("ec2").describe_vpcs()["Vpcs"]]


def test_flow_logs_pass_when_every_vpc_has_an_active_one(aws, make_context):
    ec2 = aws.client("ec2")
    ec2.create_vpc(CidrBlock="10.20.0.0/16")
    vpcs = _vpc_ids(aws)  # moto's default VPC included
    ec2.create_flow_logs(
        ResourceIds=vpcs,
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{_bucket(aws, 'flow-logs')}",
    )
    result = run("monitoring.vpc_flow_logs", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["vpcs"] == len(vpcs) == 2


def test_flow_logs_fail_for_a_vpc_without_one(aws, make_context):
    ec2 = aws.client("ec2")
    unlogged = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    logged = [vpc for vpc in _vpc_ids(aws) if vpc != unlogged]
    ec2.create_flow_logs(
        ResourceIds=logged,
        ResourceType="VPC",
        TrafficType="REJECT",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{_bucket(aws, 'flow-logs')}",
    )
    result = run("monitoring.vpc_flow_logs", make_context())
    assert result.status == Status.FAIL
    assert statuses(result)[unlogged] == Status.FAIL
    assert all(statuses(result)[vpc] == Status.PASS for vpc in logged)


def _load_balancer(aws, name: str, kind: str = "application") -> str:
    subnets = [s["SubnetId"] for s in aws.client("ec2").describe_subnets()["Subnets"]][:2]
    return aws.client("elbv2").create_load_balancer(Name=name, Subnets=subnets, Type=kind)[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]


def _enable_access_logs(aws, arn: str, bucket: str) -> None:
    aws.client("elbv2").modify_load_balancer_attributes(
        LoadBalancerArn=arn,
        Attributes=[
            {"Key": "access_logs.s3.enabled", "Value": "true"},
            {"Key": "access_logs.s3.bucket", "Value": bucket},
        ],
    )


def test_access_logs_pass_when_every_alb_logs_and_skip_nlbs_without_tls(aws, make_context):
    bucket = _bucket(aws, "lb-logs")
    alb = _load_balancer(aws, "web")
    _enable_access_logs(aws, alb, bucket)
    _load_balancer(aws, "tcp-only", kind="network")  # no TLS listener: no access log to write
    result = run("monitoring.load_balancer_access_logs", make_context())
    assert result.status == Status.PASS, result
    assert statuses(result) == {alb: Status.PASS}
    assert "s3://lb-logs" in result.findings[0].reason
    assert result.facts["not_judged"] == {"network without TLS listener": 1}


def test_access_logs_fail_for_a_load_balancer_without_them(aws, make_context):
    logged = _load_balancer(aws, "web")
    _enable_access_logs(aws, logged, _bucket(aws, "lb-logs"))
    unlogged = _load_balancer(aws, "admin")
    result = run("monitoring.load_balancer_access_logs", make_context())
    assert result.status == Status.FAIL
    assert statuses(result) == {logged: Status.PASS, unlogged: Status.FAIL}


def test_access_logs_not_applicable_without_load_balancers(aws, make_context):
    result = run("monitoring.load_balancer_access_logs", make_context())
    assert result.status == Status.NOT_APPLICABLE


def _trail(aws, name: str, *, log_group: str | None = None, multi_region: bool = True) -> str:
    extra = {}
    if log_group:
        logs = aws.client("logs")
        logs.create_log_group(logGroupName=log_group)
        extra = {
            "CloudWatchLogsLogGroupArn": logs.describe_log_groups(logGroupNamePrefix=log_group)[
                "logGroups"
            ][0]["arn"],
            "CloudWatchLogsRoleArn": "arn:aws:iam::123456789012:role/CloudTrailToLogs",
        }
    cloudtrail = aws.client("cloudtrail")
    arn = cloudtrail.create_trail(
        Name=name,
        S3BucketName=_bucket(aws, f"{name}-logs"),
        IsMultiRegionTrail=multi_region,
        **extra,
    )["TrailARN"]
    cloudtrail.start_logging(Name=arn)
    return arn


def test_cloudtrail_logs_pass_when_a_multi_region_trail_delivers(aws, make_context):
    delivering = _trail(aws, "org-trail", log_group="cloudtrail/org")
    data_events = _trail(aws, "data-events")  # to S3 only: an extra, not a gap
    result = run("monitoring.cloudtrail_cloudwatch_logs", make_context("global"))
    assert result.status == Status.PASS, result
    assert statuses(result) == {delivering: Status.PASS, data_events: Status.WARN}


def test_cloudtrail_logs_fail_when_no_trail_delivers_while_logging(aws, make_context):
    silent = _trail(aws, "org-trail")
    stopped = _trail(aws, "stopped-trail", log_group="cloudtrail/stopped")
    aws.client("cloudtrail").stop_logging(Name=stopped)
    result = run("monitoring.cloudtrail_cloudwatch_logs", make_context("global"))
    assert result.status == Status.FAIL
    assert statuses(result) == {silent: Status.FAIL, stopped: Status.FAIL}
    assert "not logging" in {f.resource: f.reason for f in result.findings}[stopped]


def test_cloudtrail_logs_warn_when_only_a_single_region_trail_delivers(aws, make_context):
    regional = _trail(aws, "local-trail", log_group="cloudtrail/local", multi_region=False)
    result = run("monitoring.cloudtrail_cloudwatch_logs", make_context("global"))
    assert result.status == Status.WARN
    assert statuses(result) == {regional: Status.WARN}


def test_log_groups_pass_when_the_region_has_one(aws, make_context):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/ecs/api")
    logs.put_retention_policy(logGroupName="/ecs/api", retentionInDays=30)
    logs.create_log_group(logGroupName="/aws/lambda/worker")
    result = run("monitoring.log_groups", make_context())
    assert result.status == Status.PASS, result
    assert result.facts == {"log_groups": 2, "without_retention": 1}


def test_log_groups_fail_when_the_region_has_none(aws, make_context):
    aws.client("logs", region_name="eu-west-1").create_log_group(logGroupName="elsewhere")
    result = run("monitoring.log_groups", make_context())
    assert result.status == Status.FAIL
    assert "No CloudWatch Logs log group in us-east-1" in result.summary


@pytest.mark.parametrize(
    ("key", "region", "service", "operation"),
    [
        ("monitoring.vpc_flow_logs", REGION, "ec2", "describe_vpcs"),
        ("monitoring.load_balancer_access_logs", REGION, "elbv2", "describe_load_balancers"),
        ("monitoring.cloudtrail_cloudwatch_logs", "global", "cloudtrail", "describe_trails"),
        ("monitoring.log_groups", REGION, "logs", "describe_log_groups"),
    ],
)
def test_access_denied_is_an_error_naming_a_declared_action(
    aws, make_context, key, region, service, operation
):
    assert_access_denied_names_a_declared_action(make_context(region), key, service, operation)
