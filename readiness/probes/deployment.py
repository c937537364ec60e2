"""Deployment: pipelines that deploy, blue/green and canary releases, feature flags."""

from __future__ import annotations

from collections import Counter

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

SECTION = "Deployment"

FEATURE_FLAGS = "AWS.AppConfig.FeatureFlags"

# CodeDeploy reserves this prefix for its own configurations, whose names say how they shift
# traffic (LambdaCanary10Percent5Minutes, ECSLinear10PercentEvery1Minutes, ECSAllAtOnce); only
# custom configurations need GetDeploymentConfig.
BUILT_IN_CONFIG = "CodeDeployDefault."

# CodeDeploy shifts traffic only on these platforms; EC2/on-premises configurations set a
# number of healthy hosts, so a Server group cannot be made canary.
TRAFFIC_SHIFTING_PLATFORMS = {"Lambda", "ECS"}

# ECS strategies that start the new revision beside the old one and move traffic to it.
ECS_SIDE_BY_SIDE = {"BLUE_GREEN", "CANARY", "LINEAR"}

ECS_GRADUAL = {"CANARY", "LINEAR"}

DESCRIBE_SERVICES_MAX = 10


def _deployment_groups(context: ProbeContext) -> list[dict]:
    """Every CodeDeploy deployment group of the region, as GetDeploymentGroup describes it."""
    client = context.client("codedeploy")
    applications = list(context.paginate("codedeploy", "list_applications", "applications"))
    names = parallel_map(
        lambda application: [
            (application, group)
            for group in context.paginate(
                "codedeploy",
                "list_deployment_groups",
                "deploymentGroups",
                applicationName=application,
            )
        ],
        applications,
    )
    # One call per group: BatchGetDeploymentGroups would take 100 at a time, but moto lacks it
    # and a region rarely has more than a few dozen groups.
    return parallel_map(
        lambda pair: client.get_deployment_group(
            applicationName=pair[0], deploymentGroupName=pair[1]
        )["deploymentGroupInfo"],
        [pair for pairs in names for pair in pairs],
    )


def _group_resource(group: dict) -> str:
    return f"{group['applicationName']}/{group['deploymentGroupName']}"


def _ecs_services(context: ProbeContext) -> list[dict]:
    """Every active ECS service of the region, as DescribeServices describes it."""
    ecs = context.client("ecs")
    clusters = list(context.paginate("ecs", "list_clusters", "clusterArns"))
    listed = parallel_map(
        lambda cluster: list(
            context.paginate("ecs", "list_services", "serviceArns", cluster=cluster)
        ),
        clusters,
    )
    batches = [
        (cluster, arns[start : start + DESCRIBE_SERVICES_MAX])
        for cluster, arns in zip(clusters, listed, strict=True)
        for start in range(0, len(arns), DESCRIBE_SERVICES_MAX)
    ]
    described = parallel_map(
        lambda batch: ecs.describe_services(cluster=batch[0], services=batch[1])["services"],
        batches,
    )
    # DRAINING services are being deleted: how they deploy no longer matters.
    return [s for services in described for s in services if s.get("status") == "ACTIVE"]


def _ecs_deployment(service: dict) -> tuple[str, str]:
    controller = (service.get("deploymentController") or {}).get("type") or "ECS"
    strategy = (service.get("deploymentConfiguration") or {}).get("strategy") or "ROLLING"
    return controller, strategy


def _cluster_name(service: dict) -> str:
    return service.get("clusterArn", "").rsplit("/", 1)[-1]


# CI/CD Pipeline


def _deploy_stages(pipeline: dict) -> list[str]:
    return [
        stage["name"]
        for stage in pipeline.get("stages", [])
        if any(
            action.get("actionTypeId", {}).get("category") == "Deploy"
            for action in stage.get("actions", [])
        )
    ]


