"""Compliance: data kept in approved regions, an audit trail that records everything and
keeps its logs, access that goes through roles, retention that is set, and the AWS-visible
part of privacy (account-wide S3 public access block, Macie)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    action_names,
    bucket_regions,
    parallel_map,
    probe,
    verdict,
)

SECTION = "Compliance"
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}

action_names(
    {
        ("s3", "GetObjectLockConfiguration"): "s3:GetBucketObjectLockConfiguration",
        ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    }
)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# --- Data Residency ----------------------------------------------------------------------


def _scp_denies_other_regions(context: ProbeContext) -> Finding:
    organizations = context.client("organizations")
    try:
        organizations.describe_organization()
        policies = list(
            context.paginate(
                "organizations", "list_policies", "Policies", Filter="SERVICE_CONTROL_POLICY"
            )
        )
        for summary in policies:
            content = organizations.describe_policy(PolicyId=summary["Id"])["Policy"]["Content"]
            document = json.loads(content) if isinstance(content, str) else content
            statements = document.get("Statement", [])
            for statement in statements if isinstance(statements, list) else [statements]:
                if (
                    statement.get("Effect") == "Deny"
                    and "aws:requestedregion" in json.dumps(statement.get("Condition", {})).lower()
                ):
                    return Finding(
                        f"scp:{summary.get('Name', summary['Id'])}",
                        Status.PASS,
                        "a service control policy denies requests to other regions",
                    )
        return Finding(
            "organization",
            Status.WARN,
            f"none of {len(policies)} service control policies denies other regions",
        )
    except ClientError as exc:
        if _code(exc) == "AWSOrganizationsNotInUseException":
            reason = "AWS Organizations is not in use: no SCP can keep data out of other regions"
        elif _code(exc) in DENIED:
            reason = (
                "service control policies are not readable from this account (only the "
                "management account or a delegated administrator can read them)"
            )
        else:
            raise
        return Finding("organization", Status.WARN, reason)


@probe(
    key="compliance.data_residency",
    section=SECTION,
    item="Data Residency",
    title="No data stores outside the approved regions, and an SCP that denies other regions",
    actions=(
        "s3:ListAllMyBuckets",
        "s3:GetBucketLocation",
        "ec2:DescribeRegions",
        "ec2:DescribeInstances",
        "rds:DescribeDBInstances",
        "dynamodb:ListTables",
        "organizations:DescribeOrganization",
        "organizations:ListPolicies",
        "organizations:DescribePolicy",
    ),
    scope=Scope.GLOBAL,
    severity=Severity.HIGH,
    remediation=(
        "Move or delete the resources listed (S3 buckets cannot change region: copy the "
        "objects to a bucket in an approved region, then delete the old one), and attach a "
        "service control policy that denies every action outside the approved regions "
        "(Effect Deny, NotAction on global services, Condition StringNotEquals "
        "aws:RequestedRegion [approved regions]) from the management account."
    ),
)
def data_residency(context: ProbeContext) -> ProbeResult:
    """Fail for any bucket, instance, database or table in a region outside
    `approved_regions` (the deployment's regions unless set); warn without an SCP."""
    approved = set(context.settings.approved_regions)
    if not approved:
        return ProbeResult(Status.NOT_APPLICABLE, "No approved regions configured")
    regions = [
        region["RegionName"]
        for region in context.client("ec2").describe_regions()["Regions"]
        if region["RegionName"] not in approved
    ]

    def instances(region: str) -> list[Finding]:
        return [
            Finding(instance["InstanceId"], Status.FAIL, f"instance in {region}")
            for reservation in context.client("ec2", region).describe_instances(
                Filters=[
                    {"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}
                ]
            )["Reservations"]
            for instance in reservation["Instances"]
        ]

    def databases(region: str) -> list[Finding]:
        return [
            Finding(db["DBInstanceIdentifier"], Status.FAIL, f"database in {region}")
            for db in context.client("rds", region).describe_db_instances()["DBInstances"]
        ]

    def tables(region: str) -> list[Finding]:
        return [
            Finding(f"dynamodb:{table}", Status.FAIL, f"table in {region}")
            for table in context.client("dynamodb", region).list_tables()["TableNames"]
        ]

    def buckets(_: None) -> list[Finding]:
        return [
            Finding(f"s3:{name}", Status.FAIL, f"bucket in {region}, outside the approved regions")
            for name, region in sorted(bucket_regions(context).items())
            if region not in approved
        ]

    # One task per region and store kind, all at once: this probe reads every region and
    # would otherwise be the last one a run waits for.
    tasks = [
        (buckets, None),
        *((check, r) for r in regions for check in (instances, databases, tables)),
    ]
    findings = [
        finding
        for found in parallel_map(lambda task: task[0](task[1]), tasks, workers=16)
        for finding in found
    ]
    scp = _scp_denies_other_regions(context)
    outside = len(findings)
    facts = {"approved_regions": sorted(approved), "regions_checked": len(regions) + 1}
    if outside:
        return ProbeResult(
            Status.FAIL,
            f"{outside} data store(s) outside the approved regions ({', '.join(sorted(approved))})",
            (*findings, scp),
            facts,
        )
    if scp.status != Status.PASS:
        return ProbeResult(
            Status.WARN,
            "All data stores are in approved regions, but nothing prevents new ones elsewhere",
            (scp,),
            facts,
        )
    return ProbeResult(
        Status.PASS,
        "All data stores are in approved regions and an SCP denies the others",
        (scp,),
        facts,
    )


# --- Audit Logging -----------------------------------------------------------------------


@probe(
    key="compliance.config_recorder",
    section=SECTION,
    item="Audit Logging",
    title="AWS Config records all resources and delivers them in this region",
    actions=(
        "config:DescribeConfigurationRecorders",
        "config:DescribeConfigurationRecorderStatus",
        "config:DescribeDeliveryChannels",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Turn on AWS Config for all resource types with a delivery channel to the log bucket: "
        "AWS Config > Settings > Record all resources, or `aws configservice "
        "put-configuration-recorder --recording-group allSupported=true` + "
        "`put-delivery-channel` + `start-configuration-recorder`."
    ),
)
def config_recorder(context: ProbeContext) -> ProbeResult:
    """A recorder recording allSupported, running, with a delivery channel."""
    config = context.client("config")
    recorders = config.describe_configuration_recorders().get("ConfigurationRecorders", [])
    if not recorders:
        return ProbeResult(Status.FAIL, "AWS Config is not recording in this region")
    statuses = {
        status["name"]: status
        for status in config.describe_configuration_recorder_status().get(
            "ConfigurationRecordersStatus", []
        )
    }
    channels = config.describe_delivery_channels().get("DeliveryChannels", [])
    findings = []
    for recorder in recorders:
        group = recorder.get("recordingGroup") or {}
        problems = []
        if not group.get("allSupported"):
            problems.append("records only selected resource types")
        if not statuses.get(recorder["name"], {}).get("recording"):
            problems.append("stopped")
        if not channels:
            problems.append("no delivery channel")
        global_types = "with" if group.get("includeGlobalResourceTypes") else "without"
        findings.append(
            Finding(
                recorder["name"],
                Status.FAIL if problems else Status.PASS,
                "; ".join(problems)
                if problems
                else f"records all resources ({global_types} global types), delivers to "
                f"{channels[0].get('s3BucketName', 'a channel')}",
            )
        )
    return verdict(
        findings,
        passed="AWS Config records every resource type and delivers it",
        failed="AWS Config is incomplete in this region",
        empty="",
        facts={"recorders": len(recorders), "delivery_channels": len(channels)},
    )


def _trail_buckets(context: ProbeContext) -> dict[str, list[str]]:
    buckets: dict[str, list[str]] = {}
    for trail in context.client("cloudtrail").describe_trails(includeShadowTrails=False)[
        "trailList"
    ]:
        if trail.get("S3BucketName"):
            buckets.setdefault(trail["S3BucketName"], []).append(trail["Name"])
    return buckets


def _per_bucket(context: ProbeContext, judge) -> list[Finding]:
    """`judge(bucket) -> Finding` for every trail bucket; a bucket in another account that
    this one may not read is a warning, not an error of the whole probe."""
    findings = []
    for bucket, trails in sorted(_trail_buckets(context).items()):
        try:
            findings.append(judge(bucket))
        except ClientError as exc:
            if _code(exc) not in DENIED:
                raise
            findings.append(
                Finding(
                    bucket,
                    Status.WARN,
                    f"bucket of {', '.join(trails)} is not readable from this account "
                    "(another account's log archive?): check it there",
                )
            )
    return findings


@probe(
    key="compliance.trail_bucket_logging",
    section=SECTION,
    item="Audit Logging",
    title="CloudTrail buckets log who read them (S3 server access logging)",
    actions=("cloudtrail:DescribeTrails", "s3:GetBucketLogging"),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Enable server access logging on each trail bucket to a separate log bucket: S3 > "
        "bucket > Properties > Server access logging, or `aws s3api put-bucket-logging "
        "--bucket TRAIL_BUCKET --bucket-logging-status file://logging.json`."
    ),
)
def trail_bucket_logging(context: ProbeContext) -> ProbeResult:
    """Each trail's bucket has server access logging enabled."""
    s3 = context.client("s3")

    def judge(bucket: str) -> Finding:
        enabled = s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled")
        if enabled:
            return Finding(bucket, Status.PASS, f"access logs to {enabled.get('TargetBucket')}")
        return Finding(bucket, Status.FAIL, "no server access logging")

    return verdict(
        _per_bucket(context, judge),
        passed="{total} trail buckets log their own access",
        failed="{failed} of {total} trail buckets do not log who reads them",
        empty="No CloudTrail trail delivers to S3",
    )


# --- Access Control ----------------------------------------------------------------------


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


# --- Retention Policies ------------------------------------------------------------------


@probe(
    key="compliance.log_retention",
    section=SECTION,
    item="Retention Policies",
    title="Log groups keep logs for a set time at or above the minimum",
    actions=("logs:DescribeLogGroups",),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Set a retention on every log group (CloudWatch > Log groups > Actions > Edit "
        "retention, or `aws logs put-retention-policy --log-group-name NAME "
        "--retention-in-days 365`): unset means logs never expire, which no retention rule "
        "allows."
    ),
)
def log_retention(context: ProbeContext) -> ProbeResult:
    """Retention unset (never expires) or under `log_retention_min_days` fails."""
    minimum = context.settings.log_retention_min_days
    findings = []
    for group in context.paginate("logs", "describe_log_groups", "logGroups"):
        days = group.get("retentionInDays")
        if days is None:
            findings.append(
                Finding(group["logGroupName"], Status.FAIL, "no retention set: never expires")
            )
        elif days < minimum:
            findings.append(
                Finding(
                    group["logGroupName"],
                    Status.FAIL,
                    f"{days} days, under the {minimum}-day minimum",
                )
            )
        else:
            findings.append(Finding(group["logGroupName"], Status.PASS, f"kept {days} days"))
    return verdict(
        findings,
        passed="{total} log groups keep logs for " + f"{minimum} days or more and then expire",
        failed="{failed} of {total} log groups have no retention or a short one",
        empty="No log groups in this region",
        facts={"min_days": minimum},
    )


@probe(
    key="compliance.backup_lifecycle",
    section=SECTION,
    item="Retention Policies",
    title="Backup rules delete recovery points after a set time",
    actions=("backup:ListBackupPlans", "backup:GetBackupPlan"),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Give each backup rule a lifecycle (AWS Backup > Backup plans > rule > Retention "
        "period, i.e. Lifecycle.DeleteAfterDays) matching the retention the regulation asks "
        "for: kept forever is as non-compliant as deleted too early."
    ),
)
def backup_lifecycle(context: ProbeContext) -> ProbeResult:
    """Every rule of every plan has Lifecycle.DeleteAfterDays."""
    backup = context.client("backup")
    findings = []
    for summary in context.paginate("backup", "list_backup_plans", "BackupPlansList"):
        plan = backup.get_backup_plan(BackupPlanId=summary["BackupPlanId"])["BackupPlan"]
        for rule in plan.get("Rules", []):
            days = (rule.get("Lifecycle") or {}).get("DeleteAfterDays")
            findings.append(
                Finding(
                    f"{plan['BackupPlanName']}/{rule['RuleName']}",
                    Status.PASS if days else Status.FAIL,
                    f"recovery points deleted after {days} days"
                    if days
                    else "recovery points are kept forever",
                )
            )
    return verdict(
        findings,
        passed="{total} backup rules expire their recovery points",
        failed="{failed} of {total} backup rules keep recovery points forever",
        empty="No backup plans in this region",
    )


@probe(
    key="compliance.trail_bucket_retention",
    section=SECTION,
    item="Retention Policies",
    title="CloudTrail buckets lock their logs (Object Lock) and expire them (lifecycle)",
    actions=(
        "cloudtrail:DescribeTrails",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetLifecycleConfiguration",
    ),
    scope=Scope.GLOBAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Create the trail bucket with Object Lock (it cannot be turned on later for existing "
        "buckets without AWS Support) in compliance or governance mode with a default "
        "retention, and add a lifecycle rule that transitions and finally expires the logs "
        "at the end of the retention period."
    ),
)
def trail_bucket_retention(context: ProbeContext) -> ProbeResult:
    """Each trail bucket has Object Lock enabled and a lifecycle configuration."""
    s3 = context.client("s3")

    def judge(bucket: str) -> Finding:
        problems = []
        try:
            lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
            if lock.get("ObjectLockEnabled") != "Enabled":
                problems.append("Object Lock off")
        except ClientError as exc:
            if _code(exc) != "ObjectLockConfigurationNotFoundError":
                raise
            problems.append("Object Lock off")
        try:
            if not s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules"):
                problems.append("no lifecycle rule")
        except ClientError as exc:
            if _code(exc) != "NoSuchLifecycleConfiguration":
                raise
            problems.append("no lifecycle rule")
        if problems:
            return Finding(bucket, Status.FAIL, "; ".join(problems))
        return Finding(bucket, Status.PASS, "Object Lock and a lifecycle rule")

    return verdict(
        _per_bucket(context, judge),
        passed="{total} trail buckets lock and expire their logs",
        failed="{failed} of {total} trail buckets can lose logs early or keep them forever",
        empty="No CloudTrail trail delivers to S3",
    )


# --- Privacy -----------------------------------------------------------------------------


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
