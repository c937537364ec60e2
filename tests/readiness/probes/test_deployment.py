import contextlib
import io
import json
import zipfile
from collections.abc import Callable

import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from botocore.validate import validate_parameters

from readiness.probes.base import Status
from tests.conftest import REGION
from tests.readiness.probes.helpers import found, run

ACCOUNT = "123456789012"


def without_metadata(response: dict) -> dict:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


@contextlib.contextmanager
def answering(client, operation: str, respond: dict | Callable[[dict], dict]):
    """Answer one operation from the test while moto serves the client's other calls.

    Stubber takes over every call of a client; this only replaces the operation moto lacks
    (or answers unlike AWS). `respond` is the response, or a function of the request's JSON
    body. The response is checked against the API's output shape, as Stubber does.
    """
    model = client.meta.service_model.operation_model(operation)
    event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    calls = []

    def handler(params, **_):
        body = json.loads(params.get("body") or b"{}")
        calls.append(body)
        response = respond(body) if callable(respond) else respond
        validate_parameters(response, model.output_shape)
        return AWSResponse("https://answered.invalid", 200, {}, None), response

    client.meta.events.register(event, handler, unique_id=f"answer-{operation}")
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, unique_id=f"answer-{operation}")


def assume_role_policy(service: str) -> str:
    return json.dumps(
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
    )


def role(aws, service: str) -> str:
    """The service's role, created on first use (moto checks a pipeline's role exists)."""
    iam = aws.client("iam")
    name = f"{service.split('.')[0]}-role"
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=assume_role_policy(service))[
            "Role"
        ]["Arn"]


# CI/CD Pipeline


def pipeline(aws, name: str, *, deploy: bool = True, region: str = REGION) -> None:
    bucket = f"artifacts-{name}"
    aws.client("s3", region_name=region).create_bucket(
        Bucket=bucket,
        **(
            {"CreateBucketConfiguration": {"LocationConstraint": region}}
            if region != "us-east-1"
            else {}
        ),
    )
    last = (
        {
            "name": "Deploy",
            "actions": [
                {
                    "name": "Service",
                    "actionTypeId": {
                        "category": "Deploy",
                        "owner": "AWS",
                        "provider": "ECS",
                        "version": "1",
                    },
                    "configuration": {"ClusterName": "main", "ServiceName": name},
                    "inputArtifacts": [{"name": "built"}],
                }
            ],
        }
        if deploy
        else {
            "name": "Test",
            "actions": [
                {
                    "name": "Unit",
                    "actionTypeId": {
                        "category": "Test",
                        "owner": "AWS",
                        "provider": "CodeBuild",
                        "version": "1",
                    },
                    "configuration": {"ProjectName": "unit"},
                    "inputArtifacts": [{"name": "built"}],
                }
            ],
        }
    )
    stages = [
        {
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
                    "configuration": {"S3Bucket": bucket, "S3ObjectKey": "src.zip"},
                    "outputArtifacts": [{"name": "src"}],
                }
            ],
        },
        {
            "name": "Build",
            "actions": [
                {
                    "name": "Image",
                    "actionTypeId": {
                        "category": "Build",
                        "owner": "AWS",
                        "provider": "CodeBuild",
                        "version": "1",
                    },
                    "configuration": {"ProjectName": "image"},
                    "inputArtifacts": [{"name": "src"}],
                    "outputArtifacts": [{"name": "built"}],
                }
            ],
        },
        last,
    ]
    aws.client("codepipeline", region_name=region).create_pipeline(
        pipeline={
            "name": name,
            "roleArn": role(aws, "codepipeline.amazonaws.com"),
            "artifactStore": {"type": "S3", "location": bucket},
            "stages": stages,
        }
    )


def pipeline_arn(name: str, region: str = REGION) -> str:
    return f"arn:aws:codepipeline:{region}:{ACCOUNT}:{name}"