@probe(
    key="delivery.pipelines",
    section=SECTION,
    item="CI/CD Pipeline",
    title=(
        "The region has a CodePipeline pipeline, and each pipeline has a stage with a Deploy "
        "action (latest execution status reported)"
    ),
    actions=(
        "codepipeline:ListPipelines",
        "codepipeline:GetPipeline",
        "codepipeline:ListPipelineExecutions",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Release through a pipeline, not from a laptop: a CodePipeline with source, build and "
        "deploy stages (`aws codepipeline create-pipeline --cli-input-json file://pipeline.json`"
        ", CloudFormation AWS::CodePipeline::Pipeline) whose Deploy stage uses CodeDeploy, ECS, "
        "CloudFormation or another deploy provider. A pipeline that only builds needs a Deploy "
        "stage. When the pipeline runs in another region or outside AWS (GitHub Actions, "
        "GitLab CI, Jenkins) this probe cannot see it: settle the item by hand with a link to "
        "the pipeline."
    ),
)
def pipelines(context: ProbeContext) -> ProbeResult:
    client = context.client("codepipeline")
    names = [p["name"] for p in context.paginate("codepipeline", "list_pipelines", "pipelines")]

    def describe(name: str) -> tuple[dict, dict | None]:
        answer = client.get_pipeline(name=name)
        latest = client.list_pipeline_executions(pipelineName=name, maxResults=1).get(
            "pipelineExecutionSummaries", []
        )
        return answer, (latest[0] if latest else None)

    findings = []
    stage_counts: dict[str, int] = {}
    latest_status: dict[str, str] = {}
    for name, (answer, latest) in zip(names, parallel_map(describe, names), strict=True):
        pipeline = answer["pipeline"]
        stages = [stage["name"] for stage in pipeline.get("stages", [])]
        deploys = _deploy_stages(pipeline)
        stage_counts[name] = len(stages)
        latest_status[name] = latest.get("status", "unknown") if latest else "never run"
        # The status of the last run is shown, not judged: a failed build does not make the
        # release process manual, and a new pipeline has not run yet.
        described = (
            f"{len(stages)} stage(s) ({' → '.join(stages)}); latest execution: "
            f"{latest_status[name]}"
        )
        findings.append(
            Finding(
                answer.get("metadata", {}).get("pipelineArn") or name,
                Status.PASS if deploys else Status.WARN,
                f"{described}; deploys in {', '.join(deploys)}"
                if deploys
                else f"{described}; no Deploy action, so it builds or tests but does not "
                "release (if a build or invoke action deploys, say so on the item)",
            )
        )
    facts = {
        "pipelines": len(names),
        "pipeline_names": names,
        "stages": stage_counts,
        "latest_execution": latest_status,
    }
    if not findings:
        # WARN, not FAIL: a pipeline in another region or outside AWS is invisible here, so
        # absence is not proof of manual releases; not NOT_APPLICABLE either, since an account
        # with no pipeline anywhere would then never be flagged.
        return ProbeResult(
            Status.WARN,
            f"No CodePipeline pipeline in {context.region}: the item asks for a fully automated "
            "pipeline. One in another region or outside AWS (GitHub Actions, GitLab CI, "
            "Jenkins) cannot be seen by this probe, so a person must confirm it",
            facts=facts,
        )
    return verdict(
        findings,
        passed="All {total} CodePipeline pipelines have a Deploy stage",
        failed="",
        warned="{warned} of {total} CodePipeline pipelines have no Deploy stage",
        empty="",
        facts=facts,
    )


# Blue/Green Deployment


