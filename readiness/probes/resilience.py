"""Reliability: Multi-AZ placement, auto scaling, health checks and RTO/RPO targets."""

from collections.abc import Callable, Iterator

from botocore.exceptions import ClientError

from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    parallel_map,
    probe,
    verdict,
)

SECTION = "Reliability"
# Auto Scaling groups driven by the Kubernetes Cluster Autoscaler have no scaling policy of
# their own: the autoscaler sets the desired capacity, and it finds its groups by this tag.
CLUSTER_AUTOSCALER_TAG = "k8s.io/cluster-autoscaler/enabled"
RESILIENCY_TIERS = ("AZ", "Hardware", "Software", "Region")


def _pages(call: Callable[..., dict], key: str, **params) -> Iterator[dict]:
    """Every element of `key` for an operation without a botocore paginator (nextToken)."""
    while True:
        page = call(**params)
        yield from page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return
        params["nextToken"] = token


def duration(seconds: int) -> str:
    """3600 -> "1h", 5400 -> "1h30m", 90 -> "1m30s": readable RTO/RPO values."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
    return text or "0s"


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


def _service_namespaces(context: ProbeContext) -> list[str]:
    # Taken from the SDK's model so new Application Auto Scaling services are covered as the
    # SDK learns them; the API has no "all namespaces" listing.
    model = context.client("application-autoscaling").meta.service_model
    return list(model.shape_for("ServiceNamespace").enum)


def _unknown_namespace(exc: ClientError) -> bool:
    # An endpoint that does not know a namespace (a newer one than the region or emulator
    # supports) rejects it with this validation error; it has no targets there to judge.
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationException" and "serviceNamespace" in str(
        error.get("Message", "")
    )


@probe(
    key="resilience.auto_scaling",
    section=SECTION,
    item="Auto Scaling",
    title=(
        "Auto Scaling groups can grow (MaxSize > MinSize) and have a scaling policy or scheduled "
        "action; Application Auto Scaling targets have a scaling policy"
    ),
    actions=(
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribePolicies",
        "autoscaling:DescribeScheduledActions",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "EC2 Auto Scaling: set MaxSize above MinSize and add a target tracking policy "
        "(`aws autoscaling put-scaling-policy --policy-type TargetTrackingScaling`) or a "
        "scheduled action. ECS services, DynamoDB tables, Lambda provisioned concurrency and "
        "other scalable targets: register a target with MaxCapacity above MinCapacity and attach "
        "a target tracking policy (`aws application-autoscaling put-scaling-policy`, Terraform "
        "`aws_appautoscaling_policy`)."
    ),
)
def auto_scaling(context: ProbeContext) -> ProbeResult:
    findings = []
    scaled_groups = {
        p["AutoScalingGroupName"]
        for p in context.paginate("autoscaling", "describe_policies", "ScalingPolicies")
    } | {
        a["AutoScalingGroupName"]
        for a in context.paginate(
            "autoscaling", "describe_scheduled_actions", "ScheduledUpdateGroupActions"
        )
    }
    groups = list(
        context.paginate("autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups")
    )
    for group in groups:
        name = group["AutoScalingGroupName"]
        problems = []
        if group["MaxSize"] <= group["MinSize"]:
            problems.append(f"MaxSize {group['MaxSize']} = MinSize {group['MinSize']}: cannot grow")
        external = any(t.get("Key") == CLUSTER_AUTOSCALER_TAG for t in group.get("Tags", []))
        if name not in scaled_groups and not external:
            problems.append("no scaling policy or scheduled action")
        findings.append(
            Finding(
                group["AutoScalingGroupARN"],
                Status.FAIL if problems else Status.PASS,
                "; ".join(problems)
                or f"Auto Scaling group {group['MinSize']}-{group['MaxSize']}, "
                + ("scaled by the Cluster Autoscaler" if external else "scaling policy in place"),
            )
        )

    def list_targets(namespace: str) -> list | None:
        try:
            return list(
                context.paginate(
                    "application-autoscaling",
                    "describe_scalable_targets",
                    "ScalableTargets",
                    ServiceNamespace=namespace,
                )
            )
        except ClientError as exc:
            if not _unknown_namespace(exc):
                raise
            return None

    # One call per namespace (about 15): concurrently, or they add up to a second per region.
    namespaces = _service_namespaces(context)
    listed = parallel_map(list_targets, namespaces)
    namespaces_skipped = [
        n for n, targets in zip(namespaces, listed, strict=True) if targets is None
    ]
    targets_judged = 0
    for namespace, targets in zip(namespaces, listed, strict=True):
        if not targets:
            continue
        with_policy = {
            (p["ResourceId"], p["ScalableDimension"])
            for p in context.paginate(
                "application-autoscaling",
                "describe_scaling_policies",
                "ScalingPolicies",
                ServiceNamespace=namespace,
            )
        }
        for target in targets:
            targets_judged += 1
            problems = []
            if target["MaxCapacity"] <= target["MinCapacity"]:
                problems.append(
                    f"MaxCapacity {target['MaxCapacity']} = MinCapacity {target['MinCapacity']}"
                )
            if (target["ResourceId"], target["ScalableDimension"]) not in with_policy:
                problems.append("no scaling policy")
            # The target ARN is opaque (scalable-target/0123abc); the resource and dimension
            # say what it is.
            findings.append(
                Finding(
                    f"{target['ResourceId']} ({target['ScalableDimension']})",
                    Status.FAIL if problems else Status.PASS,
                    "; ".join(problems) or f"{namespace} scalable target with a scaling policy",
                )
            )
    return verdict(
        findings,
        passed="All {total} Auto Scaling groups and scalable targets can scale on a policy",
        failed="{failed} of {total} Auto Scaling groups or scalable targets cannot scale",
        empty=(
            f"No EC2 Auto Scaling groups or Application Auto Scaling targets in {context.region}"
        ),
        facts={
            "auto_scaling_groups": len(groups),
            "scalable_targets": targets_judged,
            "namespaces_skipped": namespaces_skipped,
        },
    )


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


@probe(
    key="resilience.rto_rpo",
    section=SECTION,
    item="RTO/RPO",
    title=(
        "Resilience Hub has resiliency policies within the RTO/RPO targets and every "
        "application has a policy"
    ),
    actions=(
        "resiliencehub:ListResiliencyPolicies",
        "resiliencehub:ListApps",
        "resiliencehub:DescribeApp",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Define RTO and RPO per disruption type in an AWS Resilience Hub resiliency policy "
        "(`aws resiliencehub create-resiliency-policy`, tiers AZ, Hardware, Software, Region) "
        "no looser than the agreed targets, add each application to Resilience Hub and assign "
        "it that policy (`aws resiliencehub update-app --policy-arn`), then run an assessment."
    ),
)
def rto_rpo(context: ProbeContext) -> ProbeResult:
    hub = context.client("resiliencehub")
    rto_target = context.settings.rto_target_seconds
    rpo_target = context.settings.rpo_target_seconds
    findings = []
    policies = list(_pages(hub.list_resiliency_policies, "resiliencyPolicies"))
    for policy in policies:
        tiers = policy.get("policy", {})
        too_loose, defined = [], []
        for tier in RESILIENCY_TIERS:
            if tier not in tiers:
                continue
            rto, rpo = tiers[tier].get("rtoInSecs", 0), tiers[tier].get("rpoInSecs", 0)
            defined.append(f"{tier} RTO {duration(rto)}/RPO {duration(rpo)}")
            if rto > rto_target:
                too_loose.append(f"{tier} RTO {duration(rto)} > {duration(rto_target)}")
            if rpo > rpo_target:
                too_loose.append(f"{tier} RPO {duration(rpo)} > {duration(rpo_target)}")
        if not defined:
            too_loose.append("defines no RTO/RPO for any disruption type")
        findings.append(
            Finding(
                policy["policyArn"],
                Status.FAIL if too_loose else Status.PASS,
                f"policy {policy.get('policyName')}: "
                + ("; ".join(too_loose) if too_loose else ", ".join(defined)),
            )
        )
    names = {policy["policyArn"]: policy.get("policyName") for policy in policies}
    apps = list(_pages(hub.list_apps, "appSummaries"))
    for summary in apps:
        # ListApps summaries carry no policy ARN; only DescribeApp has it.
        policy_arn = hub.describe_app(appArn=summary["appArn"])["app"].get("policyArn")
        findings.append(
            Finding(
                summary["appArn"],
                Status.PASS if policy_arn else Status.FAIL,
                f"app {summary.get('name')}: policy {names.get(policy_arn, policy_arn)}"
                if policy_arn
                else f"app {summary.get('name')}: no resiliency policy assigned",
            )
        )
    facts = {
        "resiliency_policies": len(policies),
        "apps": len(apps),
        "rto_target_seconds": rto_target,
        "rpo_target_seconds": rpo_target,
    }
    if not findings:
        return ProbeResult(
            Status.FAIL,
            f"No RTO/RPO defined in Resilience Hub in {context.region}: no resiliency policies "
            "and no applications",
            facts=facts,
        )
    return verdict(
        findings,
        passed=(
            f"{len(policies)} resiliency policies within RTO {duration(rto_target)}/RPO "
            f"{duration(rpo_target)}; all {len(apps)} apps have a policy"
        ),
        failed=(
            "{failed} of {total} Resilience Hub policies or apps fail: RTO/RPO looser than "
            "the targets, or no policy assigned"
        ),
        empty="",
        facts=facts,
    )
