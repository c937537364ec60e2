"""Reliability / Multi-AZ: critical resources deployed across Availability Zones."""

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

SECTION = "Reliability"


@probe(
    key="resilience.multi_az",
    section=SECTION,
    item="Multi-AZ",
    title=(
        "RDS instances are Multi-AZ; RDS clusters, Auto Scaling groups and load balancers span "
        "2+ AZs; ElastiCache replication groups have Multi-AZ and automatic failover"
    ),
    actions=(
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "autoscaling:DescribeAutoScalingGroups",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticache:DescribeReplicationGroups",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "RDS: modify the instance with Multi-AZ deployment on (`aws rds modify-db-instance "
        "--multi-az`, CloudFormation `MultiAZ: true`); Aurora/Multi-AZ clusters: add a reader in "
        "a second AZ. Auto Scaling groups: list subnets in at least two AZs "
        "(`VPCZoneIdentifier`). Load balancers: attach subnets in two or more AZs "
        "(`aws elbv2 set-subnets`). ElastiCache: enable Multi-AZ and automatic failover with at "
        "least one replica (`--multi-az-enabled --automatic-failover-enabled`)."
    ),
)
def multi_az(context: ProbeContext) -> ProbeResult:
    findings = []
    instances = list(context.paginate("rds", "describe_db_instances", "DBInstances"))
    az_of_instance = {db["DBInstanceIdentifier"]: db.get("AvailabilityZone") for db in instances}
    for db in instances:
        if db.get("DBClusterIdentifier"):
            continue  # Aurora, DocumentDB, Neptune members: judged with their cluster below
        findings.append(
            Finding(
                db["DBInstanceArn"],
                Status.PASS if db.get("MultiAZ") else Status.FAIL,
                f"RDS instance Multi-AZ (primary in {db.get('AvailabilityZone')})"
                if db.get("MultiAZ")
                else f"RDS instance single-AZ in {db.get('AvailabilityZone')}",
            )
        )
    clusters = list(context.paginate("rds", "describe_db_clusters", "DBClusters"))
    for cluster in clusters:
        members = [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])]
        zones = sorted({az_of_instance[m] for m in members if az_of_instance.get(m)})
        spans = len(zones) >= 2 or bool(cluster.get("MultiAZ"))
        findings.append(
            Finding(
                cluster["DBClusterArn"],
                Status.PASS if spans else Status.FAIL,
                f"RDS cluster: {len(members)} instance(s) in {', '.join(zones) or 'no AZ'}"
                + ("" if spans else "; no instance in a second AZ to fail over to"),
            )
        )
    groups = list(
        context.paginate("autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups")
    )
    for group in groups:
        zones = sorted(set(group.get("AvailabilityZones", [])))
        findings.append(
            Finding(
                group["AutoScalingGroupARN"],
                Status.PASS if len(zones) >= 2 else Status.FAIL,
                f"Auto Scaling group in {len(zones)} AZ(s): {', '.join(zones) or 'none'}",
            )
        )
    balancers = list(context.paginate("elbv2", "describe_load_balancers", "LoadBalancers"))
    for balancer in balancers:
        zones = sorted({z["ZoneName"] for z in balancer.get("AvailabilityZones", [])})
        findings.append(
            Finding(
                balancer["LoadBalancerArn"],
                Status.PASS if len(zones) >= 2 else Status.FAIL,
                f"{balancer.get('Type', 'application')} load balancer in {len(zones)} AZ(s): "
                f"{', '.join(zones) or 'none'}",
            )
        )
    replication_groups = list(
        context.paginate("elasticache", "describe_replication_groups", "ReplicationGroups")
    )
    for group in replication_groups:
        missing = [
            label
            for label, value in (
                ("Multi-AZ", group.get("MultiAZ")),
                ("automatic failover", group.get("AutomaticFailover")),
            )
            if value != "enabled"
        ]
        findings.append(
            Finding(
                group.get("ARN") or group["ReplicationGroupId"],
                Status.FAIL if missing else Status.PASS,
                f"ElastiCache replication group without {' and '.join(missing)}"
                if missing
                else "ElastiCache replication group with Multi-AZ and automatic failover",
            )
        )
    return verdict(
        findings,
        passed="All {total} resources span two or more AZs",
        failed="{failed} of {total} resources are confined to one AZ or cannot fail over",
        empty=(
            f"No RDS instances or clusters, Auto Scaling groups, load balancers or ElastiCache "
            f"replication groups in {context.region}"
        ),
        facts={
            "rds_instances": sum(not db.get("DBClusterIdentifier") for db in instances),
            "rds_clusters": len(clusters),
            "auto_scaling_groups": len(groups),
            "load_balancers": len(balancers),
            "elasticache_replication_groups": len(replication_groups),
            "minimum_azs": 2,
        },
    )