@probe(
    key="delivery.blue_green",
    section=SECTION,
    item="Blue/Green Deployment",
    title=(
        "CodeDeploy deployment groups use the BLUE_GREEN deployment type; ECS services deploy "
        "through CodeDeploy or with ECS's blue/green, canary or linear strategy"
    ),
    actions=(
        "codedeploy:ListApplications",
        "codedeploy:ListDeploymentGroups",
        "codedeploy:GetDeploymentGroup",
        "ecs:ListClusters",
        "ecs:ListServices",
        "ecs:DescribeServices",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Switch in-place CodeDeploy deployment groups to blue/green: `aws deploy "
        "update-deployment-group --application-name <app> --current-deployment-group-name "
        "<group> --deployment-style deploymentType=BLUE_GREEN,deploymentOption="
        "WITH_TRAFFIC_CONTROL --blue-green-deployment-configuration ...` with a load balancer "
        "(loadBalancerInfo) and automatic rollback on alarms. ECS services: set the deployment "
        "strategy to BLUE_GREEN (`aws ecs update-service --deployment-configuration "
        "strategy=BLUE_GREEN,bakeTimeInMinutes=...`) or use the CODE_DEPLOY deployment "
        "controller."
    ),
)
def blue_green(context: ProbeContext) -> ProbeResult:
    groups = _deployment_groups(context)
    findings = []
    for group in groups:
        style = (group.get("deploymentStyle") or {}).get("deploymentType") or "IN_PLACE"
        platform = group.get("computePlatform") or "Server"
        if style == "BLUE_GREEN":
            findings.append(
                Finding(
                    _group_resource(group),
                    Status.PASS,
                    f"CodeDeploy {platform} group deploys blue/green: the new revision takes "
                    "traffic beside the old one, which stays for rollback",
                )
            )
        else:
            findings.append(
                Finding(
                    _group_resource(group),
                    Status.WARN,
                    f"CodeDeploy {platform} group deploys in place: instances are updated "
                    "while they serve, and a rollback is another deployment",
                )
            )
    # An ECS service with the CODE_DEPLOY controller is judged by its deployment group.
    by_codedeploy = {
        (service.get("clusterName"), service.get("serviceName"))
        for group in groups
        for service in group.get("ecsServices") or []
    }
    not_judged: Counter[str] = Counter()
    services = _ecs_services(context)
    for service in services:
        controller, strategy = _ecs_deployment(service)
        if controller == "CODE_DEPLOY":
            if (_cluster_name(service), service["serviceName"]) not in by_codedeploy:
                findings.append(
                    Finding(
                        service["serviceArn"],
                        Status.PASS,
                        "ECS service with the CODE_DEPLOY controller: CodeDeploy deploys it "
                        "blue/green",
                    )
                )
        elif controller == "ECS" and strategy in ECS_SIDE_BY_SIDE:
            findings.append(
                Finding(
                    service["serviceArn"],
                    Status.PASS,
                    f"ECS service with the {strategy} strategy: the new revision starts beside "
                    "the old one before traffic moves",
                )
            )
        else:
            # Rolling (or EXTERNAL) services are not judged: blue/green is "if applicable",
            # and a rolling ECS service is the default, not a choice against it.
            not_judged[strategy if controller == "ECS" else controller] += 1
    facts = {
        "deployment_groups": len(groups),
        "in_place_groups": sum(f.status == Status.WARN for f in findings),
        "ecs_services": len(services),
        "ecs_services_not_judged": dict(not_judged),
    }
    others = (
        f"; {sum(not_judged.values())} ECS service(s) deploy rolling or externally (not "
        "judged: the item applies where blue/green is set up)"
        if not_judged
        else ""
    )
    return verdict(
        findings,
        passed="All {total} CodeDeploy deployment groups and ECS services judged deploy "
        "blue/green" + others,
        failed="",
        warned="{warned} of {total} CodeDeploy deployment groups deploy in place" + others,
        empty=f"No CodeDeploy deployment group and no blue/green ECS service in {context.region}"
        + others,
        facts=facts,
    )


# Canary Deployment


def _routing(info: dict) -> tuple[bool, str]:
    """Whether a custom deployment configuration shifts traffic gradually, and how."""
    routing = info.get("trafficRoutingConfig") or {}
    kind = routing.get("type") or "AllAtOnce"
    if kind == "TimeBasedCanary":
        step = routing.get("timeBasedCanary") or {}
        return True, (
            f"canary: {step.get('canaryPercentage', '?')}% first, the rest after "
            f"{step.get('canaryInterval', '?')} min"
        )
    if kind == "TimeBasedLinear":
        step = routing.get("timeBasedLinear") or {}
        return True, (
            f"linear: {step.get('linearPercentage', '?')}% every "
            f"{step.get('linearInterval', '?')} min"
        )
    return False, "shifts all traffic at once"


def _built_in_routing(name: str) -> tuple[bool, str]:
    short = name.removeprefix(BUILT_IN_CONFIG)
    if "Canary" in short:
        return True, "canary"
    if "Linear" in short:
        return True, "linear"
    return False, "shifts all traffic at once"


