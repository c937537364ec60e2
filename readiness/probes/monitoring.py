"""Monitoring & Observability: alarms that reach someone, subscribed alert topics, collected
logs, dashboards, tracing, and checks of the service from outside."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from readiness.probes.base import (
    GLOBAL_API_REGION,
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
ALARM_ACTION_KEYS = ("AlarmActions", "OKActions", "InsufficientDataActions")
# X-Ray answers GetTraceSummaries for windows of at most 24 hours: longer settings are clamped.
XRAY_MAX_WINDOW_MINUTES = 24 * 60
# Route 53 health checks that probe an endpoint from its checkers around the world; calculated,
# CloudWatch-metric and recovery-control checks look at nothing from outside.
ENDPOINT_CHECK_TYPES = {"HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP"}
# Route 53 deems an endpoint healthy when more than 18% of its checkers report it healthy.
ROUTE53_HEALTHY_FRACTION = 0.18


def _pages_in(
    context: ProbeContext, service: str, region: str, operation: str, key: str, **params
) -> Iterator[Any]:
    """context.paginate, for a client of another region than the probe's own."""
    if region == context.api_region:
        yield from context.paginate(service, operation, key, **params)
        return
    for page in context.client(service, region).get_paginator(operation).paginate(**params):
        yield from page.get(key, [])


