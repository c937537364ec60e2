"""Reliability / Health Checks: load balancers check the health of their targets."""

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
    key="resilience.health_checks",
    section=SECTION,
    item="Health Checks",
    title=(
        "Target groups behind a load balancer have health checks on and a healthy target; "
        "Auto Scaling groups behind a load balancer use ELB health checks"
    ),
    actions=(
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "autoscaling:DescribeAutoScalingGroups",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Turn on the target group's health check (`aws elbv2 modify-target-group "
        "--health-check-enabled --health-check-path /health`) pointing at an endpoint that "
        "checks the app's dependencies, and fix or replace unhealthy targets. On Auto Scaling "
        "groups attached to a load balancer set the health check type to ELB "
        "(`aws autoscaling update-auto-scaling-group --health-check-type ELB`, CloudFormation "
        "`HealthCheckType: ELB`) so instances failing the load balancer check are replaced."
    ),
)
def health_checks(context: ProbeContext) -> ProbeResult:
    elbv2 = context.client("elbv2")
    findings = []
    unattached = 0
    for group in context.paginate("elbv2", "describe_target_groups", "TargetGroups"):
        if not group.get("LoadBalancerArns"):
            unattached += 1  # serves no traffic, so there is nothing to health-check yet
            continue
        arn = group["TargetGroupArn"]
        if not group.get("HealthCheckEnabled"):
            findings.append(Finding(arn, Status.FAIL, "health checks disabled"))
            continue
        states = [
            t["TargetHealth"].get("State", "unknown")
            for t in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        ]
        healthy = states.count("healthy")
        check = (
            f"{group.get('HealthCheckProtocol', '')} {group.get('HealthCheckPath', '')}".strip()
            or "health check"
        )
        findings.append(
            Finding(
                arn,
                Status.PASS if healthy else Status.FAIL,
                f"{check}: {healthy} of {len(states)} target(s) healthy"
                if healthy
                else f"{check}: no healthy target ({len(states)} registered"
                + (f": {', '.join(sorted(set(states)))})" if states else ")"),
            )
        )
    attached_groups = 0
    for group in context.paginate(
        "autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups"
    ):
        if not (
            group.get("TargetGroupARNs")
            or group.get("LoadBalancerNames")
            or group.get("TrafficSources")
        ):
            continue
        attached_groups += 1
        kinds = {kind.strip() for kind in group.get("HealthCheckType", "EC2").split(",")}
        uses_lb_check = bool(kinds & {"ELB", "VPC_LATTICE"})
        findings.append(
            Finding(
                group["AutoScalingGroupARN"],
                Status.PASS if uses_lb_check else Status.FAIL,
                f"Auto Scaling group behind a load balancer with health check type "
                f"{group.get('HealthCheckType', 'EC2')}"
                + ("" if uses_lb_check else ": instances failing the LB check stay in service"),
            )
        )
    return verdict(
        findings,
        passed="All {total} target groups and attached Auto Scaling groups pass health checks",
        failed="{failed} of {total} target groups or Auto Scaling groups fail health checks",
        empty=(
            f"No target group attached to a load balancer and no Auto Scaling group behind one in "
            f"{context.region}"
        ),
        facts={
            "unattached_target_groups": unattached,
            "attached_auto_scaling_groups": attached_groups,
        },
    )
