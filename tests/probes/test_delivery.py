import contextlib
import io
import json
import zipfile

from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry
from tests.conftest import REGION


def run(key, context):
    return execute(registry()[key], context).result


def found(result):
    return {f.resource: f for f in result.findings}


def _role(aws, service):
    return aws.client("iam").create_role(
        RoleName=f"{service.split('.')[0]}-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": service},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]


def _pipeline(aws, name, deploy=True):
    role = (
        _role(aws, "codepipeline.amazonaws.com")
        if name == "first"
        else ("arn:aws:iam::123456789012:role/codepipeline-role")
    )
    aws.client("s3").create_bucket(Bucket=f"artifacts-{name}")
    source = {
        "name": "Source",
        "actions": [
            {
                "name": "Source",
                "actionTypeId": {
                    "category": "Source",
                    "owner": "AWS",
                    "provider": "S3",
                    "version": "1",
                },
                "configuration": {"S3Bucket": f"artifacts-{name}", "S3ObjectKey": "src.zip"},
                "outputArtifacts": [{"name": "src"}],
            }
        ],
    }
    second = {
        "name": "Deploy" if deploy else "Build",
        "actions": [
            {
                "name": "Go",
                "actionTypeId": {
                    "category": "Deploy" if deploy else "Build",
                    "owner": "AWS",
                    "provider": "ECS" if deploy else "CodeBuild",
                    "version": "1",
                },
                "configuration": {"ClusterName": "c"} if deploy else {"ProjectName": "p"},
                "inputArtifacts": [{"name": "src"}],
            }
        ],
    }
    aws.client("codepipeline").create_pipeline(
        pipeline={
            "name": name,
            "roleArn": role,
            "artifactStore": {"type": "S3", "location": f"artifacts-{name}"},
            "stages": [source, second],
        }
    )


def test_pipelines(aws, make_context):
    result = run("delivery.pipelines", make_context())
    assert result.status == Status.WARN and "No CodePipeline pipeline" in result.summary
    _pipeline(aws, "first")
    assert run("delivery.pipelines", make_context()).status == Status.PASS
    _pipeline(aws, "build-only", deploy=False)
    result = run("delivery.pipelines", make_context())
    assert result.status == Status.WARN
    assert found(result)["build-only"].reason == "2 stages, none of them deploys"


def _group(aws, name, *, blue_green=False, config=None):
    codedeploy = aws.client("codedeploy")
    with contextlib.suppress(codedeploy.exceptions.ApplicationAlreadyExistsException):
        codedeploy.create_application(applicationName="shop", computePlatform="Server")
    extra = {"deploymentConfigName": config} if config else {}
    codedeploy.create_deployment_group(
        applicationName="shop",
        deploymentGroupName=name,
        serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
        deploymentStyle={
            "deploymentType": "BLUE_GREEN" if blue_green else "IN_PLACE",
            "deploymentOption": "WITH_TRAFFIC_CONTROL" if blue_green else "WITHOUT_TRAFFIC_CONTROL",
        },
        **extra,
    )


def test_blue_green(aws, make_context):
    assert run("delivery.blue_green", make_context()).status == Status.NOT_APPLICABLE
    _group(aws, "web", blue_green=True)
    assert run("delivery.blue_green", make_context()).status == Status.PASS
    _group(aws, "worker")
    result = run("delivery.blue_green", make_context())
    assert result.status == Status.WARN
    assert found(result)["shop/worker"].reason.startswith("in place")


def _function(aws, name):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
    client = aws.client("lambda")
    arn = client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=_role(aws, "lambda.amazonaws.com"),
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
        Publish=True,
    )
    first = arn["Version"]
    second = client.publish_version(FunctionName=name)["Version"]
    return client, first, second


def test_canary_from_configs_and_weighted_aliases(aws, make_context):
    assert run("delivery.canary", make_context()).status == Status.NOT_APPLICABLE
    client, first, second = _function(aws, "checkout")
    client.create_alias(
        FunctionName="checkout",
        Name="live",
        FunctionVersion=first,
        RoutingConfig={"AdditionalVersionWeights": {second: 0.1}},
    )
    result = run("delivery.canary", make_context())
    assert result.status == Status.PASS, result
    assert found(result)["checkout:live"].reason == f"weighted routing v{second} 10%"
    _group(aws, "all-at-once", config="CodeDeployDefault.AllAtOnce")
    result = run("delivery.canary", make_context())
    assert result.status == Status.WARN
    assert found(result)["shop/all-at-once"].reason.endswith("all at once")


def test_feature_flags(aws, make_context):
    context = make_context()
    with Stubber(context.client("appconfig")) as stubber:
        stubber.add_response("list_applications", {"Items": []})
        result = run("delivery.feature_flags", context)
    assert result.status == Status.WARN
    with Stubber(context.client("appconfig")) as stubber:
        stubber.add_response("list_applications", {"Items": [{"Id": "abc1234", "Name": "shop"}]})
        stubber.add_response(
            "list_configuration_profiles",
            {
                "Items": [
                    {"Id": "p1", "Name": "release-flags", "Type": "AWS.AppConfig.FeatureFlags"},
                    {"Id": "p2", "Name": "settings", "Type": "AWS.Freeform"},
                ]
            },
            {"ApplicationId": "abc1234"},
        )
        result = run("delivery.feature_flags", context)
    assert result.status == Status.PASS
    assert result.findings[0].reason == "feature flags: release-flags"


def test_runbooks_are_supporting_evidence(aws, make_context):
    probe = registry()["operational.runbooks"]
    assert probe.supporting and probe.item == "Runbook"
    assert run("operational.runbooks", make_context()).status == Status.NOT_APPLICABLE
    aws.client("ssm").create_document(
        Name="restart-api",
        DocumentType="Automation",
        DocumentFormat="JSON",
        Content=json.dumps(
            {
                "schemaVersion": "0.3",
                "mainSteps": [
                    {"name": "wait", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}}
                ],
            }
        ),
    )
    result = run("operational.runbooks", make_context())
    assert result.status == Status.PASS
    assert "supporting evidence only" in result.summary
    assert [f.resource for f in result.findings] == ["restart-api"]
    assert REGION
