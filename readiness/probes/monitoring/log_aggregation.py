"""Monitoring & Observability / Log Aggregation: VPC flow logs, load balancer access logs,
CloudTrail in CloudWatch Logs, and log groups that keep what they collect."""

from __future__ import annotations

from collections import Counter, defaultdict

from readiness.probes.aws import _arn_field
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

SECTION = "Monitoring & Observability"


@probe(
    key="monitoring.vpc_flow_logs",
    section=SECTION,
    item="Log Aggregation",
    title="Every VPC has an active flow log",
    actions=("ec2:DescribeVpcs", "ec2:DescribeFlowLogs"),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Create a VPC flow log for each VPC: `aws ec2 create-flow-logs --resource-type VPC "
        "--resource-ids <vpc-id> --traffic-type ALL --log-destination-type cloud-watch-logs "
        "--log-group-name <group> --deliver-logs-permission-arn <role>` (or an S3 destination; "
        "CloudFormation AWS::EC2::FlowLog). Fix a failing delivery by granting the role or "
        "bucket policy the flow log needs."
    ),
)
def vpc_flow_logs(context: ProbeContext) -> ProbeResult:
    vpcs = [vpc["VpcId"] for vpc in context.paginate("ec2", "describe_vpcs", "Vpcs")]
    flow_logs: dict[str, list[dict]] = defaultdict(list)
    if vpcs:
        for flow_log in context.paginate("ec2", "describe_flow_logs", "FlowLogs"):
            flow_logs[flow_log.get("ResourceId", "")].append(flow_log)
    findings = []
    for vpc in vpcs:
        active = [f for f in flow_logs.get(vpc, []) if f.get("FlowLogStatus") == "ACTIVE"]
        delivering = [f for f in active if f.get("DeliverLogsStatus") != "FAILED"]
        if delivering:
            first = delivering[0]
            findings.append(
                Finding(
                    vpc,
                    Status.PASS,
                    f"flow log {first.get('FlowLogId')} ({first.get('TrafficType', '?')} traffic)"
                    f" to {first.get('LogDestinationType', 'cloud-watch-logs')}",
                )
            )
        elif active:
            error = active[0].get("DeliverLogsErrorMessage") or "delivery failed"
            findings.append(Finding(vpc, Status.WARN, f"flow log active, not delivered: {error}"))
        else:
            inactive = len(flow_logs.get(vpc, []))
            findings.append(
                Finding(
                    vpc,
                    Status.FAIL,
                    "no active flow log" + (f" ({inactive} inactive)" if inactive else ""),
                )
            )
    return verdict(
        findings,
        passed="All {total} VPCs have an active flow log",
        failed="{failed} of {total} VPCs have no active flow log",
        warned="{warned} of {total} VPCs have a flow log whose delivery fails",
        empty=f"No VPC in {context.region}",
        facts={"vpcs": len(vpcs), "flow_logs": sum(len(v) for v in flow_logs.values())},
    )


@probe(
    key="monitoring.load_balancer_access_logs",
    section=SECTION,
    item="Log Aggregation",
    title="Every Application Load Balancer (and Network Load Balancer with a TLS listener) "
    "writes access logs",
    actions=(
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
        "elasticloadbalancing:DescribeListeners",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Turn on access logs: `aws elbv2 modify-load-balancer-attributes --load-balancer-arn "
        "<arn> --attributes Key=access_logs.s3.enabled,Value=true "
        "Key=access_logs.s3.bucket,Value=<bucket>` (CloudFormation LoadBalancerAttributes; "
        "Terraform access_logs { enabled = true }). The bucket policy must let the regional "
        "ELB log delivery principal write."
    ),
)
def load_balancer_access_logs(context: ProbeContext) -> ProbeResult:
    elbv2 = context.client("elbv2")
    findings = []
    skipped: Counter[str] = Counter()
    for balancer in context.paginate("elbv2", "describe_load_balancers", "LoadBalancers"):
        arn, kind = balancer["LoadBalancerArn"], balancer.get("Type", "application")
        if kind == "gateway":
            skipped["gateway (no access logs)"] += 1
            continue
        if kind == "network":
            # NLBs write access logs for TLS listeners only; a TCP/UDP-only NLB has none to
            # write (its traffic shows in VPC flow logs).
            listeners = context.paginate(
                "elbv2", "describe_listeners", "Listeners", LoadBalancerArn=arn
            )
            if not any(listener.get("Protocol") == "TLS" for listener in listeners):
                skipped["network without TLS listener"] += 1
                continue
        attributes = {
            attribute["Key"]: attribute.get("Value", "")
            for attribute in elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)[
                "Attributes"
            ]
        }
        if attributes.get("access_logs.s3.enabled") == "true":
            where = "/".join(
                part
                for part in (
                    attributes.get("access_logs.s3.bucket"),
                    attributes.get("access_logs.s3.prefix"),
                )
                if part
            )
            findings.append(Finding(arn, Status.PASS, f"{kind}: access logs to s3://{where}"))
        else:
            findings.append(
                Finding(arn, Status.FAIL, f"{kind}: access logs off (access_logs.s3.enabled)")
            )
    return verdict(
        findings,
        passed="All {total} load balancers write access logs",
        failed="{failed} of {total} load balancers do not write access logs",
        empty=f"No Application Load Balancer or TLS Network Load Balancer in {context.region}",
        facts={"not_judged": dict(skipped)},
    )