def _token_pages(call: Callable[..., dict], key: str, **params) -> Iterator[Any]:
    """Every element of `key` for an operation botocore has no paginator for (NextToken)."""
    token = None
    while True:
        page = call(**params, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


def _arn_field(arn: str, index: int) -> str:
    parts = arn.split(":", 5)
    return parts[index] if len(parts) == 6 else ""


def _at_least_one(
    findings: Iterable[Finding], *, passed: str, partly: str, none: str, facts: dict
) -> ProbeResult:
    """PASS when everything passes, WARN when some pass and others do not, FAIL when none does.

    For items met by one working resource (a dashboard, a synthetic check): a broken extra one
    is worth a look but does not undo the one that works.
    """
    # verdict() orders the findings; the failed/warned summaries are replaced below.
    result = verdict(findings, passed=passed, failed="", warned="", empty="", facts=facts)
    if result.status not in (Status.FAIL, Status.WARN):
        return result
    passing = sum(f.status == Status.PASS for f in result.findings)
    counts = {"total": len(result.findings), "passing": passing}
    if passing:
        return replace(result, status=Status.WARN, summary=partly.format(**counts))
    return replace(result, status=Status.FAIL, summary=none.format(**counts))


# CloudWatch Alarms


def _alarms(context: ProbeContext) -> Iterator[tuple[str, dict]]:
    # Without AlarmTypes DescribeAlarms returns metric alarms only. moto ignores the filter and
    # always answers with metric alarms, so each type is read from its own key of its own call.
    for kind, key in (("MetricAlarm", "MetricAlarms"), ("CompositeAlarm", "CompositeAlarms")):
        for alarm in context.paginate("cloudwatch", "describe_alarms", key, AlarmTypes=[kind]):
            yield kind, alarm


@probe(
    key="monitoring.cloudwatch_alarms",
    section=SECTION,
    item="CloudWatch Alarms",
    title=(
        "The region has CloudWatch alarms; each has actions enabled, acts on ALARM, and "
        "notifies only SNS topics that exist"
    ),
    actions=("cloudwatch:DescribeAlarms", "sns:ListTopics"),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Create alarms on the metrics that show the service is failing (5XX count, latency p99, "
        "queue age, CPU/memory, DB connections): `aws cloudwatch put-metric-alarm ... "
        "--alarm-actions <SNS topic ARN>` (CloudFormation AWS::CloudWatch::Alarm AlarmActions). "
        "Turn actions back on with `aws cloudwatch enable-alarm-actions --alarm-names <name>`, "
        "and point AlarmActions/OKActions at an SNS topic that exists (re-create the topic or "
        "update the alarm)."
    ),
)
def cloudwatch_alarms(context: ProbeContext) -> ProbeResult:
    topics_of_region: dict[str, set[str]] = {}

    def topic_exists(arn: str, account: str) -> bool | None:
        """None when the topic lives in another account, whose topics cannot be listed here."""
        region = _arn_field(arn, 3)
        if _arn_field(arn, 4) != account:
            return None
        if region not in topics_of_region:
            topics_of_region[region] = {
                topic["TopicArn"]
                for topic in _pages_in(context, "sns", region, "list_topics", "Topics")
            }
        return arn in topics_of_region[region]

    findings = []
    kinds: Counter[str] = Counter()
    states: Counter[str] = Counter()
    for kind, alarm in _alarms(context):
        kinds[kind] += 1
        states[alarm.get("StateValue", "UNKNOWN")] += 1
        account = _arn_field(alarm["AlarmArn"], 4)
        sns_arns = sorted(
            {
                action
                for key in ALARM_ACTION_KEYS
                for action in alarm.get(key) or []
                if _arn_field(action, 2) == "sns"
            }
        )
        exists = {arn: topic_exists(arn, account) for arn in sns_arns}
        failures, warnings = [], []
        if alarm.get("ActionsEnabled") is False:
            failures.append("actions disabled: it changes state but notifies no one")
        missing = [arn.rsplit(":", 1)[-1] for arn, found in exists.items() if found is False]
        if missing:
            failures.append("notifies SNS topic(s) that do not exist: " + ", ".join(missing))
        if not alarm.get("AlarmActions"):
            warnings.append("no action when it enters ALARM")
        label = "composite alarm" if kind == "CompositeAlarm" else "metric alarm"
        if failures or warnings:
            status = Status.FAIL if failures else Status.WARN
            reason = f"{label}: " + "; ".join(failures + warnings)
        else:
            foreign = sum(found is None for found in exists.values())
            reason = (
                f"{label}, {len(alarm['AlarmActions'])} action(s) on ALARM, "
                f"{len(sns_arns) - foreign} SNS topic(s) found"
                + (f" ({foreign} in another account, not verified)" if foreign else "")
            )
            status = Status.PASS
        findings.append(Finding(alarm["AlarmArn"], status, reason))
    facts = {
        "metric_alarms": kinds["MetricAlarm"],
        "composite_alarms": kinds["CompositeAlarm"],
        "alarm_states": dict(states),
        "sns_regions_listed": sorted(topics_of_region),
    }
    if not findings:
        return ProbeResult(
            Status.FAIL,
            f"No CloudWatch metric or composite alarm in {context.region}: "
            "no critical metric is monitored",
            facts=facts,
        )
    return verdict(
        findings,
        passed="All {total} alarms have actions enabled and notify existing SNS topics",
        failed="{failed} of {total} alarms have actions disabled or notify a missing SNS topic",
        warned="{warned} of {total} alarms take no action when they enter ALARM",
        empty="",
        facts=facts,
    )


# SNS Notifications


@probe(
    key="monitoring.sns_subscriptions",
    section=SECTION,
    item="SNS Notifications",
    title=(
        "The region has SNS topics; each has a confirmed subscription and none delivers to a "
        "plain-HTTP endpoint"
    ),
    actions=("sns:ListTopics", "sns:ListSubscriptions"),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Subscribe the team to each alert topic (`aws sns subscribe --topic-arn <arn> "
        "--protocol email|https|sqs|lambda --notification-endpoint <endpoint>`, or an AWS "
        "Chatbot / incident-tool HTTPS endpoint) and confirm pending subscriptions (the email "
        "link, or ConfirmSubscription for HTTPS). Replace http:// endpoints with https:// ones "
        "so alerts are not sent unencrypted, and delete topics nobody uses."
    ),
)
def sns_subscriptions(context: ProbeContext) -> ProbeResult:
    topics = [topic["TopicArn"] for topic in context.paginate("sns", "list_topics", "Topics")]
    if not topics:
        return ProbeResult(
            Status.FAIL,
            f"No SNS topic in {context.region}: alerts go nowhere",
            facts={"topics": 0},
        )
    # One ListSubscriptions for the region instead of one ListSubscriptionsByTopic per topic.
    subscriptions: dict[str, list[dict]] = defaultdict(list)
    for subscription in context.paginate("sns", "list_subscriptions", "Subscriptions"):
        subscriptions[subscription.get("TopicArn", "")].append(subscription)
    protocols: Counter[str] = Counter()
    findings = []
    for topic in topics:
        subs = subscriptions.get(topic, [])
        # Unconfirmed subscriptions carry "PendingConfirmation" (or "Deleted") instead of an ARN.
        confirmed = [s for s in subs if str(s.get("SubscriptionArn", "")).startswith("arn:")]
        plain_http = [s for s in subs if str(s.get("Protocol", "")).lower() == "http"]
        kinds = Counter(str(s.get("Protocol", "?")).lower() for s in confirmed)
        protocols.update(kinds)
        problems = []
        if not confirmed:
            pending = len(subs)
            problems.append(
                "no confirmed subscription"
                + (f" ({pending} pending confirmation)" if pending else "")
            )
        if plain_http:
            # Endpoints are not reported: they may hold tokens or people's addresses.
            problems.append(f"{len(plain_http)} subscription(s) to a plain-HTTP endpoint")
        if problems:
            findings.append(Finding(topic, Status.FAIL, "; ".join(problems)))
        else:
            described = ", ".join(f"{name} x{count}" for name, count in sorted(kinds.items()))
            reason = f"{len(confirmed)} confirmed subscription(s): {described}"
            findings.append(Finding(topic, Status.PASS, reason))
    return verdict(
        findings,
        passed="All {total} SNS topics have a confirmed subscription and no plain-HTTP endpoint",
        failed="{failed} of {total} SNS topics have no confirmed subscription or a plain-HTTP one",
        empty="",
        facts={
            "topics": len(topics),
            "confirmed_subscriptions_by_protocol": dict(protocols),
        },
    )


# Log Aggregation


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


# Dashboards


@probe(
    key="monitoring.dashboards",
    section=SECTION,
    item="Dashboards",
    title="At least one CloudWatch dashboard with widgets; empty dashboards are flagged",
    actions=("cloudwatch:ListDashboards", "cloudwatch:GetDashboard"),
    # The API is called per region, but AWS lists the account's dashboards (they are global
    # resources) from every region, so each region shows the same result; moto keeps them
    # per region.
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Create a dashboard for the service's key metrics (traffic, errors, latency, "
        "saturation): `aws cloudwatch put-dashboard --dashboard-name <name> "
        '--dashboard-body file://dashboard.json` with a non-empty "widgets" list '
        "(CloudFormation AWS::CloudWatch::Dashboard), and add widgets to, or delete, empty ones."
    ),
)
def dashboards(context: ProbeContext) -> ProbeResult:
    cloudwatch = context.client("cloudwatch")
    findings = []
    for entry in context.paginate("cloudwatch", "list_dashboards", "DashboardEntries"):
        body = cloudwatch.get_dashboard(DashboardName=entry["DashboardName"]).get("DashboardBody")
        widgets = json.loads(body or "{}").get("widgets") or []
        resource = entry.get("DashboardArn") or entry["DashboardName"]
        if widgets:
            findings.append(Finding(resource, Status.PASS, f"{len(widgets)} widget(s)"))
        else:
            findings.append(Finding(resource, Status.WARN, "no widgets"))
    if not findings:
        return ProbeResult(
            Status.FAIL,
            "No CloudWatch dashboard: key metrics are not gathered in one view",
            facts={"dashboards": 0},
        )
    return _at_least_one(
        findings,
        passed="All {total} CloudWatch dashboards have widgets",
        partly="{passing} of {total} CloudWatch dashboards have widgets; the others are empty",
        none="All {total} CloudWatch dashboards are empty",
        facts={"dashboards": len(findings)},
    )


