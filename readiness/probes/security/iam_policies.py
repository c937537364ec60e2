"""Security / IAM Policies: roles and policies follow least privilege."""

import json
from collections.abc import Iterator
from urllib.parse import unquote

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

SERVICE_LINKED_PATH = "/aws-service-role/"


def _document(raw) -> dict:
    # boto3 decodes IAM policy documents into dicts; other clients hand back URL-encoded JSON.
    if isinstance(raw, dict):
        return raw
    return json.loads(unquote(raw))


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def policy_breadth(document: dict) -> tuple[Status, str]:
    """FAIL for Allow of * on *, or any Allow with NotAction; WARN for service:* on *."""
    worst, reason = Status.PASS, ""
    for statement in _as_list(document.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            return Status.FAIL, "allows NotAction (everything except a list)"
        actions = [str(a) for a in _as_list(statement.get("Action"))]
        resources = [str(r) for r in _as_list(statement.get("Resource"))]
        if "*" not in resources:
            continue
        if "*" in actions:
            return Status.FAIL, 'allows "*" actions on "*" resources'
        broad = sorted(a for a in actions if a.endswith(":*"))
        if broad and worst == Status.PASS:
            worst, reason = Status.WARN, f'allows {", ".join(broad)} on "*"'
    return worst, reason


def _principals(context: ProbeContext) -> Iterator[tuple[str, str, list, list]]:
    """(kind, arn, attached policy ARNs, inline documents) for every user, group and role."""
    for detail in context.paginate(
        "iam", "get_account_authorization_details", "UserDetailList", Filter=["User"]
    ):
        yield (
            "user",
            detail["Arn"],
            [p["PolicyArn"] for p in detail.get("AttachedManagedPolicies", [])],
            [(p["PolicyName"], p["PolicyDocument"]) for p in detail.get("UserPolicyList", [])],
        )
    for detail in context.paginate(
        "iam", "get_account_authorization_details", "GroupDetailList", Filter=["Group"]
    ):
        yield (
            "group",
            detail["Arn"],
            [p["PolicyArn"] for p in detail.get("AttachedManagedPolicies", [])],
            [(p["PolicyName"], p["PolicyDocument"]) for p in detail.get("GroupPolicyList", [])],
        )
    for detail in context.paginate(
        "iam", "get_account_authorization_details", "RoleDetailList", Filter=["Role"]
    ):
        if detail.get("Path", "").startswith(SERVICE_LINKED_PATH):
            continue
        yield (
            "role",
            detail["Arn"],
            [p["PolicyArn"] for p in detail.get("AttachedManagedPolicies", [])],
            [(p["PolicyName"], p["PolicyDocument"]) for p in detail.get("RolePolicyList", [])],
        )


@probe(
    key="iam.least_privilege",
    section=SECTION,
    item="IAM Policies",
    title="No user, group or role allows * on * or NotAction",
    actions=(
        "iam:GetAccountAuthorizationDetails",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
    ),
    scope=Scope.GLOBAL,
    severity=Severity.CRITICAL,
    remediation=(
        'Replace administrator-style policies (Action "*" on Resource "*", or Allow with '
        "NotAction) with policies naming the actions and resources each principal needs; use "
        "IAM Access Analyzer's policy generation from CloudTrail activity. Service-wide "
        "wildcards such as s3:* on * should be narrowed too."
    ),
)
def least_privilege(context: ProbeContext) -> ProbeResult:
    iam = context.client("iam")
    breadth_of_policy: dict[str, tuple[Status, str]] = {}

    def managed_breadth(arn: str) -> tuple[Status, str]:
        if arn not in breadth_of_policy:
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=arn, VersionId=version)
            breadth_of_policy[arn] = policy_breadth(
                _document(document["PolicyVersion"]["Document"])
            )
        return breadth_of_policy[arn]

    findings = []
    principals = 0
    for kind, arn, attached, inline in _principals(context):
        principals += 1
        reasons: list[tuple[Status, str]] = []
        for policy_arn in attached:
            status, why = managed_breadth(policy_arn)
            if status != Status.PASS:
                reasons.append((status, f"attached policy {policy_arn.split('/')[-1]} {why}"))
        for name, document in inline:
            status, why = policy_breadth(_document(document))
            if status != Status.PASS:
                reasons.append((status, f"inline policy {name} {why}"))
        if reasons:
            worst = Status.FAIL if any(s == Status.FAIL for s, _ in reasons) else Status.WARN
            findings.append(Finding(arn, worst, "; ".join(why for _, why in reasons)))
        else:
            findings.append(Finding(arn, Status.PASS, f"{kind}: no wildcard-admin policy"))
    return verdict(
        findings,
        passed="{total} principals checked; none allows * on * or NotAction",
        failed="{failed} of {total} principals allow * on * or NotAction",
        warned="{warned} of {total} principals allow a whole service (service:*) on *",
        empty="No IAM users, groups or roles besides service-linked roles",
        facts={"principals": principals, "policies_read": len(breadth_of_policy)},
    )
