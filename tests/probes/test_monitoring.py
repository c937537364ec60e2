import io
import json
import time
import zipfile
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry

REGION = "us-east-1"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
WIDGETS = {
    "widgets": [
        {
            "type": "metric",
            "x": 0,
            "y": 0,
            "width": 12,
            "height": 6,
            "properties": {
                "metrics": [["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"]],
                "region": REGION,
            },
        }
    ]
}


def run(key, context):
    return execute(registry()[key], context).result


def statuses(result) -> dict[str, Status]:
    return {finding.resource: finding.status for finding in result.findings}


def _without_metadata(response: dict) -> dict:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


# CloudWatch Alarms


def _topic(aws, name: str, region: str = REGION) -> str:
    return aws.client("sns", region_name=region).create_topic(Name=name)["TopicArn"]


def _alarm(aws, name: str, **kwargs) -> str:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
        **kwargs,
    )
    return cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]


def test_alarms_pass_when_enabled_and_notifying_existing_topics(aws, make_context):
    topic = _topic(aws, "oncall")
    _alarm(aws, "api-5xx", AlarmActions=[topic], OKActions=[topic])
    _alarm(aws, "queue-age", AlarmActions=[topic])
    result = run("monitoring.cloudwatch_alarms", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["metric_alarms"] == 2
    assert result.facts["sns_regions_listed"] == [REGION]


def test_alarms_fail_when_disabled_or_notifying_a_deleted_topic_and_warn_without_actions(
    aws, make_context
):
    topic = _topic(aws, "oncall")
    gone = topic.replace(":oncall", ":deleted-team")
    disabled = _alarm(aws, "api-5xx", AlarmActions=[topic], ActionsEnabled=False)
    dangling = _alarm(aws, "db-cpu", AlarmActions=[gone])
    silent = _alarm(aws, "latency")
    result = run("monitoring.cloudwatch_alarms", make_context())
    assert result.status == Status.FAIL
    by_arn = {f.resource: f for f in result.findings}
    assert by_arn[disabled].status == Status.FAIL
    assert "actions disabled" in by_arn[disabled].reason
    assert by_arn[dangling].status == Status.FAIL
    assert "deleted-team" in by_arn[dangling].reason
    assert by_arn[silent].status == Status.WARN
    assert result.summary.startswith("2 of 3 alarms")


def test_alarms_fail_when_the_region_has_none(aws, make_context):
    _topic(aws, "oncall")
    result = run("monitoring.cloudwatch_alarms", make_context("eu-west-1"))
    assert result.status == Status.FAIL
    assert "No CloudWatch metric or composite alarm in eu-west-1" in result.summary


def test_alarms_judge_composite_alarms_too(aws, make_context):
    topic = _topic(aws, "oncall")
    context = make_context()
    client = context.client("cloudwatch")
    composite = {
        "AlarmName": "service-down",
        "AlarmArn": f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:service-down",
        "ActionsEnabled": True,
        "AlarmActions": [topic],
        "AlarmRule": 'ALARM("api-5xx") OR ALARM("latency")',
        "StateValue": "OK",
    }
    # moto has no PutCompositeAlarm: answer both DescribeAlarms calls as AWS would.
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_alarms", {"MetricAlarms": []}, {"AlarmTypes": ["MetricAlarm"]}
        )
        stubber.add_response(
            "describe_alarms", {"CompositeAlarms": [composite]}, {"AlarmTypes": ["CompositeAlarm"]}
        )
        result = run("monitoring.cloudwatch_alarms", context)
    assert result.status == Status.PASS, result
    assert result.facts["composite_alarms"] == 1
    assert "composite alarm" in result.findings[0].reason


# SNS Notifications