# Distributed Tracing


@probe(
    key="monitoring.xray_tracing",
    section=SECTION,
    item="Distributed Tracing",
    title=(
        "Lambda functions and API Gateway REST stages have X-Ray tracing on, and traces "
        "arrived recently"
    ),
    actions=("lambda:ListFunctions", "apigateway:GET", "xray:GetTraceSummaries"),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Turn on active tracing: `aws lambda update-function-configuration --function-name "
        "<name> --tracing-config Mode=Active` (SAM Tracing: Active) and, for REST APIs, "
        "`aws apigateway update-stage --rest-api-id <id> --stage-name <stage> "
        "--patch-operations op=replace,path=/tracingEnabled,value=true` (TracingEnabled on "
        "AWS::ApiGateway::Stage). The function role needs xray:PutTraceSegments "
        "(AWSXRayDaemonWriteAccess); if no trace arrives, check the sampling rules."
    ),
)
def xray_tracing(context: ProbeContext) -> ProbeResult:
    findings = []
    functions = stages = 0
    for function in context.paginate("lambda", "list_functions", "Functions"):
        functions += 1
        mode = (function.get("TracingConfig") or {}).get("Mode", "PassThrough")
        findings.append(
            Finding(
                function["FunctionArn"],
                Status.PASS if mode == "Active" else Status.FAIL,
                f"Lambda tracing mode {mode}",
            )
        )
    apigateway = context.client("apigateway")
    # HTTP and WebSocket APIs (apigatewayv2) cannot send traces to X-Ray, so only REST APIs.
    for api in context.paginate("apigateway", "get_rest_apis", "items"):
        for stage in apigateway.get_stages(restApiId=api["id"]).get("item", []):
            stages += 1
            traced = bool(stage.get("tracingEnabled"))
            findings.append(
                Finding(
                    f"arn:aws:apigateway:{context.region}::/restapis/{api['id']}"
                    f"/stages/{stage['stageName']}",
                    Status.PASS if traced else Status.FAIL,
                    f"REST API {api.get('name', api['id'])} stage {stage['stageName']}: "
                    + ("X-Ray tracing on" if traced else "X-Ray tracing off"),
                )
            )
    minutes = min(context.settings.recent_traces_minutes, XRAY_MAX_WINDOW_MINUTES)
    end = datetime.now(UTC)
    # One trace is enough: the generator stops paging at the first one.
    recent = next(
        iter(
            context.paginate(
                "xray",
                "get_trace_summaries",
                "TraceSummaries",
                StartTime=end - timedelta(minutes=minutes),
                EndTime=end,
            )
        ),
        None,
    )
    traced = any(finding.status == Status.PASS for finding in findings)
    traces_resource = f"X-Ray traces in {context.region}"
    if recent is not None:
        findings.append(
            Finding(traces_resource, Status.PASS, f"traces received in the last {minutes} min")
        )
    elif traced:
        findings.append(
            Finding(
                traces_resource,
                Status.WARN,
                f"tracing is on but no trace arrived in the last {minutes} min",
            )
        )
    return verdict(
        findings,
        passed=f"X-Ray tracing on for {functions} Lambda functions and {stages} REST API "
        f"stages; traces arrived in the last {minutes} min",
        failed="{failed} of "
        + f"{functions} Lambda functions and {stages} REST API stages have X-Ray tracing off",
        warned=f"Tracing is on but no X-Ray trace arrived in the last {minutes} min",
        empty=f"Nothing to trace in {context.region}: no Lambda function, no API Gateway REST "
        f"stage and no X-Ray trace in the last {minutes} min",
        facts={
            "functions": functions,
            "rest_api_stages": stages,
            "recent_traces": recent is not None,
            "recent_traces_minutes": minutes,
        },
    )