def test_pipelines_pass_when_every_pipeline_deploys_and_report_the_latest_run(aws, make_context):
    pipeline(aws, "web")
    pipeline(aws, "api")
    aws.client("codepipeline").start_pipeline_execution(name="web")
    result = run("delivery.pipelines", make_context())
    assert result.status == Status.PASS, result
    assert result.summary == "All 2 CodePipeline pipelines have a Deploy stage"
    assert result.facts["pipelines"] == 2
    assert sorted(result.facts["pipeline_names"]) == ["api", "web"]
    assert result.facts["stages"] == {"web": 3, "api": 3}
    assert result.facts["latest_execution"]["api"] == "never run"
    assert result.facts["latest_execution"]["web"] == "Succeeded"
    web = found(result)[pipeline_arn("web")]
    assert web.reason == (
        "3 stage(s) (Source → Build → Deploy); latest execution: Succeeded; deploys in Deploy"
    )


def test_pipelines_warn_for_a_pipeline_that_never_deploys(aws, make_context):
    pipeline(aws, "web")
    pipeline(aws, "checks", deploy=False)
    result = run("delivery.pipelines", make_context())
    assert result.status == Status.WARN
    assert result.summary == "1 of 2 CodePipeline pipelines have no Deploy stage"
    checks = found(result)[pipeline_arn("checks")]
    assert checks.status == Status.WARN
    assert "no Deploy action" in checks.reason
    assert found(result)[pipeline_arn("web")].status == Status.PASS


def test_pipelines_warn_in_a_region_without_one_and_say_why_it_is_not_a_failure(aws, make_context):
    pipeline(aws, "web")  # us-east-1 only: eu-west-1 runs none
    result = run("delivery.pipelines", make_context("eu-west-1"))
    assert result.status == Status.WARN
    assert result.summary.startswith("No CodePipeline pipeline in eu-west-1")
    assert "outside AWS" in result.summary and "a person must confirm" in result.summary
    assert result.facts["pipelines"] == 0
    assert result.findings == ()


def test_pipelines_warn_on_an_empty_account(aws, make_context):
    assert run("delivery.pipelines", make_context()).status == Status.WARN


# CodeDeploy and ECS helpers


def codedeploy_app(aws, name: str, platform: str = "Server") -> None:
    codedeploy = aws.client("codedeploy")
    with contextlib.suppress(codedeploy.exceptions.ApplicationAlreadyExistsException):
        codedeploy.create_application(applicationName=name, computePlatform=platform)


def deployment_group(
    aws,
    application: str,
    name: str,
    *,
    platform: str = "Server",
    blue_green: bool = False,
    config: str | None = None,
    ecs_service: tuple[str, str] | None = None,
) -> None:
    codedeploy_app(aws, application, platform)
    extra = {}
    if config:
        extra["deploymentConfigName"] = config
    if ecs_service:
        extra["ecsServices"] = [{"clusterName": ecs_service[0], "serviceName": ecs_service[1]}]
    aws.client("codedeploy").create_deployment_group(
        applicationName=application,
        deploymentGroupName=name,
        serviceRoleArn=f"arn:aws:iam::{ACCOUNT}:role/codedeploy",
        deploymentStyle={
            "deploymentType": "BLUE_GREEN" if blue_green else "IN_PLACE",
            "deploymentOption": "WITH_TRAFFIC_CONTROL" if blue_green else "WITHOUT_TRAFFIC_CONTROL",
        },
        **extra,
    )


def ecs_service(aws, name: str, *, controller: str = "ECS", cluster: str = "main") -> str:
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    return ecs.create_service(
        cluster=cluster,
        serviceName=name,
        taskDefinition="web",
        desiredCount=1,
        deploymentController={"type": controller},
    )["service"]["serviceArn"]


