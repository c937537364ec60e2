import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry
from readiness.probes.resilience import duration

REGION = "us-east-1"
PASSWORD = "a-long-password-1"


def run(key, context):
    return execute(registry()[key], context).result


def failing(result):
    return {f.resource for f in result.findings if f.status == Status.FAIL}


def names(resources):
    return {r.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for r in resources}


def subnets(aws, zones=("us-east-1a", "us-east-1b")):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ids = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for n, zone in enumerate(zones)
    ]
    return vpc, ids


def rds_instance(aws, name, **extra):
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
        AllocatedStorage=20,
        **extra,
    )


def aurora(aws, name, zones):
    rds = aws.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
    )
    for n, zone in enumerate(zones):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{name}-{n}",
            Engine="aurora-postgresql",
            DBInstanceClass="db.r5.large",
            DBClusterIdentifier=name,
            AvailabilityZone=zone,
        )


def asg(aws, name, **params):
    autoscaling = aws.client("autoscaling")
    if not autoscaling.describe_launch_configurations(LaunchConfigurationNames=["lc"])[
        "LaunchConfigurations"
    ]:
        autoscaling.create_launch_configuration(
            LaunchConfigurationName="lc", ImageId="ami-12345678", InstanceType="t3.micro"
        )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchConfigurationName="lc", **{"MinSize": 0, **params}
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


def replication_group(aws, name, *, multi_az):
    aws.client("elasticache").create_replication_group(
        ReplicationGroupId=name,
        ReplicationGroupDescription=name,
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        NumCacheClusters=2 if multi_az else 1,
        MultiAZEnabled=multi_az,
        AutomaticFailoverEnabled=multi_az,
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


# Multi-AZ


def test_multi_az_passes_when_everything_spans_two_zones(aws, make_context):
    _vpc, subnet_ids = subnets(aws)
    rds_instance(aws, "orders", MultiAZ=True)
    aurora(aws, "ledger", ["us-east-1a", "us-east-1b"])
    asg(aws, "web", MaxSize=2, VPCZoneIdentifier=",".join(subnet_ids))
    aws.client("elbv2").create_load_balancer(Name="web", Subnets=subnet_ids)
    replication_group(aws, "sessions", multi_az=True)
    result = run("resilience.multi_az", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["rds_instances"] == 1  # aurora members are judged via their cluster
    assert len(result.findings) == 5


def test_multi_az_fails_single_zone_resources(aws, make_context):
    _vpc, subnet_ids = subnets(aws, zones=("us-east-1a",))
    rds_instance(aws, "orders")
    aurora(aws, "ledger", ["us-east-1a"])
    asg(aws, "web", MaxSize=2, AvailabilityZones=["us-east-1a"])
    aws.client("elbv2").create_load_balancer(Name="edge", Subnets=subnet_ids, Type="network")
    replication_group(aws, "sessions", multi_az=False)
    result = run("resilience.multi_az", make_context())
    assert result.status == Status.FAIL
    assert names(failing(result)) >= {"orders", "ledger", "web", "sessions"}
    assert any("/edge/" in r for r in failing(result))
    sessions = next(f for f in result.findings if f.resource.endswith(":sessions"))
    assert "Multi-AZ and automatic failover" in sessions.reason


def test_multi_az_not_applicable_without_resources(aws, make_context):
    assert run("resilience.multi_az", make_context()).status == Status.NOT_APPLICABLE


# Auto Scaling


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


# Health Checks


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


# RTO/RPO


def tiers(rto, rpo, region=False):
    names = ["AZ", "Hardware", "Software"] + (["Region"] if region else [])
    return {name: {"rtoInSecs": rto, "rpoInSecs": rpo} for name in names}


def test_rto_rpo_passes_when_policies_meet_targets_and_apps_have_one(aws, make_context):
    hub = aws.client("resiliencehub")
    policy = hub.create_resiliency_policy(
        policyName="gold", tier="MissionCritical", policy=tiers(1800, 300, region=True)
    )["policy"]["policyArn"]
    hub.create_app(name="checkout", policyArn=policy)
    result = run("resilience.rto_rpo", make_context())
    assert result.status == Status.PASS, result
    assert result.facts == {
        "resiliency_policies": 1,
        "apps": 1,
        "rto_target_seconds": 4 * 3600,
        "rpo_target_seconds": 3600,
    }
    assert "Region RTO 30m/RPO 5m" in next(
        f.reason for f in result.findings if f.resource == policy
    )


def test_rto_rpo_fails_loose_policies_and_apps_without_policy(aws, make_context):
    hub = aws.client("resiliencehub")
    loose = hub.create_resiliency_policy(
        policyName="bronze", tier="NonCritical", policy=tiers(86400, 3600)
    )["policy"]["policyArn"]
    orphan = hub.create_app(name="reports")["app"]["appArn"]
    result = run("resilience.rto_rpo", make_context(rpo_target_seconds=900))
    assert result.status == Status.FAIL
    assert failing(result) == {loose, orphan}
    reasons = {f.resource: f.reason for f in result.findings}
    assert "AZ RTO 24h > 4h" in reasons[loose]
    assert "AZ RPO 1h > 15m" in reasons[loose]
    assert "no resiliency policy assigned" in reasons[orphan]


def test_rto_rpo_fails_when_nothing_is_defined(aws, make_context):
    result = run("resilience.rto_rpo", make_context())
    assert result.status == Status.FAIL
    assert result.summary.startswith("No RTO/RPO defined in Resilience Hub")


def test_duration_is_readable():
    assert [duration(s) for s in (0, 45, 90, 3600, 5400)] == ["0s", "45s", "1m30s", "1h", "1h30m"]


# Errors


@pytest.mark.parametrize(
    ("key", "service", "operation", "code", "expected"),
    [
        (
            "resilience.multi_az",
            "rds",
            "describe_db_instances",
            "AccessDenied",
            "Access denied: the probe needs rds:DescribeDBInstances",
        ),
        (
            "resilience.auto_scaling",
            "autoscaling",
            "describe_policies",
            "Throttling",
            "Throttled by AWS on autoscaling:DescribePolicies",
        ),
        (
            "resilience.health_checks",
            "elbv2",
            "describe_target_groups",
            "AccessDenied",
            "Access denied: the probe needs elasticloadbalancing:DescribeTargetGroups",
        ),
        # What moto answers for a JSON operation it lacks: HTTP 500 with no error code.
        (
            "resilience.rto_rpo",
            "resiliencehub",
            "list_resiliency_policies",
            "500",
            "resiliencehub:ListResiliencyPolicies answered HTTP 500 with no error code",
        ),
    ],
)
def test_failed_calls_become_error_results(
    aws, make_context, key, service, operation, code, expected
):
    context = make_context()
    client = context.client(service)
    with Stubber(client) as stubber:
        stubber.add_client_error(operation, service_error_code=code, http_status_code=500)
        result = run(key, context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(expected), result.summary