@probe(
    key="delivery.canary",
    section=SECTION,
    item="Canary Deployment",
    title=(
        "CodeDeploy Lambda/ECS deployment groups use a canary or linear configuration; ECS "
        "services use the CANARY or LINEAR strategy; Lambda aliases shifting traffic by weight"
    ),
    actions=(
        "codedeploy:ListApplications",
        "codedeploy:ListDeploymentGroups",
        "codedeploy:GetDeploymentGroup",
        "codedeploy:GetDeploymentConfig",
        "ecs:ListClusters",
        "ecs:ListServices",
        "ecs:DescribeServices",
        "lambda:ListFunctions",
        "lambda:ListAliases",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Give CodeDeploy Lambda and ECS deployment groups a canary or linear configuration "
        "(`aws deploy update-deployment-group ... --deployment-config-name "
        "CodeDeployDefault.LambdaCanary10Percent5Minutes` or "
        "CodeDeployDefault.ECSLinear10PercentEvery1Minutes, or a custom one with "
        "`aws deploy create-deployment-config --traffic-routing-config type=TimeBasedCanary,...`)"
        " and CloudWatch alarms that roll back. ECS services deploying blue/green: set the "
        "strategy to CANARY or LINEAR (`aws ecs update-service --deployment-configuration "
        "strategy=CANARY,canaryConfiguration={canaryPercent=10,canaryBakeTimeInMinutes=5}`). "
        "SAM functions: `DeploymentPreference: Type: Canary10Percent5Minutes`."
    ),
)
def canary(context: ProbeContext) -> ProbeResult:
    codedeploy = context.client("codedeploy")
    groups = _deployment_groups(context)
    shifting = [g for g in groups if g.get("computePlatform") in TRAFFIC_SHIFTING_PLATFORMS]

    def config_of(group: dict) -> str:
        return group.get("deploymentConfigName") or (
            f"{BUILT_IN_CONFIG}{group['computePlatform']}AllAtOnce"
        )

    names = {config_of(group) for group in shifting}
    custom = sorted(name for name in names if not name.startswith(BUILT_IN_CONFIG))

    def read_config(name: str) -> tuple[bool, str]:
        answer = codedeploy.get_deployment_config(deploymentConfigName=name)
        return _routing(answer["deploymentConfigInfo"])

    routing = dict(zip(custom, parallel_map(read_config, custom), strict=True))
    findings = []
    for group in shifting:
        name = config_of(group)
        gradual, how = routing[name] if name in routing else _built_in_routing(name)
        findings.append(
            Finding(
                _group_resource(group),
                Status.PASS if gradual else Status.WARN,
                f"CodeDeploy {group['computePlatform']} group, {name}: {how}",
            )
        )
    services = _ecs_services(context)
    for service in services:
        controller, strategy = _ecs_deployment(service)
        if controller != "ECS" or strategy not in ECS_SIDE_BY_SIDE:
            continue  # CodeDeploy's services are judged by their group; rolling ones can't shift
        configuration = service.get("deploymentConfiguration") or {}
        if strategy == "CANARY":
            step = configuration.get("canaryConfiguration") or {}
            how = (
                f"canary: {step.get('canaryPercent', '?')}% first, baked "
                f"{step.get('canaryBakeTimeInMinutes', '?')} min"
            )
        elif strategy == "LINEAR":
            step = configuration.get("linearConfiguration") or {}
            how = (
                f"linear: {step.get('stepPercent', '?')}% steps, baked "
                f"{step.get('stepBakeTimeInMinutes', '?')} min each"
            )
        else:
            how = "blue/green shifts all traffic at once"
        findings.append(
            Finding(
                service["serviceArn"],
                Status.PASS if strategy in ECS_GRADUAL else Status.WARN,
                f"ECS service, {strategy} strategy: {how}",
            )
        )
    functions = [
        f["FunctionName"] for f in context.paginate("lambda", "list_functions", "Functions")
    ]
    aliases = parallel_map(
        lambda function: list(
            context.paginate("lambda", "list_aliases", "Aliases", FunctionName=function)
        ),
        functions,
    )
    weighted = 0
    for function, function_aliases in zip(functions, aliases, strict=True):
        for alias in function_aliases:
            weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
            # Weights exist only while a shift is under way, so an alias without them says
            # nothing either way: only weighted ones are evidence.
            if not weights:
                continue
            weighted += 1
            shares = ", ".join(f"{w:.0%} to version {v}" for v, w in sorted(weights.items()))
            findings.append(
                Finding(
                    alias.get("AliasArn") or f"{function}:{alias['Name']}",
                    Status.PASS,
                    f"Lambda alias {alias['Name']} of {function} shifts traffic by weight: "
                    f"{shares}, the rest to version {alias.get('FunctionVersion', '?')}",
                )
            )
    facts = {
        "deployment_groups_judged": len(shifting),
        "server_deployment_groups": len(groups) - len(shifting),
        "custom_deployment_configs": custom,
        "ecs_services": len(services),
        "lambda_functions": len(functions),
        "lambda_aliases": sum(map(len, aliases)),
        "weighted_aliases": weighted,
    }
    return verdict(
        findings,
        passed="All {total} traffic-shifting releases shift gradually (canary or linear)",
        failed="",
        warned="{warned} of {total} traffic-shifting releases move all traffic at once",
        empty=(
            f"Nothing in {context.region} can release as a canary: no CodeDeploy Lambda or ECS "
            "deployment group, no ECS service with a blue/green, canary or linear strategy, "
            "and no Lambda alias shifting traffic by weight now"
        ),
        facts=facts,
    )


