"""Performance: instances sized to their load, caches where the app runs, and a CDN that
serves only HTTPS, logs and sits behind a WAF.

The Resource Sizing check is shared with Cost Optimization's Right-Sizing (aws.py)."""

from __future__ import annotations

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from readiness.probes.aws import SIZING_ACTIONS, SIZING_REMEDIATION, right_sizing
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

SECTION = "Performance"


probe(
    key="performance.right_sizing",
    section=SECTION,
    item="Resource Sizing",
    title="Running instances are sized to their CPU load",
    actions=SIZING_ACTIONS,
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=SIZING_REMEDIATION,
)(right_sizing)


@probe(
    key="performance.cache",
    section=SECTION,
    item="Caching",
    title="A cache (ElastiCache) runs where the application runs",
    actions=(
        "elasticache:DescribeCacheClusters",
        "elasticache:DescribeServerlessCaches",
        "ec2:DescribeInstances",
        "ecs:ListClusters",
        "lambda:ListFunctions",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Put read-heavy data behind ElastiCache (Redis/Valkey; serverless for spiky load) in "
        "the application's region and VPC, with encryption in transit and at rest; cache "
        "database reads and session state first."
    ),
)
def cache(context: ProbeContext) -> ProbeResult:
    """Pass with an available cache; warn when the region runs compute without one; not
    applicable when the region runs no compute."""
    elasticache = context.client("elasticache")
    clusters = [
        c
        for c in context.paginate("elasticache", "describe_cache_clusters", "CacheClusters")
        if c.get("CacheClusterStatus", "available") in ("available", "creating", "modifying")
    ]
    try:
        serverless = elasticache.describe_serverless_caches().get("ServerlessCaches", [])
    except (ClientError, ResponseParserError):
        serverless = []  # not offered in every region or emulator: clusters still count
    caches = [
        *(
            Finding(c["CacheClusterId"], Status.PASS, f"{c.get('Engine')} {c.get('CacheNodeType')}")
            for c in clusters
        ),
        *(Finding(c["ServerlessCacheName"], Status.PASS, "serverless") for c in serverless),
    ]
    if caches:
        return verdict(
            caches,
            passed="{total} caches in this region",
            failed="",
            empty="",
            facts={"caches": len(caches)},
        )
    compute = bool(
        next(iter(context.paginate("ec2", "describe_instances", "Reservations")), None)
        or context.client("ecs").list_clusters().get("clusterArns")
        or next(iter(context.paginate("lambda", "list_functions", "Functions")), None)
    )
    if compute:
        return ProbeResult(
            Status.WARN, "The region runs compute but no cache: every read reaches the database"
        )
    return ProbeResult(Status.NOT_APPLICABLE, "No compute and no cache in this region")


@probe(
    key="performance.apigw_cache",
    section=SECTION,
    item="Caching",
    title="API Gateway REST stages cache responses",
    actions=("apigateway:GET",),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Enable the stage cache for read endpoints (API Gateway > Stages > Settings > Enable "
        "API cache, size 0.5 GB upwards, TTL per method) or cache in front with CloudFront."
    ),
)
def apigw_cache(context: ProbeContext) -> ProbeResult:
    """Each stage of each REST API: cache cluster enabled or method-level caching on."""
    apigateway = context.client("apigateway")
    findings = []
    for api in context.paginate("apigateway", "get_rest_apis", "items"):
        for stage in apigateway.get_stages(restApiId=api["id"]).get("item", []):
            methods = stage.get("methodSettings") or {}
            cached = stage.get("cacheClusterEnabled") or any(
                settings.get("cachingEnabled") for settings in methods.values()
            )
            findings.append(
                Finding(
                    f"{api['name']}/{stage['stageName']}",
                    Status.PASS if cached else Status.WARN,
                    f"cache {stage.get('cacheClusterSize', '')} GB".replace("  ", " ")
                    if cached
                    else "no stage cache: every request reaches the backend",
                )
            )
    return verdict(
        findings,
        passed="{total} REST API stages cache responses",
        failed="",
        warned="{warned} of {total} REST API stages do not cache",
        empty="No API Gateway REST APIs in this region",
    )


@probe(
    key="performance.cloudfront",
    section=SECTION,
    item="CDN",
    title="CloudFront distributions serve HTTPS only, log, and sit behind a web ACL",
    actions=("cloudfront:ListDistributions", "cloudfront:GetDistributionConfig"),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "For each distribution: Viewer protocol policy 'Redirect HTTP to HTTPS' (or HTTPS "
        "only) on every behavior, standard logging to an S3 bucket, and an AWS WAF web ACL "
        "(CloudFront > distribution > General > Edit / Behaviors > Edit)."
    ),
)
def cloudfront(context: ProbeContext) -> ProbeResult:
    """Enabled distributions must refuse plain HTTP, log, and have a web ACL; none at all
    is not applicable (the item says "if applicable")."""
    client = context.client("cloudfront")
    # The listing nests its items (DistributionList.Items), which the paginator's result key
    # does not reach in every botocore version: follow the marker by hand.
    distributions: list[dict] = []
    marker = None
    while True:
        page = client.list_distributions(**({"Marker": marker} if marker else {}))[
            "DistributionList"
        ]
        distributions.extend(page.get("Items", []))
        marker = page.get("NextMarker")
        if not page.get("IsTruncated") or not marker:
            break
    findings = []
    for distribution in distributions:
        if not distribution.get("Enabled"):
            continue
        config = client.get_distribution_config(Id=distribution["Id"])["DistributionConfig"]
        behaviors = [
            config.get("DefaultCacheBehavior", {}),
            *(config.get("CacheBehaviors") or {}).get("Items", []),
        ]
        problems = []
        plain = [b for b in behaviors if b.get("ViewerProtocolPolicy") == "allow-all"]
        if plain:
            problems.append(f"{len(plain)} behavior(s) allow plain HTTP")
        if not (config.get("Logging") or {}).get("Enabled"):
            problems.append("no access logging")
        if not config.get("WebACLId"):
            problems.append("no web ACL")
        findings.append(
            Finding(
                f"{distribution['Id']} ({distribution.get('DomainName', '')})",
                Status.FAIL if problems else Status.PASS,
                "; ".join(problems) or "HTTPS only, logging, web ACL",
            )
        )
    return verdict(
        findings,
        passed="{total} enabled distributions are HTTPS-only, logged and behind a WAF",
        failed="{failed} of {total} enabled distributions miss HTTPS-only, logging or a WAF",
        empty="No enabled CloudFront distribution (not applicable unless static assets are "
        "served directly from S3 or the origin)",
        facts={"distributions": len(distributions)},
    )