def with_strategies(context, strategies: dict[str, dict]):
    """DescribeServices as AWS answers for services with a deployment strategy (moto neither
    stores nor returns deploymentConfiguration); the rest of the answer is moto's."""
    ecs = context.client("ecs")
    arns = ecs.list_services(cluster="main")["serviceArns"]
    described = without_metadata(ecs.describe_services(cluster="main", services=arns))
    for service in described["services"]:
        if service["serviceName"] in strategies:
            service["deploymentConfiguration"] = strategies[service["serviceName"]]
    return answering(ecs, "DescribeServices", described)


# Blue/Green Deployment


def test_blue_green_not_applicable_without_codedeploy_or_ecs(aws, make_context):
    result = run("delivery.blue_green", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert (
        result.summary
        == f"No CodeDeploy deployment group and no blue/green ECS service in {REGION}"
    )


def test_blue_green_not_applicable_for_an_application_without_groups(aws, make_context):
    codedeploy_app(aws, "shop")
    assert run("delivery.blue_green", make_context()).status == Status.NOT_APPLICABLE


def test_blue_green_passes_blue_green_groups(aws, make_context):
    deployment_group(aws, "shop", "web", blue_green=True)
    deployment_group(aws, "checkout", "live", platform="Lambda", blue_green=True)
    result = run("delivery.blue_green", make_context())
    assert result.status == Status.PASS, result
    assert set(found(result)) == {"shop/web", "checkout/live"}
    assert "CodeDeploy Lambda group deploys blue/green" in found(result)["checkout/live"].reason
    assert result.facts["deployment_groups"] == 2 and result.facts["in_place_groups"] == 0


def test_blue_green_warns_for_in_place_groups(aws, make_context):
    deployment_group(aws, "shop", "web", blue_green=True)
    deployment_group(aws, "shop", "worker")
    result = run("delivery.blue_green", make_context())
    assert result.status == Status.WARN
    assert result.summary == "1 of 2 CodeDeploy deployment groups deploy in place"
    worker = found(result)["shop/worker"]
    assert worker.status == Status.WARN
    assert worker.reason.startswith("CodeDeploy Server group deploys in place")
    assert result.facts["in_place_groups"] == 1


def test_blue_green_counts_codedeploy_ecs_services_once_and_leaves_rolling_ones_unjudged(
    aws, make_context
):
    ecs_service(aws, "web", controller="CODE_DEPLOY")
    orphan = ecs_service(aws, "admin", controller="CODE_DEPLOY")
    rolling = ecs_service(aws, "worker")
    deployment_group(
        aws, "web", "prod", platform="ECS", blue_green=True, ecs_service=("main", "web")
    )
    result = run("delivery.blue_green", make_context())
    assert result.status == Status.PASS, result
    # "web" is judged as its deployment group, "admin" has no group naming it.
    assert set(found(result)) == {"web/prod", orphan}
    assert "CODE_DEPLOY controller" in found(result)[orphan].reason
    assert rolling not in found(result)
    assert result.facts["ecs_services"] == 3
    assert result.facts["ecs_services_not_judged"] == {"ROLLING": 1}
    assert "1 ECS service(s) deploy rolling or externally (not judged" in result.summary


def test_blue_green_passes_ecs_services_with_a_side_by_side_strategy(aws, make_context):
    blue_green = ecs_service(aws, "web")
    canary = ecs_service(aws, "api")
    ecs_service(aws, "worker")
    context = make_context()
    strategies = {
        "web": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 10},
        "api": {"strategy": "CANARY"},
        "worker": {"strategy": "ROLLING"},
    }
    with with_strategies(context, strategies):
        result = run("delivery.blue_green", context)
    assert result.status == Status.PASS, result
    assert set(found(result)) == {blue_green, canary}
    assert "BLUE_GREEN strategy" in found(result)[blue_green].reason
    assert result.facts["ecs_services_not_judged"] == {"ROLLING": 1}


