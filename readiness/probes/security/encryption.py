"""Security / Encryption: data encrypted at rest (EBS, RDS, S3, DynamoDB, KMS rotation) and
in transit (load balancer listeners, S3 SecureTransport policies, CloudFront, ACM certificate
expiry)."""

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    bucket_regions,
    probe,
    verdict,
)

SECTION = "Security"
ITEM = "Encryption"

KMS_ALGORITHMS = {"aws:kms", "aws:kms:dsse"}
# Policies allowing only TLS 1.2 and 1.3, recognised by name without a DescribeSSLPolicies call:
# ELBSecurityPolicy-TLS13-1-2-*, -TLS13-1-3-*, -TLS-1-2-*, -FS-1-2-* (FIPS/PQ/Res/Ext variants).
STRONG_SSL_POLICY = re.compile(r"^ELBSecurityPolicy-(?:TLS13-|TLS-|FS-)1-[23]-")
MODERN_TLS = {"TLSv1.2", "TLSv1.3"}
# Listener protocols whose payload the load balancer does not terminate; TLS can't be seen there.
PASSTHROUGH_PROTOCOLS = {"TCP", "UDP", "TCP_UDP", "QUIC", "TCP_QUIC"}
# Statuses of DynamoDB SSE in which the table is (or is becoming) encrypted with KMS.
DYNAMODB_KMS_USABLE = {"ENABLED", "ENABLING", "UPDATING"}


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _partition(context: ProbeContext) -> str:
    return context.session.get_partition_for_region(context.api_region) or "aws"


def _regional_buckets(context: ProbeContext) -> Iterator[str]:
    """Names of the buckets located in the probe's region."""
    for name, region in bucket_regions(context, only_region=context.region).items():
        if region == context.region:
            yield name


# --- at rest -------------------------------------------------------------------------------


@probe(
    key="encryption.ebs",
    section=SECTION,
    item=ITEM,
    title="EBS encryption by default is on and every EBS volume is encrypted",
    actions=("ec2:GetEbsEncryptionByDefault", "ec2:DescribeVolumes"),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Turn on EC2 > Settings > EBS encryption > 'Always encrypt new EBS volumes' in each "
        "region (CLI: aws ec2 enable-ebs-encryption-by-default; Terraform: "
        "aws_ebs_encryption_by_default). Existing unencrypted volumes cannot be encrypted in "
        "place: snapshot them, copy the snapshot with --encrypted --kms-key-id, create a volume "
        "from the copy and swap it in."
    ),
)
def ebs(context: ProbeContext) -> ProbeResult:
    enabled = context.client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"]
    findings = [
        Finding(
            f"{context.region} (EBS encryption by default)",
            Status.PASS if enabled else Status.FAIL,
            "new volumes are encrypted by default"
            if enabled
            else "EBS encryption by default is off: new volumes may be created unencrypted",
        )
    ]
    volumes = 0
    for volume in context.paginate("ec2", "describe_volumes", "Volumes"):
        volumes += 1
        encrypted = bool(volume.get("Encrypted"))
        findings.append(
            Finding(
                volume["VolumeId"],
                Status.PASS if encrypted else Status.FAIL,
                f"encrypted with {volume.get('KmsKeyId', 'the default EBS key')}"
                if encrypted
                else f"unencrypted volume ({volume.get('State', 'unknown state')})",
            )
        )
    unencrypted = sum(f.status == Status.FAIL for f in findings[1:])
    problems = [] if enabled else ["EBS encryption by default is off"]
    if unencrypted:
        problems.append(f"{unencrypted} of {volumes} volumes are unencrypted")
    return verdict(
        findings,
        passed=f"Encryption by default is on and all {volumes} volumes are encrypted",
        failed="; ".join(problems),
        empty="",
        facts={"encryption_by_default": bool(enabled), "volumes": volumes},
    )


