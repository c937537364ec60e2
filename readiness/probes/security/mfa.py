"""Security / MFA: enabled for privileged accounts."""

from botocore.exceptions import ClientError

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


@probe(
    key="iam.mfa",
    section=SECTION,
    item="MFA",
    title="Root account and every console user have MFA",
    actions=(
        "iam:GetAccountSummary",
        "iam:ListUsers",
        "iam:GetLoginProfile",
        "iam:ListMFADevices",
        "sts:GetCallerIdentity",
    ),
    scope=Scope.GLOBAL,
    severity=Severity.CRITICAL,
    remediation=(
        "Enable MFA on the root user (a hardware key or virtual MFA device) and on every IAM "
        "user that can sign in to the console; better, move people to IAM Identity Center "
        "with MFA enforced and remove console passwords from IAM users."
    ),
)
def mfa(context: ProbeContext) -> ProbeResult:
    iam = context.client("iam")
    summary = iam.get_account_summary()["SummaryMap"]
    findings = [
        Finding(
            f"arn:aws:iam::{context.account_id()}:root",
            Status.PASS if summary.get("AccountMFAEnabled") == 1 else Status.FAIL,
            "root account MFA enabled"
            if summary.get("AccountMFAEnabled") == 1
            else "root account has no MFA device",
        )
    ]
    console_users = 0
    for user in context.paginate("iam", "list_users", "Users"):
        try:
            iam.get_login_profile(UserName=user["UserName"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchEntity":
                continue  # no console password: MFA at sign-in does not apply
            raise
        console_users += 1
        devices = list(
            context.paginate("iam", "list_mfa_devices", "MFADevices", UserName=user["UserName"])
        )
        findings.append(
            Finding(
                user["Arn"],
                Status.PASS if devices else Status.FAIL,
                f"console user with {len(devices)} MFA device(s)"
                if devices
                else "console password but no MFA device",
            )
        )
    return verdict(
        findings,
        passed="Root and all {total_minus_root} console users have MFA".replace(
            "{total_minus_root}", str(console_users)
        ),
        failed="{failed} of {total} privileged identities (root + console users) lack MFA",
        empty="",
        facts={"console_users": console_users},
    )