def test_blue_green_not_applicable_when_ecs_services_only_roll(aws, make_context):
    ecs_service(aws, "worker")
    result = run("delivery.blue_green", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert "1 ECS service(s) deploy rolling" in result.summary


# Canary Deployment


def lambda_function(aws, name: str) -> tuple[str, str]:
    """A function with two published versions, for an alias to shift between."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
    client = aws.client("lambda")
    first = client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role(aws, "lambda.amazonaws.com"),
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
        Publish=True,
    )["Version"]
    second = client.publish_version(FunctionName=name)["Version"]
    return first, second


def codedeploy_calls(recorder) -> set[str]:
    return {operation for _, service, operation in recorder.calls if service == "codedeploy"}


def test_canary_not_applicable_on_an_empty_account(aws, make_context):
    result = run("delivery.canary", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert result.summary.startswith(f"Nothing in {REGION} can release as a canary")


def test_canary_does_not_judge_server_groups_which_cannot_shift_traffic(
    aws, make_context, declared_actions_cover_calls
):
    deployment_group(aws, "shop", "web", config="CodeDeployDefault.AllAtOnce")
    result = run("delivery.canary", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert result.facts["server_deployment_groups"] == 1
    assert result.facts["deployment_groups_judged"] == 0
    assert "GetDeploymentConfig" not in codedeploy_calls(declared_actions_cover_calls)


def test_canary_judges_built_in_configs_by_name_without_reading_them(
    aws, make_context, declared_actions_cover_calls
):
    deployment_group(
        aws,
        "checkout",
        "live",
        platform="Lambda",
        blue_green=True,
        config="CodeDeployDefault.LambdaCanary10Percent5Minutes",
    )
    deployment_group(
        aws,
        "web",
        "prod",
        platform="ECS",
        blue_green=True,
        config="CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    )
    result = run("delivery.canary", make_context())
    assert result.status == Status.PASS, result
    assert result.summary == "All 2 traffic-shifting releases shift gradually (canary or linear)"
    assert found(result)["checkout/live"].reason == (
        "CodeDeploy Lambda group, CodeDeployDefault.LambdaCanary10Percent5Minutes: canary"
    )
    assert found(result)["web/prod"].reason.endswith(": linear")
    # moto lacks GetDeploymentConfig; AWS's own configurations never need it.
    assert "GetDeploymentConfig" not in codedeploy_calls(declared_actions_cover_calls)


def test_canary_warns_for_groups_shifting_all_traffic_at_once(aws, make_context):
    deployment_group(
        aws, "checkout", "live", platform="Lambda", config="CodeDeployDefault.LambdaAllAtOnce"
    )
    deployment_group(
        aws,
        "checkout",
        "beta",
        platform="Lambda",
        config="CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
    )
    result = run("delivery.canary", make_context())
    assert result.status == Status.WARN
    assert result.summary == "1 of 2 traffic-shifting releases move all traffic at once"
    assert found(result)["checkout/live"].status == Status.WARN
    assert found(result)["checkout/live"].reason.endswith("shifts all traffic at once")
    assert found(result)["checkout/beta"].status == Status.PASS


def test_canary_reads_custom_configs_once_each(aws, make_context):
    deployment_group(aws, "web", "prod", platform="ECS", config="ten-percent-steps")
    deployment_group(aws, "web", "staging", platform="ECS", config="ten-percent-steps")
    deployment_group(aws, "web", "batch", platform="ECS", config="big-bang")
    routing = {
        "ten-percent-steps": {
            "type": "TimeBasedLinear",
            "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 2},
        },
        "big-bang": {"type": "AllAtOnce"},
    }
    context = make_context()

    def config(body: dict) -> dict:
        name = body["deploymentConfigName"]
        return {
            "deploymentConfigInfo": {
                "deploymentConfigName": name,
                "computePlatform": "ECS",
                "trafficRoutingConfig": routing[name],
            }
        }

    # moto has no GetDeploymentConfig (it answers 500): AWS's answer for custom configs.
    with answering(context.client("codedeploy"), "GetDeploymentConfig", config) as calls:
        result = run("delivery.canary", context)
    assert sorted(call["deploymentConfigName"] for call in calls) == [
        "big-bang",
        "ten-percent-steps",
    ]
    assert result.status == Status.WARN
    assert found(result)["web/prod"].reason == (
        "CodeDeploy ECS group, ten-percent-steps: linear: 10% every 2 min"
    )
    assert found(result)["web/batch"].status == Status.WARN
    assert result.facts["custom_deployment_configs"] == ["big-bang", "ten-percent-steps"]


def test_canary_judges_ecs_strategies_and_skips_rolling_services(aws, make_context):
    canary = ecs_service(aws, "api")
    linear = ecs_service(aws, "web")
    blue_green = ecs_service(aws, "admin")
    rolling = ecs_service(aws, "worker")
    context = make_context()
    strategies = {
        "api": {
            "strategy": "CANARY",
            "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
        },
        "web": {
            "strategy": "LINEAR",
            "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 3},
        },
        "admin": {"strategy": "BLUE_GREEN"},
    }
    with with_strategies(context, strategies):
        result = run("delivery.canary", context)
    assert result.status == Status.WARN
    assert found(result)[canary].reason == (
        "ECS service, CANARY strategy: canary: 10.0% first, baked 5 min"
    )
    assert found(result)[linear].status == Status.PASS
    assert found(result)[blue_green].status == Status.WARN
    assert rolling not in found(result)


def test_canary_passes_a_weighted_lambda_alias_and_ignores_plain_aliases(aws, make_context):
    first, second = lambda_function(aws, "checkout")
    client = aws.client("lambda")
    weighted = client.create_alias(
        FunctionName="checkout",
        Name="live",
        FunctionVersion=first,
        RoutingConfig={"AdditionalVersionWeights": {second: 0.1}},
    )["AliasArn"]
    client.create_alias(FunctionName="checkout", Name="beta", FunctionVersion=second)
    result = run("delivery.canary", make_context())
    assert result.status == Status.PASS, result
    assert set(found(result)) == {weighted}
    assert found(result)[weighted].reason == (
        f"Lambda alias live of checkout shifts traffic by weight: 10% to version {second}, "
        f"the rest to version {first}"
    )
    assert result.facts["lambda_aliases"] == 2 and result.facts["weighted_aliases"] == 1


def test_canary_not_applicable_for_lambda_aliases_without_weights(aws, make_context):
    first, _ = lambda_function(aws, "checkout")
    aws.client("lambda").create_alias(FunctionName="checkout", Name="live", FunctionVersion=first)
    result = run("delivery.canary", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert result.facts["lambda_functions"] == 1


# Feature Flags


def appconfig_app(aws, name: str, *profile_types: str) -> dict:
    appconfig = aws.client("appconfig")
    application = without_metadata(appconfig.create_application(Name=name))
    for number, kind in enumerate(profile_types):
        appconfig.create_configuration_profile(
            ApplicationId=application["Id"],
            Name=f"{name}-{number}",
            LocationUri="hosted",
            Type=kind,
        )
    return application


def test_feature_flags_error_where_listing_applications_is_unsupported(aws, make_context):
    # moto lacks ListApplications (STACK-NOTES); the emulator answers that NotImplemented.
    result = run("delivery.feature_flags", make_context())
    assert result.status == Status.ERROR
    assert result.summary.startswith("appconfig:ListApplications failed: NotImplemented: ")


def test_feature_flags_pass_when_an_application_has_a_flag_profile(aws, make_context):
    shop = appconfig_app(aws, "shop", "AWS.AppConfig.FeatureFlags", "AWS.Freeform")
    reports = appconfig_app(aws, "reports", "AWS.Freeform")
    context = make_context()
    # moto lacks ListApplications only: answer it with the applications moto holds, and let
    # moto list their configuration profiles.
    listing = {"Items": [shop, reports]}
    with answering(context.client("appconfig"), "ListApplications", listing):
        result = run("delivery.feature_flags", context)
    assert result.status == Status.PASS, result
    assert result.summary == "1 of 2 AppConfig applications have feature-flag profiles"
    by_resource = found(result)
    assert by_resource[f"shop ({shop['Id']})"].reason == "feature-flag profile(s): shop-0"
    # An application holding other configuration only is listed, not held against the flags.
    unflagged = by_resource[f"reports ({reports['Id']})"]
    assert unflagged.status == Status.NOT_APPLICABLE
    assert unflagged.reason == "no feature-flag profile (1 other profile(s))"
    assert result.facts == {
        "applications": 2,
        "applications_with_flags": 1,
        "feature_flag_profiles": 1,
    }


def test_feature_flags_warn_when_no_application_has_flags(aws, make_context):
    reports = appconfig_app(aws, "reports", "AWS.Freeform")
    context = make_context()
    with answering(context.client("appconfig"), "ListApplications", {"Items": [reports]}):
        result = run("delivery.feature_flags", context)
    assert result.status == Status.WARN
    assert result.summary.startswith(
        f"No AppConfig feature-flag profile in {REGION} (1 application(s) hold other configuration)"
    )
    assert "which features are risky cannot be read from AWS" in result.summary
    assert found(result)[f"reports ({reports['Id']})"].status == Status.WARN


def test_feature_flags_warn_without_any_appconfig_application(aws, make_context):
    context = make_context()
    with Stubber(context.client("appconfig")) as stubber:
        stubber.add_response("list_applications", {"Items": []})
        result = run("delivery.feature_flags", context)
    assert result.status == Status.WARN
    assert result.findings == ()
    assert result.facts["applications"] == 0


def test_feature_flags_page_through_applications_and_profiles(aws, make_context):
    context = make_context()
    # One application, so that the profile listing (one thread per application) keeps the
    # order Stubber expects.
    with Stubber(context.client("appconfig")) as stubber:
        stubber.add_response(
            "list_applications", {"Items": [{"Id": "a1", "Name": "shop"}], "NextToken": "t1"}
        )
        stubber.add_response("list_applications", {"Items": []}, {"NextToken": "t1"})
        stubber.add_response(
            "list_configuration_profiles",
            {
                "Items": [{"Id": "p1", "Name": "settings", "Type": "AWS.Freeform"}],
                "NextToken": "t2",
            },
            {"ApplicationId": "a1"},
        )
        stubber.add_response(
            "list_configuration_profiles",
            {"Items": [{"Id": "p2", "Name": "release", "Type": "AWS.AppConfig.FeatureFlags"}]},
            {"ApplicationId": "a1", "NextToken": "t2"},
        )
        result = run("delivery.feature_flags", context)
        stubber.assert_no_pending_responses()
    assert result.status == Status.PASS, result
    assert found(result)["shop (a1)"].reason == "feature-flag profile(s): release"
    assert result.facts["feature_flag_profiles"] == 1


# Errors


@pytest.mark.parametrize(
    ("key", "service", "responses", "failing", "expected"),
    [
        (
            "delivery.blue_green",
            "codedeploy",
            [],
            "list_applications",
            "Access denied: the probe needs codedeploy:ListApplications",
        ),
        (
            "delivery.pipelines",
            "codepipeline",
            [("list_pipelines", {"pipelines": [{"name": "web"}]})],
            "get_pipeline",
            "Access denied: the probe needs codepipeline:GetPipeline",
        ),
        (
            "delivery.canary",
            "lambda",
            [("list_functions", {"Functions": [{"FunctionName": "checkout"}]})],
            "list_aliases",
            "Access denied: the probe needs lambda:ListAliases",
        ),
    ],
)
def test_refused_calls_become_error_results_naming_the_action(
    aws, make_context, key, service, responses, failing, expected
):
    context = make_context()
    with Stubber(context.client(service)) as stubber:
        for operation, response in responses:
            stubber.add_response(operation, response)
        stubber.add_client_error(failing, service_error_code="AccessDeniedException")
        result = run(key, context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(expected), result.summary