@probe(
    key="encryption.rds",
    section=SECTION,
    item=ITEM,
    title="Every RDS DB instance and DB cluster has encrypted storage",
    actions=("rds:DescribeDBInstances", "rds:DescribeDBClusters"),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Create databases with storage encryption (console 'Enable encryption'; CLI "
        "--storage-encrypted --kms-key-id; CloudFormation/Terraform StorageEncrypted / "
        "storage_encrypted = true). An existing unencrypted database cannot be encrypted in "
        "place: take a snapshot, copy it with a KMS key, restore from the encrypted copy and "
        "switch the application over."
    ),
)
def rds(context: ProbeContext) -> ProbeResult:
    findings = []
    for cluster in context.paginate("rds", "describe_db_clusters", "DBClusters"):
        encrypted = bool(cluster.get("StorageEncrypted"))
        findings.append(
            Finding(
                cluster["DBClusterArn"],
                Status.PASS if encrypted else Status.FAIL,
                f"{cluster.get('Engine', 'cluster')} storage encrypted"
                if encrypted
                else f"{cluster.get('Engine', 'cluster')} cluster storage is not encrypted",
            )
        )
    members = 0
    for instance in context.paginate("rds", "describe_db_instances", "DBInstances"):
        if instance.get("DBClusterIdentifier"):
            members += 1  # its storage is the cluster's, judged above
            continue
        encrypted = bool(instance.get("StorageEncrypted"))
        findings.append(
            Finding(
                instance["DBInstanceArn"],
                Status.PASS if encrypted else Status.FAIL,
                f"{instance.get('Engine', 'instance')} storage encrypted"
                if encrypted
                else f"{instance.get('Engine', 'instance')} instance storage is not encrypted",
            )
        )
    return verdict(
        findings,
        passed="All {total} DB clusters and standalone DB instances have encrypted storage",
        failed="{failed} of {total} DB clusters or instances have unencrypted storage",
        empty="No RDS DB instances or DB clusters in this region",
        facts={"cluster_member_instances": members},
    )


@probe(
    key="encryption.s3_at_rest",
    section=SECTION,
    item=ITEM,
    title="Every S3 bucket in the region encrypts by default with KMS (SSE-KMS or DSSE-KMS)",
    actions=("s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:GetEncryptionConfiguration"),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Set the bucket's default encryption to SSE-KMS with a customer-managed key and S3 "
        "Bucket Keys (console: Properties > Default encryption; CLI: aws s3api "
        "put-bucket-encryption with SSEAlgorithm aws:kms and KMSMasterKeyID; Terraform: "
        "aws_s3_bucket_server_side_encryption_configuration). SSE-S3 (AES256) encrypts, but "
        "gives no key policy, no CloudTrail record of key use and no way to revoke access."
    ),
)
def s3_at_rest(context: ProbeContext) -> ProbeResult:
    s3 = context.client("s3")
    partition = _partition(context)
    findings = []
    for name in _regional_buckets(context):
        arn = f"arn:{partition}:s3:::{name}"
        try:
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"][
                "Rules"
            ]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            findings.append(Finding(arn, Status.FAIL, "no default encryption configured"))
            continue
        algorithms = {
            rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for rule in rules
        } - {None}
        if algorithms and algorithms <= KMS_ALGORITHMS:
            findings.append(Finding(arn, Status.PASS, f"default encryption {sorted(algorithms)}"))
        elif algorithms:
            findings.append(
                Finding(
                    arn,
                    Status.WARN,
                    f"default encryption {', '.join(sorted(algorithms))} (SSE-S3), not KMS",
                )
            )
        else:
            findings.append(Finding(arn, Status.FAIL, "encryption rules name no algorithm"))
    return verdict(
        findings,
        passed="All {total} buckets encrypt by default with KMS",
        failed="{failed} of {total} buckets have no default encryption",
        warned="{warned} of {total} buckets use SSE-S3 (AES256) rather than KMS",
        empty=f"No S3 buckets in {context.region}",
        facts={"kms_algorithms": sorted(KMS_ALGORITHMS)},
    )


