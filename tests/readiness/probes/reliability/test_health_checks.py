import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.reliability.helpers import (
    asg,
    assert_failed_call_is_an_error,
    failing,
    run,
    subnets,
)


def balanced_target_group(aws, vpc, subnet_ids, name="web", **target_group):
    """An ALB forwarding to a new target group; returns the target group ARN."""
    elbv2 = aws.client("elbv2")
    balancer = elbv2.create_load_balancer(Name=f"{name}-lb", Subnets=subnet_ids)
    group = elbv2.create_target_group(
        Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc, **target_group
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancers"][0]["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    return group


def test_health_checks_pass_with_healthy_targets_and_elb_health_on_groups(aws, make_context):
    vpc, subnet_ids = subnets(aws)
    group = balanced_target_group(aws, vpc, subnet_ids, HealthCheckPath="/health")
    instance = aws.client("ec2").run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)[
        "Instances"
    ][0]["InstanceId"]
    aws.client("elbv2").register_targets(TargetGroupArn=group, Targets=[{"Id": instance}])
    asg(
        aws,
        "web",
        MaxSize=2,
        VPCZoneIdentifier=",".join(subnet_ids),
        TargetGroupARNs=[group],
        HealthCheckType="ELB",
    )
    aws.client("elbv2").create_target_group(Name="spare", Protocol="HTTP", Port=80, VpcId=vpc)
    result = run("resilience.health_checks", make_context())
    assert result.status == Status.PASS, result
    assert len(result.findings) == 2
    assert result.facts["unattached_target_groups"] == 1  # "spare" serves nothing: not judged


def test_health_checks_fail_without_targets_checks_or_elb_health_type(aws, make_context):
    vpc, subnet_ids = subnets(aws)
    empty = balanced_target_group(aws, vpc, subnet_ids, name="empty")
    unchecked = balanced_target_group(aws, vpc, subnet_ids, name="off")
    # moto ignores HealthCheckEnabled on create_target_group; it honours it on modify.
    aws.client("elbv2").modify_target_group(TargetGroupArn=unchecked, HealthCheckEnabled=False)
    asg(aws, "web", MaxSize=2, VPCZoneIdentifier=",".join(subnet_ids), TargetGroupARNs=[empty])
    result = run("resilience.health_checks", make_context())
    assert result.status == Status.FAIL
    reasons = {f.resource: f.reason for f in result.findings if f.status == Status.FAIL}
    assert "no healthy target (0 registered)" in reasons[empty]
    assert reasons[unchecked] == "health checks disabled"
    assert any(r.endswith("autoScalingGroupName/web") for r in reasons)


def test_health_checks_fail_when_every_target_is_unhealthy(aws, make_context):
    vpc, subnet_ids = subnets(aws)
    group = balanced_target_group(aws, vpc, subnet_ids)
    context = make_context()
    client = context.client("elbv2")
    described = client.describe_target_groups()
    # moto reports every registered target healthy: answer elbv2 as AWS would for a failing app.
    with Stubber(client) as stubber:
        stubber.add_response("describe_target_groups", {"TargetGroups": described["TargetGroups"]})
        stubber.add_response(
            "describe_target_health",
            {
                "TargetHealthDescriptions": [
                    {"Target": {"Id": "i-1"}, "TargetHealth": {"State": "unhealthy"}},
                    {"Target": {"Id": "i-2"}, "TargetHealth": {"State": "draining"}},
                ]
            },
            {"TargetGroupArn": group},
        )
        result = run("resilience.health_checks", context)
    assert result.status == Status.FAIL
    assert failing(result) == {group}
    assert "2 registered: draining, unhealthy" in result.findings[0].reason


def test_health_checks_not_applicable_without_load_balanced_resources(aws, make_context):
    asg(aws, "worker", MaxSize=2, AvailabilityZones=["us-east-1a"])
    assert run("resilience.health_checks", make_context()).status == Status.NOT_APPLICABLE


# Errors


@pytest.mark.parametrize(
    ("key", "service", "operation", "code", "expected"),
    [
        (
            "resilience.health_checks",
            "elbv2",
            "describe_target_groups",
            "AccessDenied",
            "Access denied: the probe needs elasticloadbalancing:DescribeTargetGroups",
        ),
    ],
)
def test_failed_calls_become_error_results(
    aws, make_context, key, service, operation, code, expected
):
    assert_failed_call_is_an_error(make_context(), key, service, operation, code, expected)
