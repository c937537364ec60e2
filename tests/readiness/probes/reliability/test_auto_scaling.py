import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.reliability.helpers import (
    asg,
    assert_failed_call_is_an_error,
    failing,
    run,
)


def target_tracking(aws, group):
    aws.client("autoscaling").put_scaling_policy(
        AutoScalingGroupName=group,
        PolicyName="cpu50",
        PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": 50,
        },
    )


def test_auto_scaling_passes_with_policies_and_schedules(aws, make_context):
    asg(aws, "web", MaxSize=4, AvailabilityZones=["us-east-1a"])
    target_tracking(aws, "web")
    asg(aws, "batch", MaxSize=10, AvailabilityZones=["us-east-1a"])
    aws.client("autoscaling").put_scheduled_update_group_action(
        AutoScalingGroupName="batch",
        ScheduledActionName="nightly",
        Recurrence="0 1 * * *",
        DesiredCapacity=8,
    )
    appscaling = aws.client("application-autoscaling")
    appscaling.register_scalable_target(
        ServiceNamespace="dynamodb",
        ResourceId="table/orders",
        ScalableDimension="dynamodb:table:ReadCapacityUnits",
        MinCapacity=5,
        MaxCapacity=100,
    )
    appscaling.put_scaling_policy(
        PolicyName="reads",
        ServiceNamespace="dynamodb",
        ResourceId="table/orders",
        ScalableDimension="dynamodb:table:ReadCapacityUnits",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "DynamoDBReadCapacityUtilization"
            },
        },
    )
    result = run("resilience.auto_scaling", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["auto_scaling_groups"] == 2
    assert result.facts["scalable_targets"] == 1


def test_auto_scaling_fails_fixed_size_groups_and_targets_without_policy(aws, make_context):
    asg(aws, "fixed", MinSize=2, MaxSize=2, AvailabilityZones=["us-east-1a"])
    target_tracking(aws, "fixed")
    asg(aws, "manual", MaxSize=4, AvailabilityZones=["us-east-1a"])
    aws.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="dynamodb",
        ResourceId="table/events",
        ScalableDimension="dynamodb:table:WriteCapacityUnits",
        MinCapacity=5,
        MaxCapacity=50,
    )
    result = run("resilience.auto_scaling", make_context())
    assert result.status == Status.FAIL
    reasons = {f.resource.rsplit("/", 1)[-1]: f.reason for f in result.findings}
    assert "cannot grow" in reasons["fixed"]
    assert "no scaling policy or scheduled action" in reasons["manual"]
    assert "table/events (dynamodb:table:WriteCapacityUnits)" in failing(result)
    assert len(failing(result)) == 3


def test_auto_scaling_treats_cluster_autoscaler_groups_as_scaled(aws, make_context):
    asg(
        aws,
        "eks-nodes",
        MaxSize=6,
        AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": "k8s.io/cluster-autoscaler/enabled", "Value": "true"}],
    )
    result = run("resilience.auto_scaling", make_context())
    assert result.status == Status.PASS, result
    assert "Cluster Autoscaler" in result.findings[0].reason


def test_auto_scaling_errors_on_unexpected_validation_errors(aws, make_context):
    context = make_context()
    client = context.client("application-autoscaling")
    first = client.meta.service_model.shape_for("ServiceNamespace").enum[0]
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "describe_scalable_targets",
            service_error_code="ValidationException",
            service_message="1 validation error: resourceIds too long",
            expected_params={"ServiceNamespace": first},
        )
        result = run("resilience.auto_scaling", context)
    assert result.status == Status.ERROR
    assert "application-autoscaling:DescribeScalableTargets" in result.summary


# Errors


@pytest.mark.parametrize(
    ("key", "service", "operation", "code", "expected"),
    [
        (
            "resilience.auto_scaling",
            "autoscaling",
            "describe_policies",
            "Throttling",
            "Throttled by AWS on autoscaling:DescribePolicies",
        ),
    ],
)
def test_failed_calls_become_error_results(
    aws, make_context, key, service, operation, code, expected
):
    assert_failed_call_is_an_error(make_context(), key, service, operation, code, expected)