@probe(
    key="encryption.kms_rotation",
    section=SECTION,
    item=ITEM,
    title="Every enabled customer-managed symmetric KMS key has automatic rotation on",
    actions=("kms:ListKeys", "kms:ListAliases", "kms:DescribeKey", "kms:GetKeyRotationStatus"),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Enable automatic key rotation on each customer-managed symmetric key (console: KMS > "
        "key > Key rotation > 'Automatically rotate this KMS key'; CLI: aws kms "
        "enable-key-rotation --key-id ID [--rotation-period-in-days N]; CloudFormation "
        "EnableKeyRotation / Terraform enable_key_rotation = true)."
    ),
)
def kms_rotation(context: ProbeContext) -> ProbeResult:
    kms = context.client("kms")
    findings = []
    skipped = 0
    aws_managed = {
        alias["TargetKeyId"]
        for alias in context.paginate("kms", "list_aliases", "Aliases")
        if alias.get("AliasName", "").startswith("alias/aws/") and alias.get("TargetKeyId")
    }
    for key in context.paginate("kms", "list_keys", "Keys"):
        if key["KeyId"] in aws_managed:  # alias/aws/*: AWS rotates these itself
            skipped += 1
            continue
        # Keys are regional; an emulator listing another region's keys must not judge them
        # here (their rotation status would be read from the wrong region).
        if key.get("KeyArn", "").split(":")[3:4] not in ([context.api_region], []):
            continue
        metadata = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        # AWS-managed keys rotate yearly on their own; asymmetric and HMAC keys, disabled keys
        # and keys with imported or external key material cannot be rotated automatically.
        if (
            metadata.get("KeyManager") != "CUSTOMER"
            or metadata.get("KeyState") != "Enabled"
            or metadata.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT"
            or metadata.get("Origin", "AWS_KMS") != "AWS_KMS"
        ):
            skipped += 1
            continue
        status = kms.get_key_rotation_status(KeyId=key["KeyId"])
        if status.get("KeyRotationEnabled"):
            period = status.get("RotationPeriodInDays")
            reason = f"rotation every {period} days" if period else "automatic rotation enabled"
            findings.append(Finding(metadata["Arn"], Status.PASS, reason))
        else:
            findings.append(Finding(metadata["Arn"], Status.FAIL, "automatic rotation is off"))
    return verdict(
        findings,
        passed="All {total} customer-managed symmetric keys rotate automatically",
        failed="{failed} of {total} customer-managed symmetric keys have rotation off",
        empty="No enabled customer-managed symmetric KMS keys in this region",
        facts={"keys_not_in_scope": skipped},
    )


@probe(
    key="encryption.dynamodb",
    section=SECTION,
    item=ITEM,
    title="Every DynamoDB table is encrypted with a KMS key (AWS-managed or customer-managed)",
    actions=("dynamodb:ListTables", "dynamodb:DescribeTable"),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Switch the table's encryption to a KMS key (console: table > Additional settings > "
        "Encryption > 'AWS managed key' or 'Customer managed key'; CLI: aws dynamodb "
        "update-table --sse-specification Enabled=true,SSEType=KMS,KMSMasterKeyId=KEY; "
        "CloudFormation SSESpecification SSEEnabled: true). The default AWS-owned key encrypts "
        "but is invisible to CloudTrail and cannot be controlled by key policy."
    ),
)
def dynamodb(context: ProbeContext) -> ProbeResult:
    client = context.client("dynamodb")
    findings = []
    for name in context.paginate("dynamodb", "list_tables", "TableNames"):
        table = client.describe_table(TableName=name)["Table"]
        sse = table.get("SSEDescription") or {}
        arn = table.get("TableArn", name)
        # No SSEDescription means the default: encrypted with an AWS-owned key.
        if sse.get("SSEType") == "KMS" and sse.get("Status") in DYNAMODB_KMS_USABLE:
            findings.append(Finding(arn, Status.PASS, f"KMS key {sse.get('KMSMasterKeyArn')}"))
        elif sse.get("Status") == "INACCESSIBLE_ENCRYPTION_CREDENTIALS" or sse.get(
            "InaccessibleEncryptionDateTime"
        ):
            findings.append(Finding(arn, Status.FAIL, "its KMS key is inaccessible"))
        else:
            findings.append(Finding(arn, Status.WARN, "encrypted with the AWS-owned default key"))
    return verdict(
        findings,
        passed="All {total} tables are encrypted with a KMS key",
        failed="{failed} of {total} tables cannot reach their KMS key",
        warned="{warned} of {total} tables use the AWS-owned default key, not KMS",
        empty="No DynamoDB tables in this region",
    )