# Feature Flags


@probe(
    key="delivery.feature_flags",
    section=SECTION,
    item="Feature Flags",
    title="An AppConfig application has a configuration profile of type Feature flags",
    actions=("appconfig:ListApplications", "appconfig:ListConfigurationProfiles"),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Put risky features behind flags: `aws appconfig create-configuration-profile "
        "--application-id <app> --name release-flags --location-uri hosted --type "
        "AWS.AppConfig.FeatureFlags`, deploy it to the environment and read it with the "
        "AppConfig agent or Lambda extension. Flags kept in another service (LaunchDarkly, "
        "Unleash, a config file) are invisible here: settle the item by hand with a link."
    ),
)
def feature_flags(context: ProbeContext) -> ProbeResult:
    applications = list(context.paginate("appconfig", "list_applications", "Items"))
    profiles = parallel_map(
        lambda application: list(
            context.paginate(
                "appconfig",
                "list_configuration_profiles",
                "Items",
                ApplicationId=application["Id"],
            )
        ),
        applications,
    )
    flagged, unflagged = [], []
    for application, application_profiles in zip(applications, profiles, strict=True):
        flags = [
            p.get("Name") or p["Id"] for p in application_profiles if p.get("Type") == FEATURE_FLAGS
        ]
        # Names need not be unique; the id tells two applications of the same name apart.
        resource = f"{application.get('Name', '?')} ({application['Id']})"
        if flags:
            flagged.append(
                Finding(resource, Status.PASS, f"feature-flag profile(s): {', '.join(flags)}")
            )
        else:
            unflagged.append(
                (
                    resource,
                    f"no feature-flag profile ({len(application_profiles)} other profile(s))",
                )
            )
    facts = {
        "applications": len(applications),
        "applications_with_flags": len(flagged),
        "feature_flag_profiles": sum(p.get("Type") == FEATURE_FLAGS for ps in profiles for p in ps),
    }
    if flagged:
        # An application holding only other configuration is not evidence against flags
        # elsewhere: listed, not judged.
        return verdict(
            flagged + [Finding(r, Status.NOT_APPLICABLE, why) for r, why in unflagged],
            passed=f"{len(flagged)} of {len(applications)} AppConfig applications have "
            "feature-flag profiles",
            failed="",
            empty="",
            facts=facts,
        )
    # WARN, not FAIL: which features are risky is not something AWS can tell, and flags may
    # live outside AppConfig; but no flag at all is worth a person's look.
    return ProbeResult(
        Status.WARN,
        f"No AppConfig feature-flag profile in {context.region}"
        + (
            f" ({len(applications)} application(s) hold other configuration)"
            if applications
            else ""
        )
        + ": which features are risky cannot be read from AWS, so a person must confirm they "
        "are flagged, or that flags live in another service",
        tuple(Finding(r, Status.WARN, why) for r, why in unflagged),
        facts,
    )
