"""Compliance / Privacy: the AWS-visible part of PII handling (the account-wide S3 public
access block, Macie)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from readiness.probes.aws import DENIED, _code
from readiness.probes.base import (
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    action_names,
    probe,
)

SECTION = "Compliance"

action_names(
    {
        ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    }
)


def _strip_account_host(request, **kwargs) -> None:
    # S3 Control puts the account id in the host name; an emulator on 127.0.0.1 has no such
    # host, so the prefix goes for endpoints that are not AWS's own.
    request.url = re.sub(r"^(https?://)\d{12}\.", r"\1", request.url)


def _s3control(context: ProbeContext):
    client = context.client("s3control")
    endpoint = urlsplit(client.meta.endpoint_url or "").hostname or ""
    if not endpoint.endswith(("amazonaws.com", "amazonaws.com.cn")) and not getattr(
        client, "_readiness_host_hook", False
    ):
        client.meta.events.register("before-send.s3-control", _strip_account_host)
        client._readiness_host_hook = True
    return client


@probe(
    key="compliance.s3_account_public_access",
    section=SECTION,
    item="Privacy",
    title="S3 Block Public Access is on for the whole account",
    actions=("s3:GetAccountPublicAccessBlock", "sts:GetCallerIdentity"),
    scope=Scope.GLOBAL,
    severity=Severity.HIGH,
    remediation=(
        "S3 > Block Public Access settings for this account > Edit: turn on all four "
        "settings, or `aws s3control put-public-access-block --account-id ACCOUNT "
        "--public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,"
        "BlockPublicPolicy=true,RestrictPublicBuckets=true`."
    ),
)
def s3_account_public_access(context: ProbeContext) -> ProbeResult:
    """All four account-level settings on; none configured fails."""
    account = context.account_id()
    try:
        block = _s3control(context).get_public_access_block(AccountId=account)[
            "PublicAccessBlockConfiguration"
        ]
    except ClientError as exc:
        if _code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        return ProbeResult(
            Status.FAIL,
            "No account-wide S3 public access block: each bucket decides on its own",
        )
    off = [name for name in _BLOCK_SETTINGS if not block.get(name)]
    if off:
        return ProbeResult(
            Status.FAIL,
            f"Account-wide S3 public access block is partial: {', '.join(off)} off",
            facts={name: bool(block.get(name)) for name in _BLOCK_SETTINGS},
        )
    return ProbeResult(Status.PASS, "S3 Block Public Access is on for the whole account")


_BLOCK_SETTINGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


@probe(
    key="compliance.macie",
    section=SECTION,
    item="Privacy",
    title="Amazon Macie looks for personal data in S3 in this region",
    actions=("macie2:GetMacieSession",),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Enable Macie in each region that stores data (Amazon Macie > Get started > Enable, "
        "or `aws macie2 enable-macie`) and schedule sensitive-data discovery on the buckets "
        "holding customer data. Documenting how PII is handled stays a person's part."
    ),
)
def macie(context: ProbeContext) -> ProbeResult:
    """Macie's session is ENABLED; PAUSED or not enabled fails."""
    try:
        session = context.client("macie2").get_macie_session()
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if _code(exc) in DENIED and "not enabled" in message.lower():
            return ProbeResult(Status.FAIL, "Macie is not enabled in this region")
        raise
    status = session.get("status", "")
    if status != "ENABLED":
        return ProbeResult(Status.FAIL, f"Macie is {status.lower() or 'not enabled'}")
    return ProbeResult(Status.PASS, "Macie is enabled", facts={"status": status})
