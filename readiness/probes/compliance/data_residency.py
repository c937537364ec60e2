"""Compliance / Data Residency: data stored in approved regions only."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from readiness.probes.aws import DENIED, _code
from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    bucket_regions,
    parallel_map,
    probe,
)

SECTION = "Compliance"


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

    # Each region's clients serve one call per run (three per region and account, some 110 in
    # all): built for it and dropped, not kept among the clients the run's probes share.
    def instances(region: str) -> list[Finding]:
        return [
            Finding(instance["InstanceId"], Status.FAIL, f"instance in {region}")
            for reservation in context.client("ec2", region, keep=False).describe_instances(
                Filters=[
                    {"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}
                ]
            )["Reservations"]
            for instance in reservation["Instances"]
        ]

    def databases(region: str) -> list[Finding]:
        return [
            Finding(db["DBInstanceIdentifier"], Status.FAIL, f"database in {region}")
            for db in context.client("rds", region, keep=False).describe_db_instances()[
                "DBInstances"
            ]
        ]

    def tables(region: str) -> list[Finding]:
        return [
            Finding(f"dynamodb:{table}", Status.FAIL, f"table in {region}")
            for table in context.client("dynamodb", region, keep=False).list_tables()["TableNames"]
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
