import pytest

from readiness.probes.base import Status
from tests.readiness.probes.reliability.helpers import (
    PASSWORD,
    asg,
    assert_failed_call_is_an_error,
    failing,
    names,
    run,
    subnets,
)


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
    ],
)
def test_failed_calls_become_error_results(
    aws, make_context, key, service, operation, code, expected
):
    assert_failed_call_is_an_error(make_context(), key, service, operation, code, expected)