# --- in transit ----------------------------------------------------------------------------


def _redirects_to_https(actions: list) -> bool:
    for action in actions:
        if action.get("Type") == "redirect":
            protocol = action.get("RedirectConfig", {}).get("Protocol", "#{protocol}")
            return protocol == "HTTPS"
    return False


@probe(
    key="encryption.load_balancers",
    section=SECTION,
    item=ITEM,
    title=(
        "Every load balancer listener is HTTPS/TLS with a TLS 1.2+ policy, or redirects HTTP to "
        "HTTPS"
    ),
    actions=(
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeSSLPolicies",
    ),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Serve clients over HTTPS/TLS listeners with a TLS 1.2+ security policy such as "
        "ELBSecurityPolicy-TLS13-1-2-2021-06 (console: listener > Edit > Security policy; CLI: "
        "aws elbv2 modify-listener --ssl-policy; CloudFormation/Terraform SslPolicy / "
        "ssl_policy). Keep port 80 only as a listener whose default action is a redirect to "
        "HTTPS (HTTP_301)."
    ),
)
def load_balancers(context: ProbeContext) -> ProbeResult:
    judged: list[tuple[dict, str]] = []
    for balancer in context.paginate("elbv2", "describe_load_balancers", "LoadBalancers"):
        kind = balancer.get("Type", "application")
        if kind == "gateway":
            continue  # GENEVE to appliances: no client traffic to encrypt at this hop
        for listener in context.paginate(
            "elbv2", "describe_listeners", "Listeners", LoadBalancerArn=balancer["LoadBalancerArn"]
        ):
            judged.append((listener, kind))

    tls_policies = {
        listener.get("SslPolicy")
        for listener, _ in judged
        if listener.get("Protocol") in ("HTTPS", "TLS") and listener.get("SslPolicy")
    }
    protocols_of: dict[str, set[str]] = {}
    unknown = sorted(name for name in tls_policies if not STRONG_SSL_POLICY.match(name))
    if unknown:
        # One call for all policies the name alone doesn't vouch for (ELBSecurityPolicy-2016-08).
        for policy in context.paginate(
            "elbv2", "describe_ssl_policies", "SslPolicies", Names=unknown
        ):
            protocols_of[policy["Name"]] = set(policy.get("SslProtocols", []))

    findings = []
    for listener, kind in judged:
        arn, protocol = listener["ListenerArn"], listener.get("Protocol")
        policy = listener.get("SslPolicy")
        if protocol in ("HTTPS", "TLS"):
            if policy and STRONG_SSL_POLICY.match(policy):
                findings.append(Finding(arn, Status.PASS, f"{protocol} with {policy}"))
            elif policy in protocols_of and protocols_of[policy] <= MODERN_TLS:
                findings.append(Finding(arn, Status.PASS, f"{protocol} with {policy} (TLS 1.2+)"))
            else:
                allowed = ", ".join(sorted(protocols_of.get(policy) or [])) or "unknown protocols"
                findings.append(
                    Finding(arn, Status.FAIL, f"{protocol} policy {policy} allows {allowed}")
                )
        elif protocol == "HTTP":
            if _redirects_to_https(listener.get("DefaultActions", [])):
                findings.append(Finding(arn, Status.PASS, "HTTP listener redirects to HTTPS"))
            else:
                findings.append(
                    Finding(arn, Status.FAIL, "plain HTTP listener that does not redirect")
                )
        elif protocol in PASSTHROUGH_PROTOCOLS:
            findings.append(
                Finding(
                    arn,
                    Status.WARN,
                    f"{kind} {protocol} listener passes traffic through; TLS is not enforced here",
                )
            )
        else:
            findings.append(Finding(arn, Status.FAIL, f"unexpected listener protocol {protocol}"))
    return verdict(
        findings,
        passed="All {total} listeners use TLS 1.2+ or redirect HTTP to HTTPS",
        failed="{failed} of {total} listeners accept plain HTTP or TLS older than 1.2",
        warned="{warned} of {total} listeners pass TCP/UDP through without TLS termination",
        empty="No Application or Network Load Balancer listeners in this region",
        facts={"policies_described": unknown, "allowed_protocols": sorted(MODERN_TLS)},
    )