def test_sns_passes_with_confirmed_email_and_https_subscriptions(aws, make_context):
    sns = aws.client("sns")
    topic = _topic(aws, "oncall")
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    sns.subscribe(TopicArn=topic, Protocol="https", Endpoint="https://hooks.example.com/alerts")
    result = run("monitoring.sns_subscriptions", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["confirmed_subscriptions_by_protocol"] == {"email": 1, "https": 1}


def test_sns_fails_topics_without_subscribers_or_with_plain_http_endpoints(aws, make_context):
    sns = aws.client("sns")
    orphan = _topic(aws, "orphan")
    insecure = _topic(aws, "insecure")
    sns.subscribe(TopicArn=insecure, Protocol="http", Endpoint="http://hooks.example.com/alerts")
    good = _topic(aws, "oncall")
    sns.subscribe(TopicArn=good, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:123456789012:q")
    result = run("monitoring.sns_subscriptions", make_context())
    assert result.status == Status.FAIL
    assert statuses(result) == {orphan: Status.FAIL, insecure: Status.FAIL, good: Status.PASS}
    reasons = {f.resource: f.reason for f in result.findings}
    assert "no confirmed subscription" in reasons[orphan]
    assert "plain-HTTP" in reasons[insecure]
    assert "hooks.example.com" not in reasons[insecure]


def test_sns_fails_a_topic_whose_only_subscription_awaits_confirmation(aws, make_context):
    topic = _topic(aws, "oncall")
    aws.client("sns").subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    context = make_context()
    client = context.client("sns")
    topics = _without_metadata(client.list_topics())
    listed = _without_metadata(client.list_subscriptions())
    # moto confirms every subscription at once; AWS lists an unconfirmed one this way.
    listed["Subscriptions"][0]["SubscriptionArn"] = "PendingConfirmation"
    with Stubber(client) as stubber:
        stubber.add_response("list_topics", topics)
        stubber.add_response("list_subscriptions", listed)
        result = run("monitoring.sns_subscriptions", context)
    assert result.status == Status.FAIL
    assert result.findings[0].resource == topic
    assert "1 pending confirmation" in result.findings[0].reason


def test_sns_fails_when_the_region_has_no_topic(aws, make_context):
    result = run("monitoring.sns_subscriptions", make_context())
    assert result.status == Status.FAIL
    assert "alerts go nowhere" in result.summary


# Log Aggregation


def _bucket(aws, name: str) -> str:
    aws.client("s3").create_bucket(Bucket=name)
    return name


def _vpc_ids(aws) -> list[str]:
    return [vpc["VpcId"] for vpc in aws.client("ec2").describe_vpcs()["Vpcs"]]


def test_flow_logs_pass_when_every_vpc_has_an_active_one(aws, make_context):
    ec2 = aws.client("ec2")
    ec2.create_vpc(CidrBlock="10.20.0.0/16")
    vpcs = _vpc_ids(aws)  # moto's default VPC included
    ec2.create_flow_logs(
        ResourceIds=vpcs,
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{_bucket(aws, 'flow-logs')}",
    )
    result = run("monitoring.vpc_flow_logs", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["vpcs"] == len(vpcs) == 2


def test_flow_logs_fail_for_a_vpc_without_one(aws, make_context):
    ec2 = aws.client("ec2")
    unlogged = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    logged = [vpc for vpc in _vpc_ids(aws) if vpc != unlogged]
    ec2.create_flow_logs(
        ResourceIds=logged,
        ResourceType="VPC",
        TrafficType="REJECT",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{_bucket(aws, 'flow-logs')}",
    )
    result = run("monitoring.vpc_flow_logs", make_context())
    assert result.status == Status.FAIL
    assert statuses(result)[unlogged] == Status.FAIL
    assert all(statuses(result)[vpc] == Status.PASS for vpc in logged)


def _load_balancer(aws, name: str, kind: str = "application") -> str:
    subnets = [s["SubnetId"] for s in aws.client("ec2").describe_subnets()["Subnets"]][:2]
    return aws.client("elbv2").create_load_balancer(Name=name, Subnets=subnets, Type=kind)[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]


def _enable_access_logs(aws, arn: str, bucket: str) -> None:
    aws.client("elbv2").modify_load_balancer_attributes(
        LoadBalancerArn=arn,
        Attributes=[
            {"Key": "access_logs.s3.enabled", "Value": "true"},
            {"Key": "access_logs.s3.bucket", "Value": bucket},
        ],
    )


def test_access_logs_pass_when_every_alb_logs_and_skip_nlbs_without_tls(aws, make_context):
    bucket = _bucket(aws, "lb-logs")
    alb = _load_balancer(aws, "web")
    _enable_access_logs(aws, alb, bucket)
    _load_balancer(aws, "tcp-only", kind="network")  # no TLS listener: no access log to write
    result = run("monitoring.load_balancer_access_logs", make_context())
    assert result.status == Status.PASS, result
    assert statuses(result) == {alb: Status.PASS}
    assert "s3://lb-logs" in result.findings[0].reason
    assert result.facts["not_judged"] == {"network without TLS listener": 1}


def test_access_logs_fail_for_a_load_balancer_without_them(aws, make_context):
    logged = _load_balancer(aws, "web")
    _enable_access_logs(aws, logged, _bucket(aws, "lb-logs"))
    unlogged = _load_balancer(aws, "admin")
    result = run("monitoring.load_balancer_access_logs", make_context())
    assert result.status == Status.FAIL
    assert statuses(result) == {logged: Status.PASS, unlogged: Status.FAIL}


def test_access_logs_not_applicable_without_load_balancers(aws, make_context):
    result = run("monitoring.load_balancer_access_logs", make_context())
    assert result.status == Status.NOT_APPLICABLE


def _trail(aws, name: str, *, log_group: str | None = None, multi_region: bool = True) -> str:
    extra = {}
    if log_group:
        logs = aws.client("logs")
        logs.create_log_group(logGroupName=log_group)
        extra = {
            "CloudWatchLogsLogGroupArn": logs.describe_log_groups(logGroupNamePrefix=log_group)[
                "logGroups"
            ][0]["arn"],
            "CloudWatchLogsRoleArn": "arn:aws:iam::123456789012:role/CloudTrailToLogs",
        }
    cloudtrail = aws.client("cloudtrail")
    arn = cloudtrail.create_trail(
        Name=name,
        S3BucketName=_bucket(aws, f"{name}-logs"),
        IsMultiRegionTrail=multi_region,
        **extra,
    )["TrailARN"]
    cloudtrail.start_logging(Name=arn)
    return arn


def test_cloudtrail_logs_pass_when_a_multi_region_trail_delivers(aws, make_context):
    delivering = _trail(aws, "org-trail", log_group="cloudtrail/org")
    data_events = _trail(aws, "data-events")  # to S3 only: an extra, not a gap
    result = run("monitoring.cloudtrail_cloudwatch_logs", make_context("global"))
    assert result.status == Status.PASS, result
    assert statuses(result) == {delivering: Status.PASS, data_events: Status.WARN}


def test_cloudtrail_logs_fail_when_no_trail_delivers_while_logging(aws, make_context):
    silent = _trail(aws, "org-trail")
    stopped = _trail(aws, "stopped-trail", log_group="cloudtrail/stopped")
    aws.client("cloudtrail").stop_logging(Name=stopped)
    result = run("monitoring.cloudtrail_cloudwatch_logs", make_context("global"))
    assert result.status == Status.FAIL
    assert statuses(result) == {silent: Status.FAIL, stopped: Status.FAIL}
    assert "not logging" in {f.resource: f.reason for f in result.findings}[stopped]


def test_cloudtrail_logs_warn_when_only_a_single_region_trail_delivers(aws, make_context):
    regional = _trail(aws, "local-trail", log_group="cloudtrail/local", multi_region=False)
    result = run("monitoring.cloudtrail_cloudwatch_logs", make_context("global"))
    assert result.status == Status.WARN
    assert statuses(result) == {regional: Status.WARN}


def test_log_groups_pass_when_the_region_has_one(aws, make_context):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/ecs/api")
    logs.put_retention_policy(logGroupName="/ecs/api", retentionInDays=30)
    logs.create_log_group(logGroupName="/aws/lambda/worker")
    result = run("monitoring.log_groups", make_context())
    assert result.status == Status.PASS, result
    assert result.facts == {"log_groups": 2, "without_retention": 1}


def test_log_groups_fail_when_the_region_has_none(aws, make_context):
    aws.client("logs", region_name="eu-west-1").create_log_group(logGroupName="elsewhere")
    result = run("monitoring.log_groups", make_context())
    assert result.status == Status.FAIL
    assert "No CloudWatch Logs log group in us-east-1" in result.summary


# Dashboards


def _dashboard(aws, name: str, body: dict) -> str:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    return cloudwatch.get_dashboard(DashboardName=name)["DashboardArn"]


def test_dashboards_pass_with_a_dashboard_that_has_widgets(aws, make_context):
    _dashboard(aws, "service-health", WIDGETS)
    result = run("monitoring.dashboards", make_context())
    assert result.status == Status.PASS, result
    assert result.findings[0].reason == "1 widget(s)"


def test_dashboards_warn_about_empty_ones_next_to_a_good_one(aws, make_context):
    good = _dashboard(aws, "service-health", WIDGETS)
    empty = _dashboard(aws, "scratch", {"widgets": []})
    result = run("monitoring.dashboards", make_context())
    assert result.status == Status.WARN
    assert statuses(result) == {good: Status.PASS, empty: Status.WARN}


def test_dashboards_fail_when_all_are_empty_or_there_are_none(aws, make_context):
    assert run("monitoring.dashboards", make_context()).status == Status.FAIL
    empty = _dashboard(aws, "scratch", {"widgets": []})
    result = run("monitoring.dashboards", make_context())
    assert result.status == Status.FAIL
    assert [f.resource for f in result.findings] == [empty]


# Distributed Tracing


def _function(aws, name: str, mode: str | None = None) -> str:
    iam = aws.client("iam")
    try:
        role = iam.get_role(RoleName="fn")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    return aws.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": code.getvalue()},
        **({"TracingConfig": {"Mode": mode}} if mode else {}),
    )["FunctionArn"]


def _stage(aws, api_name: str, stage: str, *, traced: bool) -> str:
    apigateway = aws.client("apigateway")
    api = apigateway.create_rest_api(name=api_name)["id"]
    root = apigateway.get_resources(restApiId=api)["items"][0]["id"]
    apigateway.put_method(
        restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE"
    )
    apigateway.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    deployment = apigateway.create_deployment(restApiId=api)["id"]
    apigateway.create_stage(
        restApiId=api, stageName=stage, deploymentId=deployment, tracingEnabled=traced
    )
    return f"arn:aws:apigateway:{REGION}::/restapis/{api}/stages/{stage}"


def _trace(aws) -> None:
    now = time.time()
    segment = {
        "name": "checkout",
        "id": "70de5b6f19ff9a0a",
        "trace_id": f"1-{int(now):08x}-{'0' * 23}1",
        # moto truncates EndTime to whole seconds: a trace ending this second would be missed.
        "start_time": now - 5,
        "end_time": now - 2,
    }
    aws.client("xray").put_trace_segments(TraceSegmentDocuments=[json.dumps(segment)])


def test_tracing_passes_when_functions_and_stages_trace_and_traces_arrive(aws, make_context):
    function = _function(aws, "checkout", mode="Active")
    stage = _stage(aws, "shop", "prod", traced=True)
    _trace(aws)
    result = run("monitoring.xray_tracing", make_context())
    assert result.status == Status.PASS, result
    assert statuses(result) == {
        function: Status.PASS,
        stage: Status.PASS,
        f"X-Ray traces in {REGION}": Status.PASS,
    }
    assert result.facts["recent_traces"] is True


def test_tracing_fails_for_untraced_functions_and_stages(aws, make_context):
    traced = _function(aws, "checkout", mode="Active")
    untraced = _function(aws, "report")  # PassThrough by default
    stage = _stage(aws, "shop", "dev", traced=False)
    _trace(aws)
    result = run("monitoring.xray_tracing", make_context())
    assert result.status == Status.FAIL
    found = statuses(result)
    assert found[untraced] == Status.FAIL
    assert found[stage] == Status.FAIL
    assert found[traced] == Status.PASS
    assert result.summary.startswith("2 of 2 Lambda functions and 1 REST API stages")


def test_tracing_warns_when_tracing_is_on_but_no_trace_arrived(aws, make_context):
    _function(aws, "checkout", mode="Active")
    result = run("monitoring.xray_tracing", make_context(recent_traces_minutes=30))
    assert result.status == Status.WARN
    assert statuses(result)[f"X-Ray traces in {REGION}"] == Status.WARN
    assert result.facts["recent_traces_minutes"] == 30


def test_tracing_is_not_applicable_with_nothing_to_trace(aws, make_context):
    result = run("monitoring.xray_tracing", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert "Nothing to trace" in result.summary


# Synthetic Monitoring


def _health_check(aws, host: str = "shop.example.com", **config) -> str:
    return aws.client("route53").create_health_check(
        CallerReference=host,
        HealthCheckConfig={
            "Type": "HTTPS",
            "FullyQualifiedDomainName": host,
            "Port": 443,
            "ResourcePath": "/health",
            **config,
        },
    )["HealthCheck"]["Id"]


def _canary(name: str, state: str = "RUNNING") -> dict:
    return {"Name": name, "Id": f"id-{name}", "Status": {"State": state}}


def _run(state: str, reason: str = "") -> dict:
    return {
        "Id": "run-1",
        "Name": "run",
        "Status": {"State": state, **({"StateReason": reason} if reason else {})},
        "Timeline": {"Started": datetime(2026, 1, 1, tzinfo=UTC)},
    }


def test_synthetics_pass_with_a_healthy_route53_health_check(aws, make_context):
    # Route 53 is global: the same health check counts in a regional run of eu-west-1.
    check = _health_check(aws)
    result = run("monitoring.synthetic_checks", make_context("eu-west-1"))
    assert result.status == Status.PASS, result
    assert statuses(result) == {f"arn:aws:route53:::healthcheck/{check}": Status.PASS}


def test_synthetics_pass_with_a_running_canary_whose_last_run_passed(aws, make_context):
    context = make_context()
    client = context.client("synthetics")
    # moto has canaries but no canary runs or start-canary: answer as AWS would.
    with Stubber(client) as stubber:
        stubber.add_response("describe_canaries", {"Canaries": [_canary("checkout")]})
        stubber.add_response(
            "describe_canaries_last_run",
            {"CanariesLastRun": [{"CanaryName": "checkout", "LastRun": _run("PASSED")}]},
        )
        result = run("monitoring.synthetic_checks", context)
    assert result.status == Status.PASS, result
    assert statuses(result) == {"canary checkout": Status.PASS}


def test_synthetics_look_past_a_run_in_progress_to_the_last_finished_one(aws, make_context):
    context = make_context()
    client = context.client("synthetics")
    with Stubber(client) as stubber:
        stubber.add_response("describe_canaries", {"Canaries": [_canary("checkout")]})
        stubber.add_response(
            "describe_canaries_last_run",
            {"CanariesLastRun": [{"CanaryName": "checkout", "LastRun": _run("RUNNING")}]},
        )
        stubber.add_response(
            "get_canary_runs",
            {"CanaryRuns": [_run("RUNNING"), _run("FAILED", "Timeout after 60s")]},
            {"Name": "checkout"},
        )
        result = run("monitoring.synthetic_checks", context)
    assert result.status == Status.FAIL
    assert "Timeout after 60s" in result.findings[0].reason


def test_synthetics_fail_when_canary_and_health_check_both_fail(aws, make_context):
    check = _health_check(aws)
    context = make_context()
    synthetics = context.client("synthetics")
    route53 = context.client("route53")
    # moto leaves out members AWS always sends (and the Stubber requires).
    listed = {
        "Marker": "",
        "IsTruncated": False,
        "MaxItems": "100",
        **_without_metadata(route53.list_health_checks()),
    }
    unhealthy = {
        "HealthCheckObservations": [
            {
                "Region": region,
                "IPAddress": "198.51.100.7",
                "StatusReport": {"Status": "Failure: HTTP Status Code 503, Service Unavailable"},
            }
            for region in ("us-east-1", "eu-west-1", "ap-southeast-1")
        ]
    }
    # moto reports every health check healthy: keep moto's listing, stub the status.
    with Stubber(synthetics) as canaries, Stubber(route53) as checks:
        canaries.add_response(
            "describe_canaries", {"Canaries": [_canary("checkout"), _canary("old", "STOPPED")]}
        )
        canaries.add_response(
            "describe_canaries_last_run",
            {"CanariesLastRun": [{"CanaryName": "checkout", "LastRun": _run("FAILED", "500")}]},
        )
        checks.add_response("list_health_checks", listed)
        checks.add_response("get_health_check_status", unhealthy, {"HealthCheckId": check})
        result = run("monitoring.synthetic_checks", context)
    assert result.status == Status.FAIL
    assert statuses(result) == {
        "canary checkout": Status.FAIL,
        "canary old": Status.WARN,
        f"arn:aws:route53:::healthcheck/{check}": Status.FAIL,
    }
    assert "0 of 3 checkers" in result.findings[1].reason


def test_synthetics_warn_when_one_check_passes_and_another_is_disabled(aws, make_context):
    healthy = _health_check(aws)
    disabled = _health_check(aws, "admin.example.com", Disabled=True)
    _health_check(aws, "calc.example.com", Type="CALCULATED")  # looks at nothing from outside
    result = run("monitoring.synthetic_checks", make_context())
    assert result.status == Status.WARN
    assert statuses(result) == {
        f"arn:aws:route53:::healthcheck/{healthy}": Status.PASS,
        f"arn:aws:route53:::healthcheck/{disabled}": Status.WARN,
    }
    assert result.facts["route53_other_checks"] == 1


def test_synthetics_fail_with_neither_canary_nor_health_check(aws, make_context):
    result = run("monitoring.synthetic_checks", make_context())
    assert result.status == Status.FAIL
    assert "nothing checks the service from outside" in result.summary


# Errors


def test_an_unsupported_call_is_an_error_not_a_pass(aws, make_context):
    # moto lists canaries but has no DescribeCanariesLastRun: the emulator answers 501.
    aws.client("synthetics").create_canary(
        Name="checkout",
        Code={"Handler": "index.handler"},
        ArtifactS3Location="s3://canary-artifacts",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/canary",
        Schedule={"Expression": "rate(5 minutes)"},
        RuntimeVersion="syn-nodejs-puppeteer-9.1",
    )
    _health_check(aws)  # a passing health check must not hide the failed read
    result = run("monitoring.synthetic_checks", make_context())
    assert result.status == Status.ERROR
    assert "synthetics:DescribeCanariesLastRun" in result.summary
    assert "does not implement" in result.summary


@pytest.mark.parametrize(
    ("key", "region", "service", "operation"),
    [
        ("monitoring.cloudwatch_alarms", REGION, "cloudwatch", "describe_alarms"),
        ("monitoring.sns_subscriptions", REGION, "sns", "list_topics"),
        ("monitoring.vpc_flow_logs", REGION, "ec2", "describe_vpcs"),
        ("monitoring.load_balancer_access_logs", REGION, "elbv2", "describe_load_balancers"),
        ("monitoring.cloudtrail_cloudwatch_logs", "global", "cloudtrail", "describe_trails"),
        ("monitoring.log_groups", REGION, "logs", "describe_log_groups"),
        ("monitoring.dashboards", REGION, "cloudwatch", "list_dashboards"),
        ("monitoring.xray_tracing", REGION, "lambda", "list_functions"),
        ("monitoring.synthetic_checks", REGION, "synthetics", "describe_canaries"),
    ],
)
def test_access_denied_is_an_error_naming_a_declared_action(
    aws, make_context, key, region, service, operation
):
    context = make_context(region)
    client = context.client(service)
    with Stubber(client) as stubber:
        stubber.add_client_error(operation, service_error_code="AccessDenied")
        result = run(key, context)
    assert result.status == Status.ERROR
    prefix = "Access denied: the probe needs "
    assert result.summary.startswith(prefix)
    assert result.summary.removeprefix(prefix) in registry()[key].actions
