"""Monitoring & Observability / Distributed Tracing: X-Ray tracing where requests run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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

# X-Ray answers GetTraceSummaries for windows of at most 24 hours: longer settings are clamped.
XRAY_MAX_WINDOW_MINUTES = 24 * 60


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
