"""Deployment (and the Runbook of Operational): pipelines that deploy, blue/green and canary
releases, feature flags — and SSM runbooks as supporting evidence for a runbook that lives in
the repository, where no AWS API can read it."""

from __future__ import annotations

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

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
CANARY_TYPES = {"TimeBasedCanary", "TimeBasedLinear"}
FEATURE_FLAGS = "AWS.AppConfig.FeatureFlags"


def _deployment_groups(context: ProbeContext) -> list[dict]:
    client = context.client("codedeploy")
    pairs = [
        (application, group)
        for application in context.paginate("codedeploy", "list_applications", "applications")
        for group in context.paginate(
            "codedeploy", "list_deployment_groups", "deploymentGroups", applicationName=application
        )
    ]
    return parallel_map(
        lambda pair: client.get_deployment_group(
            applicationName=pair[0], deploymentGroupName=pair[1]
        )["deploymentGroupInfo"],
        pairs,
    )


@probe(
    key="delivery.pipelines",
    section=SECTION,
    item="CI/CD Pipeline",
    title="CodePipeline pipelines deploy in this region",
    actions=("codepipeline:ListPipelines", "codepipeline:GetPipeline"),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Deploy through a pipeline, not by hand: CodePipeline (source → build → deploy "
        "stages), or your CI system with its own evidence uploaded to Readiness "
        "(docs/ci-gate.md). A pipeline outside AWS is invisible here: mark the item with a "
        "link to it."
    ),
)
def pipelines(context: ProbeContext) -> ProbeResult:
    """Each pipeline should have a deploy stage; none in the region warns, since the
    pipeline may well run outside AWS (GitHub Actions, GitLab)."""
    client = context.client("codepipeline")
    findings = []
    for summary in context.paginate("codepipeline", "list_pipelines", "pipelines"):
        pipeline = client.get_pipeline(name=summary["name"])["pipeline"]
        stages = pipeline.get("stages", [])
        deploys = any(
            action.get("actionTypeId", {}).get("category") == "Deploy"
            for stage in stages
            for action in stage.get("actions", [])
        )
        findings.append(
            Finding(
                summary["name"],
                Status.PASS if deploys else Status.WARN,
                f"{len(stages)} stages" + ("" if deploys else ", none of them deploys"),
            )
        )
    if not findings:
        return ProbeResult(
            Status.WARN,
            "No CodePipeline pipeline in this region: if the pipeline runs elsewhere, link it "
            "on the item",
        )
    return verdict(
        findings,
        passed="{total} pipelines deploy",
        failed="",
        warned="{warned} of {total} pipelines have no deploy stage",
        empty="",
    )


