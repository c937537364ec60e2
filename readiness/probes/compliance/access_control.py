"""Compliance / Access Control: access goes through roles, not root keys, old access keys or
policies attached to users; a password policy for the users there are."""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.exceptions import ClientError

from readiness.probes.aws import _code
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

SECTION = "Compliance"


@probe(
    key="compliance.root_keys",
    section=SECTION,
    item="Access Control",
    title="The root user has no access keys",
    actions=("iam:GetAccountSummary",),
    scope=Scope.GLOBAL,
    severity=Severity.CRITICAL,
    remediation=(
        "Sign in as root, open Security credentials and delete every access key; use IAM "
        "roles for automation and keep root for the few tasks that need it."
    ),
)
def root_keys(context: ProbeContext) -> ProbeResult:
    """AccountAccessKeysPresent must be 0."""
    summary = context.client("iam").get_account_summary()["SummaryMap"]
    if summary.get("AccountAccessKeysPresent"):
        return ProbeResult(
            Status.FAIL,
            "The root user has access keys",
            (Finding("root", Status.FAIL, "root access keys present"),),
        )
    return ProbeResult(Status.PASS, "The root user has no access keys")


@probe(
    key="compliance.password_policy",
    section=SECTION,
    item="Access Control",
    title="The account password policy requires long passwords",
    actions=("iam:GetAccountPasswordPolicy",),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "IAM > Account settings > Password policy: minimum length 14 or more, and prefer "
        "federated sign-in (IAM Identity Center) over IAM user passwords; `aws iam "
        "update-account-password-policy --minimum-password-length 14`."
    ),
)
def password_policy(context: ProbeContext) -> ProbeResult:
    """A password policy with MinimumPasswordLength ≥ `password_min_length`."""
    wanted = context.settings.password_min_length
    try:
        policy = context.client("iam").get_account_password_policy()["PasswordPolicy"]
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
        return ProbeResult(
            Status.FAIL,
            f"No password policy: IAM users may set any password (want length ≥ {wanted})",
            facts={"min_length_wanted": wanted},
        )
    length = policy.get("MinimumPasswordLength", 0)
    facts = {"min_length": length, "min_length_wanted": wanted}
    if length < wanted:
        return ProbeResult(
            Status.FAIL,
            f"Passwords may be {length} characters; want at least {wanted}",
            facts=facts,
        )
    return ProbeResult(Status.PASS, f"Passwords need at least {length} characters", facts=facts)


@probe(
    key="compliance.access_key_age",
    section=SECTION,
    item="Access Control",
    title="No active access key is older than the rotation limit",
    actions=("iam:ListUsers", "iam:ListAccessKeys"),
    scope=Scope.GLOBAL,
    severity=Severity.HIGH,
    remediation=(
        "Rotate old keys (create a second key, move the consumer to it, deactivate and then "
        "delete the old one: `aws iam create-access-key`, `update-access-key --status "
        "Inactive`, `delete-access-key`) — better, replace long-lived keys with roles."
    ),
)
def access_key_age(context: ProbeContext) -> ProbeResult:
    """Active keys created more than `access_key_max_age_days` ago fail."""
    limit = context.settings.access_key_max_age_days
    now = datetime.now(UTC)
    iam = context.client("iam")
    users = [user["UserName"] for user in context.paginate("iam", "list_users", "Users")]

    def keys(user: str) -> list[Finding]:
        found = []
        for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            if key.get("Status") != "Active":
                continue
            age = (now - key["CreateDate"]).days
            found.append(
                Finding(
                    f"{user}/{key['AccessKeyId']}",
                    Status.FAIL if age > limit else Status.PASS,
                    f"active, {age} days old" + (f" (limit {limit})" if age > limit else ""),
                )
            )
        return found

    findings = [finding for found in parallel_map(keys, users) for finding in found]
    return verdict(
        findings,
        passed="{total} active access keys, all younger than " + f"{limit} days",
        failed="{failed} of {total} active access keys are older than " + f"{limit} days",
        empty="No active IAM user access keys",
        facts={"users": len(users), "max_age_days": limit},
    )


@probe(
    key="compliance.user_policies",
    section=SECTION,
    item="Access Control",
    title="Permissions come from groups and roles, not policies attached to users",
    actions=("iam:ListUsers", "iam:ListAttachedUserPolicies", "iam:ListUserPolicies"),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Move each user's policies to a group or role for their job and detach them from the "
        "user (`aws iam detach-user-policy`, `delete-user-policy`), so access is granted "
        "and reviewed by role."
    ),
)
def user_policies(context: ProbeContext) -> ProbeResult:
    """Any managed or inline policy attached directly to a user fails."""
    iam = context.client("iam")
    users = [user["UserName"] for user in context.paginate("iam", "list_users", "Users")]

    def judge(user: str) -> Finding:
        attached = [
            p["PolicyName"]
            for p in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]
        ]
        inline = iam.list_user_policies(UserName=user)["PolicyNames"]
        names = attached + [f"{name} (inline)" for name in inline]
        if names:
            return Finding(user, Status.FAIL, "policies on the user: " + ", ".join(names[:10]))
        return Finding(user, Status.PASS, "no policies on the user")

    return verdict(
        parallel_map(judge, users),
        passed="{total} IAM users get their permissions through groups or roles",
        failed="{failed} of {total} IAM users have policies attached directly",
        empty="No IAM users",
    )
