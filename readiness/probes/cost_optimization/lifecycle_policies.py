"""Cost Optimization / Lifecycle Policies: S3 buckets transition their data to cheaper
storage classes."""

from __future__ import annotations

from collections.abc import Iterator

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

SECTION = "Cost Optimization"

# S3 lists Intelligent-Tiering configurations under the Get action.
action_names(
    {
        (
            "s3",
            "ListBucketIntelligentTieringConfigurations",
        ): "s3:GetIntelligentTieringConfiguration",
    }
)


# Objects must be 30 days old before they can move to Standard-IA/One Zone-IA (and are billed
# 30 days there anyway): data deleted sooner has no cheaper class to go to.
MIN_TRANSITION_DAYS = 30


def _rule_scope(rule: dict) -> str:
    filters = rule.get("Filter") or {}
    prefix = rule.get("Prefix", filters.get("Prefix", ""))
    if filters.get("And") or filters.get("Tag") or "ObjectSizeGreaterThan" in filters:
        return "filtered objects"
    return f"objects under {prefix}" if prefix else "objects"


def _rule_name(rule: dict) -> str:
    return f"rule {rule['ID']}" if rule.get("ID") else "a rule"


def _judge_rules(rules: list[dict]) -> tuple[Status, str]:
    enabled = [rule for rule in rules if rule.get("Status") == "Enabled"]
    if not enabled:
        return Status.FAIL, f"all {len(rules)} lifecycle rules are disabled"
    moves, short_lived, long_lived, noncurrent = [], [], [], []
    for rule in enabled:
        transitions = [
            *rule.get("Transitions", []),
            *([rule["Transition"]] if "Transition" in rule else []),
        ]
        for transition in transitions:
            when = (
                f"after {transition['Days']} days"
                if "Days" in transition
                else f"from {transition.get('Date')}"
            )
            moves.append(
                f"{_rule_name(rule)} moves {_rule_scope(rule)} to "
                f"{transition.get('StorageClass', '?')} {when}"
            )
        expiry = (rule.get("Expiration") or {}).get("Days")
        if expiry is not None:
            text = f"{_rule_name(rule)} deletes {_rule_scope(rule)} after {expiry} days"
            (short_lived if expiry <= MIN_TRANSITION_DAYS else long_lived).append(text)
        if rule.get("NoncurrentVersionTransitions") or rule.get("NoncurrentVersionExpiration"):
            noncurrent.append(_rule_name(rule))
    if moves:
        return Status.PASS, "; ".join(moves)
    if short_lived:
        return Status.PASS, "; ".join(short_lived) + " (too soon for a cheaper class to pay off)"
    if long_lived:
        return Status.WARN, "; ".join(long_lived) + ", never moving them to a cheaper class"
    if noncurrent:
        return (
            Status.WARN,
            f"only noncurrent versions are moved or deleted ({', '.join(noncurrent)}); current "
            "objects stay in their storage class",
        )
    return (
        Status.FAIL,
        "enabled rules only clean up incomplete uploads or delete markers; no transition",
    )


def _tiering_configurations(s3, bucket: str) -> Iterator[dict]:
    token = None
    while True:
        page = s3.list_bucket_intelligent_tiering_configurations(
            Bucket=bucket, **({"ContinuationToken": token} if token else {})
        )
        yield from page.get("IntelligentTieringConfigurationList", [])
        token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        if not token:
            return


@probe(
    key="cost.s3_lifecycle",
    section=SECTION,
    item="Lifecycle Policies",
    title=(
        "Every S3 bucket has an enabled lifecycle rule moving objects to a cheaper storage "
        "class (or an S3 Intelligent-Tiering archive configuration)"
    ),
    actions=(
        "s3:ListAllMyBuckets",
        "s3:GetBucketLocation",
        "s3:GetLifecycleConfiguration",
        "s3:GetIntelligentTieringConfiguration",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Add a lifecycle rule with transitions (console: S3 > bucket > Management > Create "
        "lifecycle rule > Transition current versions, e.g. STANDARD_IA after 30 days and "
        "GLACIER_IR or GLACIER after 90; also transition or expire noncurrent versions), or "
        "`aws s3api put-bucket-lifecycle-configuration --bucket <name> --lifecycle-configuration "
        "file://lifecycle.json`; for unpredictable access, transition to INTELLIGENT_TIERING "
        "at day 0. Data that is only kept a few days needs an expiration rule instead."
    ),
)
def s3_lifecycle(context: ProbeContext) -> ProbeResult:
    names = sorted(
        name
        for name, region in bucket_regions(context, only_region=context.region).items()
        if region == context.region  # emulators may ignore the server-side filter
    )
    if not names:
        return verdict([], passed="", failed="", empty=f"No S3 buckets in {context.region}")
    s3 = context.client("s3")

    def judge(name: str) -> Finding:
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=name).get("Rules", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        if rules:
            status, reason = _judge_rules(rules)
        else:
            status, reason = Status.FAIL, "no lifecycle configuration: objects never move"
        if status != Status.PASS:
            # Objects uploaded straight into INTELLIGENT_TIERING need no transition rule;
            # an archive configuration shows the bucket is meant to be used that way.
            tiering = [
                c.get("Id", "?")
                for c in _tiering_configurations(s3, name)
                if c.get("Status") == "Enabled"
            ]
            if tiering:
                status = Status.PASS
                reason = (
                    f"S3 Intelligent-Tiering archive configuration {', '.join(tiering)}; "
                    f"lifecycle: {reason}"
                )
        return Finding(name, status, reason)

    findings = parallel_map(judge, names)
    return verdict(
        findings,
        passed="All {total} S3 buckets move or expire their objects by lifecycle rules",
        failed="{failed} of {total} S3 buckets have no enabled lifecycle transition",
        warned="{warned} of {total} S3 buckets keep current objects in their storage class "
        "indefinitely",
        empty="",
        facts={
            "buckets": len(findings),
            "with_transitions": sum(f.status == Status.PASS for f in findings),
            "min_transition_days": MIN_TRANSITION_DAYS,
        },
    )
