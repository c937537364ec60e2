"""Security / CloudTrail: one trail logging every region's management events,
tamper-evident and encrypted, into a bucket that cannot be made public."""

from __future__ import annotations

from botocore.exceptions import ClientError

from readiness.probes.base import Finding, ProbeContext, ProbeResult, Scope, Severity, Status, probe

SECTION = "Security"
CONDITIONS = (
    "logging",
    "multi-region",
    "log file validation",
    "KMS encryption",
    "management events",
    "bucket blocks public access",
)
# Security Hub judges every trail on these (CloudTrail.4, CloudTrail.2): an extra trail
# without them is a trail whose logs can be altered unnoticed or read without the key.
EVERY_TRAIL = ("log file validation", "KMS encryption")
_PUBLIC_ACCESS_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


def _logs_management_events(trail: dict, cloudtrail) -> bool:
    # Read even when HasCustomEventSelectors is false: moto always reports false.
    selectors = cloudtrail.get_event_selectors(TrailName=trail["TrailARN"])
    basic = selectors.get("EventSelectors") or []
    advanced = selectors.get("AdvancedEventSelectors") or []
    if not basic and not advanced:
        # AWS answers with the default selector (all management events) for a trail never
        # given selectors; moto answers with empty lists.
        return not trail.get("HasCustomEventSelectors")
    if any(selector.get("IncludeManagementEvents") for selector in basic):
        return True
    for selector in advanced:
        for field in selector.get("FieldSelectors", []):
            if field.get("Field") == "eventCategory" and "Management" in field.get("Equals", []):
                return True
    return False


def _bucket_blocks_public_access(s3, bucket: str) -> bool:
    try:
        configuration = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration":
            return False
        raise
    return all(configuration.get(flag) for flag in _PUBLIC_ACCESS_FLAGS)


@probe(
    key="cloudtrail.trail",
    section=SECTION,
    item="CloudTrail",
    title="A logging multi-region trail with validation, KMS, management events and a "
    "private bucket",
    actions=(
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetEventSelectors",
        "s3:GetBucketPublicAccessBlock",
    ),
    scope=Scope.GLOBAL,
    severity=Severity.CRITICAL,
    remediation=(
        "Create (or fix) one trail with: `aws cloudtrail create-trail --is-multi-region-trail "
        "--enable-log-file-validation --kms-key-id <key ARN> --s3-bucket-name <bucket>` then "
        "`aws cloudtrail start-logging`; keep the default event selector (management events, "
        "read and write) or add IncludeManagementEvents=true; block all public access on the "
        "log bucket (`aws s3api put-public-access-block` with the four settings true). The "
        "KMS key policy must let cloudtrail.amazonaws.com encrypt. In an organization, an "
        "organization trail from the management account covers every account."
    ),
)
def trail(context: ProbeContext) -> ProbeResult:
    # includeShadowTrails lists multi-region trails homed elsewhere too; a single-region trail
    # of another region cannot satisfy "multi-region" anyway.
    trails = context.client("cloudtrail").describe_trails(includeShadowTrails=True)["trailList"]
    if not trails:
        return ProbeResult(
            Status.FAIL,
            "No CloudTrail trail: the checklist requires one logging every region",
            facts={"trails": 0, "conditions": list(CONDITIONS)},
        )
    bucket_ok: dict[str, bool] = {}
    judged: list[tuple[dict, list[str]]] = []
    for candidate in trails:
        # Status and selectors of a trail are read from its home region.
        home = candidate.get("HomeRegion") or context.api_region
        cloudtrail = context.client("cloudtrail", home)
        arn = candidate["TrailARN"]
        met = {
            "logging": bool(cloudtrail.get_trail_status(Name=arn).get("IsLogging")),
            "multi-region": bool(candidate.get("IsMultiRegionTrail")),
            "log file validation": bool(candidate.get("LogFileValidationEnabled")),
            "KMS encryption": bool(candidate.get("KmsKeyId")),
            "management events": _logs_management_events(candidate, cloudtrail),
        }
        bucket = candidate.get("S3BucketName")
        if bucket and bucket not in bucket_ok:
            bucket_ok[bucket] = _bucket_blocks_public_access(context.client("s3", home), bucket)
        met["bucket blocks public access"] = bool(bucket) and bucket_ok[bucket]
        judged.append((candidate, [c for c in CONDITIONS if not met[c]]))

    judged.sort(key=lambda pair: len(pair[1]))
    best, best_missing = judged[0]
    compliant = not best_missing
    findings = []
    weak_extras = []
    for candidate, missing in judged:
        if not missing:
            status, reason = Status.PASS, "meets all conditions: " + ", ".join(CONDITIONS)
        else:
            weak = [condition for condition in missing if condition in EVERY_TRAIL]
            # Once one trail meets everything, the others are extra trails: one logging a
            # single region is no gap, but every trail must be tamper-evident and encrypted.
            status = Status.WARN if compliant and not weak else Status.FAIL
            reason = "missing: " + ", ".join(missing)
            if compliant and weak:
                weak_extras.append(candidate["Name"])
                reason += " (required of every trail: Security Hub CloudTrail.2, CloudTrail.4)"
        findings.append(Finding(candidate["TrailARN"], status, reason))
    if compliant and weak_extras:
        status = Status.FAIL
        summary = (
            f"Trail {best['Name']} meets all {len(CONDITIONS)} conditions, but "
            + ", ".join(weak_extras)
            + " lack log file validation or KMS encryption, which every trail needs"
        )
    elif compliant:
        status = Status.PASS
        summary = f"Trail {best['Name']} meets all {len(CONDITIONS)} conditions"
    else:
        status = Status.FAIL
        summary = (
            f"No trail meets all conditions; the closest, {best['Name']}, is missing: "
            + ", ".join(best_missing)
        )
    return ProbeResult(
        status,
        summary,
        tuple(findings),
        facts={
            "trails": len(trails),
            "best_trail": best["TrailARN"],
            "conditions": list(CONDITIONS),
        },
    )