# Synthetic Monitoring


def _last_completed_run(synthetics, name: str, last: dict | None) -> dict | None:
    """The canary's latest finished run; DescribeCanariesLastRun may show one in progress."""
    if not last or last.get("Status", {}).get("State") != "RUNNING":
        return last
    for run in _token_pages(synthetics.get_canary_runs, "CanaryRuns", Name=name):
        if run.get("Status", {}).get("State") in ("PASSED", "FAILED"):
            return run
    return None


def _canary_findings(context: ProbeContext) -> list[Finding]:
    synthetics = context.client("synthetics")
    canaries = list(_token_pages(synthetics.describe_canaries, "Canaries"))
    if not canaries:
        return []
    last_runs = {
        entry["CanaryName"]: entry.get("LastRun")
        for entry in _token_pages(synthetics.describe_canaries_last_run, "CanariesLastRun")
    }
    findings = []
    for canary in canaries:
        name = canary["Name"]
        resource = f"canary {name}"
        state = canary.get("Status", {}).get("State", "UNKNOWN")
        if state != "RUNNING":
            findings.append(Finding(resource, Status.WARN, f"canary {state}: not checking"))
            continue
        run = _last_completed_run(synthetics, name, last_runs.get(name))
        run_state = (run or {}).get("Status", {}).get("State")
        if run_state == "PASSED":
            findings.append(Finding(resource, Status.PASS, "running; last run passed"))
        elif run_state == "FAILED":
            why = run.get("Status", {}).get("StateReason") or "no reason given"
            findings.append(Finding(resource, Status.FAIL, f"running; last run failed: {why}"))
        else:
            findings.append(Finding(resource, Status.WARN, "running; no finished run yet"))
    return findings