@probe(
    key="delivery.blue_green",
    section=SECTION,
    item="Blue/Green Deployment",
    title="CodeDeploy deployment groups deploy blue/green",
    actions=(
        "codedeploy:ListApplications",
        "codedeploy:ListDeploymentGroups",
        "codedeploy:GetDeploymentGroup",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Switch the deployment group to blue/green (CodeDeploy > Applications > group > Edit "
        "> Deployment type: Blue/green) with automatic rollback on failed alarms; for ECS, "
        "use the CODE_DEPLOY deployment controller."
    ),
)
def blue_green(context: ProbeContext) -> ProbeResult:
    """In-place groups warn; no CodeDeploy at all is not applicable ("if applicable")."""
    findings = [
        Finding(
            f"{group['applicationName']}/{group['deploymentGroupName']}",
            Status.PASS if style == "BLUE_GREEN" else Status.WARN,
            "blue/green"
            if style == "BLUE_GREEN"
            else "in place: old instances are replaced while they serve",
        )
        for group in _deployment_groups(context)
        for style in [(group.get("deploymentStyle") or {}).get("deploymentType", "IN_PLACE")]
    ]
    return verdict(
        findings,
        passed="{total} deployment groups deploy blue/green",
        failed="",
        warned="{warned} of {total} deployment groups deploy in place",
        empty="No CodeDeploy deployment groups in this region",
    )


@probe(
    key="delivery.canary",
    section=SECTION,
    item="Canary Deployment",
    title="Traffic shifts gradually: canary/linear CodeDeploy configs or weighted Lambda aliases",
    actions=(
        "codedeploy:ListApplications",
        "codedeploy:ListDeploymentGroups",
        "codedeploy:GetDeploymentGroup",
        "codedeploy:GetDeploymentConfig",
        "lambda:ListFunctions",
        "lambda:ListAliases",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Use a canary or linear deployment configuration (e.g. "
        "CodeDeployDefault.LambdaCanary10Percent5Minutes, "
        "CodeDeployDefault.ECSLinear10PercentEvery1Minutes) with alarms that roll back, or "
        "shift a Lambda alias gradually with AdditionalVersionWeights."
    ),
)
def canary(context: ProbeContext) -> ProbeResult:
    """Groups whose config shifts traffic all at once warn; weighted aliases pass."""
    client = context.client("codedeploy")
    configs: dict[str, bool] = {}
    findings = []
    for group in _deployment_groups(context):
        name = group.get("deploymentConfigName") or "CodeDeployDefault.OneAtATime"
        if name not in configs:
            try:
                info = client.get_deployment_config(deploymentConfigName=name)[
                    "deploymentConfigInfo"
                ]
                routing = (info.get("trafficRoutingConfig") or {}).get("type")
                configs[name] = routing in CANARY_TYPES
            except (ClientError, ResponseParserError):
                # Built-in names say what they do where the API does not answer.
                configs[name] = "Canary" in name or "Linear" in name
        findings.append(
            Finding(
                f"{group['applicationName']}/{group['deploymentGroupName']}",
                Status.PASS if configs[name] else Status.WARN,
                f"{name}: " + ("shifts traffic gradually" if configs[name] else "all at once"),
            )
        )
    lambda_client = context.client("lambda")
    for function in context.paginate("lambda", "list_functions", "Functions"):
        for alias in lambda_client.list_aliases(FunctionName=function["FunctionName"]).get(
            "Aliases", []
        ):
            weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
            if weights:
                findings.append(
                    Finding(
                        f"{function['FunctionName']}:{alias['Name']}",
                        Status.PASS,
                        "weighted routing "
                        + ", ".join(f"v{v} {w:.0%}" for v, w in sorted(weights.items())),
                    )
                )
    return verdict(
        findings,
        passed="{total} releases shift traffic gradually",
        failed="",
        warned="{warned} of {total} deployment groups shift all traffic at once",
        empty="No CodeDeploy groups or weighted Lambda aliases in this region",
    )


@probe(
    key="delivery.feature_flags",
    section=SECTION,
    item="Feature Flags",
    title="AppConfig holds feature-flag profiles",
    actions=("appconfig:ListApplications", "appconfig:ListConfigurationProfiles"),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Put risky features behind flags: AWS AppConfig > Create application > Configuration "
        "profile of type Feature flag, or a flag service; the probe only sees AppConfig, so "
        "link another service's flags on the item."
    ),
)
def feature_flags(context: ProbeContext) -> ProbeResult:
    """Pass with at least one FeatureFlags profile; warn without (which features are risky
    is not something AWS can tell)."""
    findings = []
    for application in context.paginate("appconfig", "list_applications", "Items"):
        profiles = list(
            context.paginate(
                "appconfig",
                "list_configuration_profiles",
                "Items",
                ApplicationId=application["Id"],
            )
        )
        flags = [p for p in profiles if p.get("Type") == FEATURE_FLAGS]
        if flags:
            findings.append(
                Finding(
                    application.get("Name") or application["Id"],
                    Status.PASS,
                    "feature flags: " + ", ".join(p.get("Name", p.get("Id", "")) for p in flags),
                )
            )
    if not findings:
        return ProbeResult(
            Status.WARN,
            "No AppConfig feature-flag profile in this region: risky features ship switched "
            "on, unless flags live in another service (link it on the item)",
        )
    return verdict(
        findings,
        passed="{total} AppConfig applications have feature flags",
        failed="",
        empty="",
    )


@probe(
    key="operational.runbooks",
    section="Operational",
    item="Runbook",
    title="SSM Automation runbooks of this account (supporting evidence only)",
    actions=("ssm:ListDocuments",),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "The runbook itself is docs/runbook.md in the repository, which AWS cannot see: a "
        "person confirms it. Automating its steps as SSM Automation documents makes them "
        "repeatable and shows up here."
    ),
    supporting=True,
)
def runbooks(context: ProbeContext) -> ProbeResult:
    """Lists Automation documents owned by the account; never verifies the item."""
    documents = [
        document["Name"]
        for document in context.paginate(
            "ssm",
            "list_documents",
            "DocumentIdentifiers",
            Filters=[
                {"Key": "DocumentType", "Values": ["Automation"]},
                {"Key": "Owner", "Values": ["Self"]},
            ],
        )
    ]
    note = "supporting evidence only — the runbook in the repository is checked by a person"
    if not documents:
        return ProbeResult(Status.NOT_APPLICABLE, f"No SSM Automation runbooks ({note})")
    return ProbeResult(
        Status.PASS,
        f"{len(documents)} SSM Automation runbook(s) ({note})",
        tuple(Finding(name, Status.PASS, "Automation document") for name in documents[:50]),
        {"documents": len(documents)},
    )