def _denies_insecure_transport(document: dict) -> tuple[Status, str]:
    """PASS for a Deny to everyone of s3:* when aws:SecureTransport is false."""
    partial = None
    for statement in _as_list(document.get("Statement")):
        if statement.get("Effect") != "Deny":
            continue
        principal = statement.get("Principal")
        if principal != "*" and (
            not isinstance(principal, dict) or "*" not in _as_list(principal.get("AWS"))
        ):
            continue
        conditions = statement.get("Condition", {})
        # Operators and condition keys are case-insensitive in IAM; policies also write false
        # as a JSON boolean.
        secure_transport = [
            value
            for operator, block in conditions.items()
            if operator.lower() in ("bool", "boolifexists")
            for key, value in block.items()
            if key.lower() == "aws:securetransport"
        ]
        if not any(
            str(v).lower() == "false" for value in secure_transport for v in _as_list(value)
        ):
            continue
        actions = {str(a).lower() for a in _as_list(statement.get("Action"))}
        if actions & {"*", "s3:*"}:
            return Status.PASS, "bucket policy denies requests without TLS"
        partial = ", ".join(sorted(actions))
    if partial:
        return Status.WARN, f"bucket policy denies non-TLS requests only for {partial}"
    return Status.FAIL, "bucket policy has no Deny on aws:SecureTransport = false"


@probe(
    key="encryption.s3_in_transit",
    section=SECTION,
    item=ITEM,
    title="Every S3 bucket in the region denies requests without TLS (aws:SecureTransport)",
    actions=("s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:GetBucketPolicy"),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        'Add to each bucket policy a statement {"Effect": "Deny", "Principal": "*", '
        '"Action": "s3:*", "Resource": ["arn:aws:s3:::BUCKET", "arn:aws:s3:::BUCKET/*"], '
        '"Condition": {"Bool": {"aws:SecureTransport": "false"}}} (console: Permissions > '
        "Bucket policy; CLI: aws s3api put-bucket-policy; Terraform: aws_s3_bucket_policy)."
    ),
)
def s3_in_transit(context: ProbeContext) -> ProbeResult:
    s3 = context.client("s3")
    partition = _partition(context)
    findings = []
    for name in _regional_buckets(context):
        arn = f"arn:{partition}:s3:::{name}"
        try:
            document = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchBucketPolicy":
                raise
            findings.append(Finding(arn, Status.FAIL, "no bucket policy, so HTTP is allowed"))
            continue
        status, reason = _denies_insecure_transport(document)
        findings.append(Finding(arn, status, reason))
    return verdict(
        findings,
        passed="All {total} buckets deny requests without TLS",
        failed="{failed} of {total} buckets accept requests without TLS",
        warned="{warned} of {total} buckets deny non-TLS requests for some actions only",
        empty=f"No S3 buckets in {context.region}",
    )


