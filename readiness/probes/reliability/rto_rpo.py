"""Reliability / RTO/RPO: recovery objectives defined (AWS Resilience Hub) and met."""

from collections.abc import Callable, Iterator

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

SECTION = "Reliability"

RESILIENCY_TIERS = ("AZ", "Hardware", "Software", "Region")


def _pages(call: Callable[..., dict], key: str, **params) -> Iterator[dict]:
    """Every element of `key` for an operation without a botocore paginator (nextToken)."""
    while True:
        page = call(**params)
        yield from page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return
        params["nextToken"] = token


def duration(seconds: int) -> str:
    """3600 -> "1h", 5400 -> "1h30m", 90 -> "1m30s": readable RTO/RPO values."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
    return text or "0s"


@probe(
    key="resilience.rto_rpo",
    section=SECTION,
    item="RTO/RPO",
    title=(
        "Resilience Hub has resiliency policies within the RTO/RPO targets and every "
        "application has a policy"
    ),
    actions=(
        "resiliencehub:ListResiliencyPolicies",
        "resiliencehub:ListApps",
        "resiliencehub:DescribeApp",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Define RTO and RPO per disruption type in an AWS Resilience Hub resiliency policy "
        "(`aws resiliencehub create-resiliency-policy`, tiers AZ, Hardware, Software, Region) "
        "no looser than the agreed targets, add each application to Resilience Hub and assign "
        "it that policy (`aws resiliencehub update-app --policy-arn`), then run an assessment."
    ),
)
def rto_rpo(context: ProbeContext) -> ProbeResult:
    hub = context.client("resiliencehub")
    rto_target = context.settings.rto_target_seconds
    rpo_target = context.settings.rpo_target_seconds
    findings = []
    policies = list(_pages(hub.list_resiliency_policies, "resiliencyPolicies"))
    for policy in policies:
        tiers = policy.get("policy", {})
        too_loose, defined = [], []
        for tier in RESILIENCY_TIERS:
            if tier not in tiers:
                continue
            rto, rpo = tiers[tier].get("rtoInSecs", 0), tiers[tier].get("rpoInSecs", 0)
            defined.append(f"{tier} RTO {duration(rto)}/RPO {duration(rpo)}")
            if rto > rto_target:
                too_loose.append(f"{tier} RTO {duration(rto)} > {duration(rto_target)}")
            if rpo > rpo_target:
                too_loose.append(f"{tier} RPO {duration(rpo)} > {duration(rpo_target)}")
        if not defined:
            too_loose.append("defines no RTO/RPO for any disruption type")
        findings.append(
            Finding(
                policy["policyArn"],
                Status.FAIL if too_loose else Status.PASS,
                f"policy {policy.get('policyName')}: "
                + ("; ".join(too_loose) if too_loose else ", ".join(defined)),
            )
        )
    names = {policy["policyArn"]: policy.get("policyName") for policy in policies}
    apps = list(_pages(hub.list_apps, "appSummaries"))
    for summary in apps:
        # ListApps summaries carry no policy ARN; only DescribeApp has it.
        policy_arn = hub.describe_app(appArn=summary["appArn"])["app"].get("policyArn")
        findings.append(
            Finding(
                summary["appArn"],
                Status.PASS if policy_arn else Status.FAIL,
                f"app {summary.get('name')}: policy {names.get(policy_arn, policy_arn)}"
                if policy_arn
                else f"app {summary.get('name')}: no resiliency policy assigned",
            )
        )
    facts = {
        "resiliency_policies": len(policies),
        "apps": len(apps),
        "rto_target_seconds": rto_target,
        "rpo_target_seconds": rpo_target,
    }
    if not findings:
        return ProbeResult(
            Status.FAIL,
            f"No RTO/RPO defined in Resilience Hub in {context.region}: no resiliency policies "
            "and no applications",
            facts=facts,
        )
    return verdict(
        findings,
        passed=(
            f"{len(policies)} resiliency policies within RTO {duration(rto_target)}/RPO "
            f"{duration(rpo_target)}; all {len(apps)} apps have a policy"
        ),
        failed=(
            "{failed} of {total} Resilience Hub policies or apps fail: RTO/RPO looser than "
            "the targets, or no policy assigned"
        ),
        empty="",
        facts=facts,
    )
