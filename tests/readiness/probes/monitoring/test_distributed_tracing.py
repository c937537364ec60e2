import io
import json
import time
import zipfile

import pytest

from readiness.probes.base import Status
from tests.readiness.probes.monitoring.helpers import (
    REGION,
    assert_access_denied_names_a_declared_action,
    run,
    statuses,
)

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


@pytest.mark.parametrize(
    ("key", "region", "service", "operation"),
    [
        ("monitoring.xray_tracing", REGION, "lambda", "list_functions"),
    ],
)
def test_access_denied_is_an_error_naming_a_declared_action(
    aws, make_context, key, region, service, operation
):
    assert_access_denied_names_a_declared_action(make_context(region), key, service, operation)
