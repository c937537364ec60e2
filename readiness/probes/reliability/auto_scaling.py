"""Reliability / Auto Scaling: compute that scales with its load."""

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