TRAIL_ORDER = {Status.FAIL: 0, Status.WARN: 1, Status.PASS: 2}


@probe(
    key="monitoring.cloudtrail_cloudwatch_logs",
    section=SECTION,
    item="Log Aggregation",
    title="A logging multi-region CloudTrail trail delivers to CloudWatch Logs",
    actions=("cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus"),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Send the multi-region trail to CloudWatch Logs: `aws cloudtrail update-trail --name "
        "<trail> --cloud-watch-logs-log-group-arn <log group ARN> --cloud-watch-logs-role-arn "
        "<role ARN>` (CloudFormation CloudWatchLogsLogGroupArn / CloudWatchLogsRoleArn), with a "
        "role that may logs:CreateLogStream and logs:PutLogEvents on the group, then "
        "`aws cloudtrail start-logging --name <trail>`."
    ),
)
def cloudtrail_cloudwatch_logs(context: ProbeContext) -> ProbeResult:
    # includeShadowTrails lists multi-region trails homed in other regions too; single-region
    # trails of other regions do not show, and cannot cover the account anyway.
    trails = context.client("cloudtrail").describe_trails(includeShadowTrails=True)["trailList"]
    if not trails:
        return ProbeResult(
            Status.FAIL,
            "No CloudTrail trail: API activity is not collected in CloudWatch Logs",
            facts={"trails": 0},
        )
    judged = []
    for trail in trails:
        arn, group = trail["TrailARN"], trail.get("CloudWatchLogsLogGroupArn")
        if not group:
            judged.append((arn, Status.FAIL, "no CloudWatch Logs log group"))
            continue
        # Status is read from the trail's home region.
        status = context.client("cloudtrail", trail.get("HomeRegion") or context.api_region)
        trail_status = status.get_trail_status(Name=arn)
        log_group = _arn_field(group, 5).removeprefix("log-group:").removesuffix(":*")
        if not trail_status.get("IsLogging"):
            judged.append((arn, Status.FAIL, f"delivers to {log_group} but is not logging"))
        elif trail_status.get("LatestCloudWatchLogsDeliveryError"):
            error = trail_status["LatestCloudWatchLogsDeliveryError"]
            judged.append((arn, Status.WARN, f"delivery to {log_group} fails: {error}"))
        elif not trail.get("IsMultiRegionTrail"):
            judged.append(
                (arn, Status.WARN, f"single-region trail: only its region reaches {log_group}")
            )
        else:
            judged.append((arn, Status.PASS, f"multi-region, logging, delivers to {log_group}"))
    covered = any(status == Status.PASS for _, status, _ in judged)
    # Once one multi-region trail delivers, other trails (e.g. data events to S3) are extras.
    findings = tuple(
        Finding(arn, Status.WARN if covered and status == Status.FAIL else status, reason)
        for arn, status, reason in sorted(judged, key=lambda j: TRAIL_ORDER[j[1]])
    )
    statuses = {finding.status for finding in findings}
    delivering = sum(1 for _, status, _ in judged if status != Status.FAIL)
    if covered:
        result_status = Status.PASS
        summary = f"A multi-region trail delivers to CloudWatch Logs ({len(trails)} trails)"
    elif Status.WARN in statuses:
        result_status = Status.WARN
        summary = (
            f"{delivering} of {len(trails)} trails deliver to CloudWatch Logs, none from "
            "every region without errors"
        )
    else:
        result_status = Status.FAIL
        summary = f"None of {len(trails)} trails delivers to CloudWatch Logs while logging"
    return ProbeResult(result_status, summary, findings, facts={"trails": len(trails)})


@probe(
    key="monitoring.log_groups",
    section=SECTION,
    item="Log Aggregation",
    title="The region has at least one CloudWatch Logs log group",
    actions=("logs:DescribeLogGroups",),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Send application and platform logs to CloudWatch Logs: the awslogs/FireLens log "
        "driver for ECS, the CloudWatch agent for EC2, Lambda's own log group, or "
        "`aws logs create-log-group --log-group-name <name>` then `aws logs put-retention-policy`"
        " so they do not grow forever."
    ),
)
def log_groups(context: ProbeContext) -> ProbeResult:
    findings = []
    for group in context.paginate("logs", "describe_log_groups", "logGroups"):
        retention = group.get("retentionInDays")
        findings.append(
            Finding(
                group.get("logGroupArn") or group.get("arn") or group["logGroupName"],
                Status.PASS,
                f"retention {retention} days" if retention else "retention: never expires",
            )
        )
    if not findings:
        return ProbeResult(
            Status.FAIL,
            f"No CloudWatch Logs log group in {context.region}: no logs are aggregated",
            facts={"log_groups": 0},
        )
    return verdict(
        findings,
        passed="{total} CloudWatch Logs log groups",
        failed="",
        empty="",
        facts={
            "log_groups": len(findings),
            "without_retention": sum(f.reason.endswith("never expires") for f in findings),
        },
    )