@probe(
    key="encryption.cloudfront",
    section=SECTION,
    item=ITEM,
    title=(
        "No CloudFront cache behavior allows HTTP, and custom certificates require TLS 1.2 or newer"
    ),
    actions=("cloudfront:ListDistributions",),
    scope=Scope.GLOBAL,
    severity=Severity.HIGH,
    remediation=(
        "Set every cache behavior's Viewer protocol policy to 'Redirect HTTP to HTTPS' or "
        "'HTTPS only' (ViewerProtocolPolicy redirect-to-https / https-only), and with a custom "
        "SSL certificate choose security policy TLSv1.2_2021 or newer "
        "(ViewerCertificate.MinimumProtocolVersion)."
    ),
)
def cloudfront(context: ProbeContext) -> ProbeResult:
    paginator = context.client("cloudfront").get_paginator("list_distributions")
    findings = []
    for page in paginator.paginate():
        for distribution in page.get("DistributionList", {}).get("Items") or []:
            problems = []
            behaviors = [("default", distribution.get("DefaultCacheBehavior", {}))] + [
                (b.get("PathPattern", "?"), b)
                for b in distribution.get("CacheBehaviors", {}).get("Items") or []
            ]
            allow_all = [
                path for path, b in behaviors if b.get("ViewerProtocolPolicy") == "allow-all"
            ]
            if allow_all:
                problems.append(f"allow-all (HTTP) on {', '.join(allow_all)}")
            certificate = distribution.get("ViewerCertificate", {})
            minimum = certificate.get("MinimumProtocolVersion", "")
            # The *.cloudfront.net certificate is pinned to TLSv1 and can't be changed.
            custom = bool(
                certificate.get("ACMCertificateArn") or certificate.get("IAMCertificateId")
            )
            if custom and not minimum.startswith(("TLSv1.2", "TLSv1.3")):
                problems.append(f"custom certificate with minimum protocol {minimum or 'unset'}")
            findings.append(
                Finding(
                    distribution.get("ARN", distribution["Id"]),
                    Status.FAIL if problems else Status.PASS,
                    "; ".join(problems)
                    if problems
                    else "HTTPS enforced"
                    + (f", minimum {minimum}" if custom else " (default certificate)"),
                )
            )
    return verdict(
        findings,
        passed="All {total} distributions enforce HTTPS with TLS 1.2+ on custom certificates",
        failed="{failed} of {total} distributions allow HTTP or TLS older than 1.2",
        empty="No CloudFront distributions",
        facts={"minimum_protocol": "TLSv1.2_*"},
    )


@probe(
    key="encryption.acm",
    section=SECTION,
    item=ITEM,
    title="No ACM certificate is expired, and none in use expires within the threshold",
    actions=("acm:ListCertificates",),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Renew or replace certificates before they expire: for ACM-issued certificates keep "
        "the DNS validation CNAME in place so managed renewal succeeds (console: Certificate "
        "Manager > certificate > Renewal status); re-import imported certificates with aws acm "
        "import-certificate --certificate-arn ARN. Delete expired certificates that are no "
        "longer used."
    ),
)
def acm(context: ProbeContext) -> ProbeResult:
    days = context.settings.certificate_expiry_days
    now = datetime.now(UTC)
    horizon = now + timedelta(days=days)
    # ListCertificates returns only RSA_2048 certificates unless every key type is asked for.
    key_types = context.client("acm").meta.service_model.shape_for("KeyAlgorithm").enum
    findings = []
    not_judged = 0
    for certificate in context.paginate(
        "acm", "list_certificates", "CertificateSummaryList", Includes={"keyTypes": key_types}
    ):
        arn, status = certificate["CertificateArn"], certificate.get("Status")
        in_use = bool(certificate.get("InUse"))
        use = "in use" if in_use else "not in use"
        not_after = certificate.get("NotAfter")
        if status == "EXPIRED" or (not_after and not_after <= now):
            findings.append(Finding(arn, Status.FAIL, f"expired ({use})"))
        elif status == "REVOKED" and in_use:
            findings.append(Finding(arn, Status.FAIL, "revoked but still in use"))
        elif status != "ISSUED" or not not_after:
            not_judged += 1  # pending, failed, inactive: serves no traffic, nothing to expire
        elif not_after <= horizon:
            left = (not_after - now).days
            findings.append(
                Finding(
                    arn,
                    Status.FAIL if in_use else Status.WARN,
                    f"expires {not_after:%Y-%m-%d} ({left} days left, {use})",
                )
            )
        else:
            findings.append(Finding(arn, Status.PASS, f"valid until {not_after:%Y-%m-%d} ({use})"))
    return verdict(
        findings,
        passed=f"All {{total}} certificates are valid for more than {days} days",
        failed=f"{{failed}} of {{total}} certificates are expired or expire within {days} days "
        "while in use",
        warned=f"{{warned}} of {{total}} unused certificates expire within {days} days",
        empty="No issued or expired ACM certificates in this region",
        facts={"certificate_expiry_days": days, "not_judged": not_judged},
    )
