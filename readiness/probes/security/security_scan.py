"""Security / Security Scan, the AWS-visible part: ECR container images are scanned for
vulnerabilities on push (or continuously) and Amazon Inspector covers ECR."""

from __future__ import annotations

import re

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

SECTION = "Security"
ITEM = "Security Scan"
SCANNING_FREQUENCIES = {"SCAN_ON_PUSH", "CONTINUOUS_SCAN"}


def _filter_matches(pattern: str, repository: str) -> bool:
    # ECR repository filters are WILDCARD filters: only "*" is special.
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, repository) is not None


def _registry_rule(configuration: dict, repository: str) -> str | None:
    """The scan frequency a registry-level rule gives this repository, if any."""
    for rule in configuration.get("rules") or []:
        if rule.get("scanFrequency") not in SCANNING_FREQUENCIES:
            continue
        for repo_filter in rule.get("repositoryFilters") or []:
            if _filter_matches(repo_filter.get("filter", ""), repository):
                return rule["scanFrequency"]
    return None


@probe(
    key="ecr.image_scanning",
    section=SECTION,
    item=ITEM,
    title="Every ECR repository scans images on push or continuously",
    actions=("ecr:DescribeRepositories", "ecr:GetRegistryScanningConfiguration"),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Turn on enhanced scanning for the registry with a rule matching every repository "
        "(ECR console > Private registry > Scanning > Enhanced scanning, filter `*`, "
        "continuous scanning; `aws ecr put-registry-scanning-configuration --scan-type "
        'ENHANCED --rules \'[{"scanFrequency":"CONTINUOUS_SCAN","repositoryFilters":'
        '[{"filter":"*","filterType":"WILDCARD"}]}]\'`), or at least basic scan on '
        "push (ScanOnPush / imageScanningConfiguration.scanOnPush=true)."
    ),
)
def image_scanning(context: ProbeContext) -> ProbeResult:
    repositories = list(context.paginate("ecr", "describe_repositories", "repositories"))
    if not repositories:
        return verdict([], passed="", failed="", empty="No ECR repositories in this region")
    configuration = context.client("ecr").get_registry_scanning_configuration()[
        "scanningConfiguration"
    ]
    scan_type = configuration.get("scanType", "BASIC")
    findings = []
    for repository in repositories:
        name = repository["repositoryName"]
        frequency = _registry_rule(configuration, name)
        on_push = (repository.get("imageScanningConfiguration") or {}).get("scanOnPush")
        if frequency:
            status, reason = (
                Status.PASS,
                f"{scan_type.lower()} scanning, {frequency} (registry rule)",
            )
        elif on_push and scan_type != "ENHANCED":
            status, reason = Status.PASS, "basic scan on push"
        elif scan_type == "ENHANCED":
            # With enhanced scanning only the registry rules count: the repository's own
            # scanOnPush flag is ignored.
            status, reason = Status.FAIL, "enhanced scanning, but no registry rule matches"
        else:
            status, reason = Status.FAIL, "no scan on push and no registry scanning rule"
        findings.append(Finding(repository["repositoryArn"], status, reason))
    return verdict(
        findings,
        passed="All {total} ECR repositories scan images on push or continuously",
        failed="{failed} of {total} ECR repositories do not scan images automatically",
        empty="",
        facts={"repositories": len(findings), "registry_scan_type": scan_type},
    )


@probe(
    key="ecr.inspector",
    section=SECTION,
    item=ITEM,
    title="Amazon Inspector scans ECR images in this account and region",
    actions=(
        "ecr:DescribeRepositories",
        "inspector2:BatchGetAccountStatus",
        "sts:GetCallerIdentity",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Activate Amazon Inspector for ECR in this region (Inspector console > Account "
        "management > Activate > Amazon ECR container scanning; `aws inspector2 enable "
        "--resource-types ECR`); in an organization, enable it from the delegated "
        "administrator for all member accounts."
    ),
)
def inspector(context: ProbeContext) -> ProbeResult:
    repositories = context.client("ecr").describe_repositories(maxResults=1)["repositories"]
    if not repositories:
        return verdict([], passed="", failed="", empty="No ECR repositories in this region")
    account = context.account_id()
    response = context.client("inspector2").batch_get_account_status(accountIds=[account])
    failed = [a for a in response.get("failedAccounts", []) if a.get("accountId") == account]
    if failed:
        code = failed[0].get("errorCode", "unknown")
        return ProbeResult(
            Status.ERROR,
            f"Inspector could not report this account's status: {code}",
            facts={"error_code": code},
        )
    states = [a for a in response.get("accounts", []) if a.get("accountId") == account]
    # An account that never activated Inspector may be absent from the answer.
    ecr_status = (
        states[0].get("resourceState", {}).get("ecr", {}).get("status", "DISABLED")
        if states
        else "DISABLED"
    )
    status = Status.PASS if ecr_status == "ENABLED" else Status.FAIL
    finding = Finding(account, status, f"account {account}: Inspector ECR scanning {ecr_status}")
    return ProbeResult(
        status,
        f"Amazon Inspector ECR scanning is {ecr_status} in {context.api_region}",
        (finding,),
        facts={"inspector_ecr_status": ecr_status},
    )