def _health_check_findings(context: ProbeContext) -> tuple[list[Finding], int]:
    route53 = context.client("route53", GLOBAL_API_REGION)
    findings, not_external = [], 0
    for check in _pages_in(
        context, "route53", GLOBAL_API_REGION, "list_health_checks", "HealthChecks"
    ):
        config = check.get("HealthCheckConfig", {})
        kind = config.get("Type", "")
        if kind not in ENDPOINT_CHECK_TYPES or config.get("Inverted"):
            not_external += 1
            continue
        resource = f"arn:aws:route53:::healthcheck/{check['Id']}"
        target = config.get("FullyQualifiedDomainName") or config.get("IPAddress") or "?"
        label = f"Route 53 {kind} check of {target}"
        if config.get("Disabled"):
            findings.append(
                Finding(resource, Status.WARN, f"{label} is disabled (reported healthy unchecked)")
            )
            continue
        observations = route53.get_health_check_status(HealthCheckId=check["Id"]).get(
            "HealthCheckObservations", []
        )
        reports = [o.get("StatusReport", {}).get("Status", "") for o in observations]
        healthy = sum(report.startswith("Success") for report in reports)
        if not reports:
            findings.append(Finding(resource, Status.WARN, f"{label}: no checker reported yet"))
        elif healthy / len(reports) > ROUTE53_HEALTHY_FRACTION:
            findings.append(
                Finding(
                    resource,
                    Status.PASS,
                    f"{label}: {healthy} of {len(reports)} checkers report healthy",
                )
            )
        else:
            failure = next(r for r in reports if not r.startswith("Success"))
            findings.append(
                Finding(
                    resource,
                    Status.FAIL,
                    f"{label}: {healthy} of {len(reports)} checkers report healthy ({failure})",
                )
            )
    return findings, not_external


@probe(
    key="monitoring.synthetic_checks",
    section=SECTION,
    item="Synthetic Monitoring",
    title=(
        "A running CloudWatch Synthetics canary whose last run passed, or a healthy Route 53 "
        "endpoint health check"
    ),
    actions=(
        "synthetics:DescribeCanaries",
        "synthetics:DescribeCanariesLastRun",
        "synthetics:GetCanaryRuns",
        "route53:ListHealthChecks",
        "route53:GetHealthCheckStatus",
    ),
    # Canaries are regional; Route 53 health checks are global and probe from checkers around
    # the world. The probe runs per region and counts the account's Route 53 checks in every
    # region, since an endpoint check is the external check of whatever runs there: either
    # kind passing meets the item. Broken or stopped extra monitors make it a WARN.
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Check the service from outside: a CloudWatch Synthetics canary on the public URL "
        "(`aws synthetics create-canary ...` then `aws synthetics start-canary --name <name>`; "
        "the console's heartbeat blueprint) or a Route 53 health check (`aws route53 "
        "create-health-check --health-check-config Type=HTTPS,FullyQualifiedDomainName=<host>,"
        "ResourcePath=/health`), with a CloudWatch alarm on its failure. Fix what a failing "
        "check reports, and start or delete stopped canaries."
    ),
)
def synthetic_checks(context: ProbeContext) -> ProbeResult:
    canaries = _canary_findings(context)
    health_checks, not_external = _health_check_findings(context)
    facts = {
        "canaries": len(canaries),
        "route53_endpoint_checks": len(health_checks),
        "route53_other_checks": not_external,
        "healthy_fraction_over": ROUTE53_HEALTHY_FRACTION,
    }
    if not canaries and not health_checks:
        return ProbeResult(
            Status.FAIL,
            f"No CloudWatch Synthetics canary in {context.region} and no Route 53 endpoint "
            "health check: nothing checks the service from outside",
            facts=facts,
        )
    return _at_least_one(
        canaries + health_checks,
        passed="All {total} synthetic checks pass",
        partly="{passing} of {total} synthetic checks pass; the others fail or are stopped",
        none="None of {total} synthetic checks passes: the service is not seen healthy "
        "from outside",
        facts=facts,
    )
