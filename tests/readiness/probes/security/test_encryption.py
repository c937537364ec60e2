import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from readiness.probes.base import Status, execute, registry
from readiness.probes.security.encryption import _denies_insecure_transport

ROOT = Path(__file__).resolve().parents[4]
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
ACCOUNT = "123456789012"
PASSWORD = "a-long-password-1"


def run(key, context):
    return execute(registry()[key], context).result


def by_status(result, status):
    return {f.resource for f in result.findings if f.status == status}


def failing(result):
    return by_status(result, Status.FAIL)


def bucket(aws, name, region=REGION):
    s3 = aws.client("s3", region_name=region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return f"arn:aws:s3:::{name}"


def default_encryption(aws, name, algorithm, region=REGION):
    rule = {"SSEAlgorithm": algorithm}
    if algorithm.startswith("aws:kms"):
        rule["KMSMasterKeyID"] = "alias/data"
    aws.client("s3", region_name=region).put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": rule, "BucketKeyEnabled": True}]
        },
    )


def deny_insecure_transport(name, actions="s3:*", value="false"):
    return {
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions,
        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": value}},
    }


def bucket_policy(aws, name, *statements):
    aws.client("s3").put_bucket_policy(
        Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    )


def certificate(aws, days, region=REGION, domain="shop.example.com"):
    """Import a self-signed certificate valid for `days` more days; returns its ARN."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return aws.client("acm", region_name=region).import_certificate(
        Certificate=cert.public_bytes(serialization.Encoding.PEM),
        PrivateKey=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )["CertificateArn"]


def load_balancer(aws, name="web", kind="application"):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = []
    for number, zone in enumerate("ab"):
        subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.0.{number}.0/24", AvailabilityZone=f"{REGION}{zone}"
        )["Subnet"]
        subnets.append(subnet["SubnetId"])
    elbv2 = aws.client("elbv2")
    balancer = elbv2.create_load_balancer(Name=name, Subnets=subnets, Type=kind)["LoadBalancers"]
    group = elbv2.create_target_group(
        Name=f"{name}-targets",
        Protocol="HTTP" if kind == "application" else "TCP",
        Port=80,
        VpcId=vpc,
    )["TargetGroups"][0]["TargetGroupArn"]
    return balancer[0]["LoadBalancerArn"], group


def listener(aws, balancer, protocol, port, actions, **extra):
    return aws.client("elbv2").create_listener(
        LoadBalancerArn=balancer, Protocol=protocol, Port=port, DefaultActions=actions, **extra
    )["Listeners"][0]["ListenerArn"]


REDIRECT = [
    {
        "Type": "redirect",
        "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
    }
]


def distribution(aws, ref, default_policy="redirect-to-https", paths=(), viewer_certificate=None):
    origin = {
        "Id": "origin",
        "DomainName": "app.example.com",
        "CustomOriginConfig": {
            "HTTPPort": 80,
            "HTTPSPort": 443,
            "OriginProtocolPolicy": "https-only",
        },
    }
    behavior = {"TargetOriginId": "origin", "ViewerProtocolPolicy": default_policy}
    config = {
        "CallerReference": ref,
        "Comment": ref,
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {
            **behavior,
            "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
        },
    }
    if paths:
        config["CacheBehaviors"] = {
            "Quantity": len(paths),
            "Items": [
                {
                    "PathPattern": path,
                    "TargetOriginId": "origin",
                    "ViewerProtocolPolicy": policy,
                    "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
                }
                for path, policy in paths
            ],
        }
    if viewer_certificate:
        config["ViewerCertificate"] = viewer_certificate
    return aws.client("cloudfront").create_distribution(DistributionConfig=config)["Distribution"][
        "ARN"
    ]


# --- EBS -----------------------------------------------------------------------------------


def test_ebs_passes_with_default_encryption_and_encrypted_volumes(aws, make_context):
    ec2 = aws.client("ec2")
    ec2.enable_ebs_encryption_by_default()
    ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8, Encrypted=True)
    result = run("encryption.ebs", make_context())
    assert result.status == Status.PASS, result
    assert result.facts == {"encryption_by_default": True, "volumes": 1}


def test_ebs_fails_on_default_off_and_unencrypted_volumes(aws, make_context):
    ec2 = aws.client("ec2")
    plain = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8, Encrypted=False)["VolumeId"]
    ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8, Encrypted=True)
    result = run("encryption.ebs", make_context())
    assert result.status == Status.FAIL
    assert failing(result) == {plain, f"{REGION} (EBS encryption by default)"}
    assert result.summary == "EBS encryption by default is off; 1 of 2 volumes are unencrypted"


# --- RDS -----------------------------------------------------------------------------------


def rds_instance(aws, name, **extra):
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
        AllocatedStorage=20,
        **extra,
    )
    return f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{name}"


def rds_cluster(aws, name, **extra):
    aws.client("rds").create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
        **extra,
    )
    return f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{name}"


def test_rds_passes_when_instances_and_clusters_are_encrypted(aws, make_context):
    rds_instance(aws, "orders", StorageEncrypted=True)
    rds_cluster(aws, "ledger", StorageEncrypted=True)
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier="ledger-1",
        DBClusterIdentifier="ledger",
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )
    result = run("encryption.rds", make_context())
    assert result.status == Status.PASS, result
    assert len(result.findings) == 2  # the cluster member is judged through its cluster
    assert result.facts["cluster_member_instances"] == 1


def test_rds_fails_on_unencrypted_instance_and_cluster(aws, make_context):
    plain_db = rds_instance(aws, "orders", StorageEncrypted=False)
    rds_instance(aws, "users", StorageEncrypted=True)
    plain_cluster = rds_cluster(aws, "ledger", StorageEncrypted=False)
    result = run("encryption.rds", make_context())
    assert result.status == Status.FAIL
    assert failing(result) == {plain_db, plain_cluster}


# --- S3 at rest ----------------------------------------------------------------------------


def test_s3_at_rest_passes_with_kms_and_dsse_and_ignores_other_regions(aws, make_context):
    bucket(aws, "kms-data")
    default_encryption(aws, "kms-data", "aws:kms")
    bucket(aws, "dsse-data")
    default_encryption(aws, "dsse-data", "aws:kms:dsse")
    bucket(aws, "elsewhere", region=OTHER_REGION)  # not this region's to judge
    result = run("encryption.s3_at_rest", make_context())
    assert result.status == Status.PASS, result
    assert {f.resource for f in result.findings} == {
        "arn:aws:s3:::kms-data",
        "arn:aws:s3:::dsse-data",
    }


def test_s3_at_rest_warns_on_sse_s3_and_fails_without_default_encryption(aws, make_context):
    sse_s3 = bucket(aws, "aes-data")
    default_encryption(aws, "aes-data", "AES256")
    bucket(aws, "kms-data")
    default_encryption(aws, "kms-data", "aws:kms")
    bare = bucket(aws, "bare")
    s3 = aws.client("s3")
    # Newer emulators give every bucket SSE-S3 as AWS does; remove it to model an old bucket.
    s3.delete_bucket_encryption(Bucket="bare")
    result = run("encryption.s3_at_rest", make_context())
    assert result.status == Status.FAIL
    assert failing(result) == {bare}
    assert by_status(result, Status.WARN) == {sse_s3}


def test_s3_at_rest_warns_when_only_sse_s3(aws, make_context):
    sse_s3 = bucket(aws, "aes-data")
    default_encryption(aws, "aes-data", "AES256")
    result = run("encryption.s3_at_rest", make_context())
    assert result.status == Status.WARN
    assert by_status(result, Status.WARN) == {sse_s3}


def test_s3_at_rest_judges_buckets_of_a_non_default_region(aws, make_context):
    bucket(aws, "home")
    eu = bucket(aws, "eu-data", region=OTHER_REGION)
    result = run("encryption.s3_at_rest", make_context(OTHER_REGION))
    assert {f.resource for f in result.findings} == {eu}


# --- KMS rotation --------------------------------------------------------------------------


def test_kms_rotation_passes_when_customer_keys_rotate_and_skips_keys_out_of_scope(
    aws, make_context
):
    kms = aws.client("kms")
    rotating = kms.create_key(Description="data")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=rotating)
    kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")  # asymmetric: cannot rotate
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    result = run("encryption.kms_rotation", make_context())
    assert result.status == Status.PASS, result
    assert {f.resource for f in result.findings} == {rotating}
    assert result.facts["keys_not_in_scope"] == 2


def test_kms_rotation_fails_for_customer_keys_without_rotation(aws, make_context):
    kms = aws.client("kms")
    stale = kms.create_key(Description="legacy")["KeyMetadata"]["Arn"]
    rotating = kms.create_key(Description="data")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=rotating)
    result = run("encryption.kms_rotation", make_context())
    assert result.status == Status.FAIL
    assert failing(result) == {stale}


def test_kms_rotation_without_customer_keys_is_not_applicable(aws, make_context):
    assert run("encryption.kms_rotation", make_context()).status == Status.NOT_APPLICABLE


# --- DynamoDB ------------------------------------------------------------------------------


def table(aws, name, **extra):
    return aws.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )["TableDescription"]["TableArn"]


KMS_SSE = {"Enabled": True, "SSEType": "KMS"}


def test_dynamodb_passes_when_tables_use_kms(aws, make_context):
    table(aws, "orders", SSESpecification=KMS_SSE)
    key = aws.client("kms").create_key()["KeyMetadata"]["Arn"]
    table(aws, "users", SSESpecification={**KMS_SSE, "KMSMasterKeyId": key})
    result = run("encryption.dynamodb", make_context())
    assert result.status == Status.PASS, result
    assert len(result.findings) == 2


def test_dynamodb_warns_on_the_aws_owned_default_key(aws, make_context):
    default = table(aws, "sessions")
    table(aws, "orders", SSESpecification=KMS_SSE)
    result = run("encryption.dynamodb", make_context())
    assert result.status == Status.WARN
    assert by_status(result, Status.WARN) == {default}


# --- load balancers ------------------------------------------------------------------------


def test_load_balancers_pass_with_tls12_policies_and_https_redirects(aws, make_context):
    balancer, group = load_balancer(aws)
    cert = certificate(aws, 365)
    forward = [{"Type": "forward", "TargetGroupArn": group}]
    listener(
        aws,
        balancer,
        "HTTPS",
        443,
        forward,
        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        Certificates=[{"CertificateArn": cert}],
    )
    listener(
        aws,
        balancer,
        "HTTPS",
        8443,
        forward,
        SslPolicy="ELBSecurityPolicy-FS-1-2-Res-2020-10",
        Certificates=[{"CertificateArn": cert}],
    )
    listener(aws, balancer, "HTTP", 80, REDIRECT)
    result = run("encryption.load_balancers", make_context())
    assert result.status == Status.PASS, result
    assert len(result.findings) == 3
    assert result.facts["policies_described"] == []  # all recognised by name


def test_load_balancers_fail_on_plain_http_and_legacy_tls_policies(aws, make_context):
    balancer, group = load_balancer(aws)
    cert = certificate(aws, 365)
    forward = [{"Type": "forward", "TargetGroupArn": group}]
    plain = listener(aws, balancer, "HTTP", 80, forward)
    legacy = listener(
        aws,
        balancer,
        "HTTPS",
        443,
        forward,
        SslPolicy="ELBSecurityPolicy-2016-08",
        Certificates=[{"CertificateArn": cert}],
    )
    tls11 = listener(
        aws,
        balancer,
        "HTTPS",
        8443,
        forward,
        SslPolicy="ELBSecurityPolicy-TLS-1-1-2017-01",
        Certificates=[{"CertificateArn": cert}],
    )
    result = run("encryption.load_balancers", make_context())
    assert result.status == Status.FAIL
    assert failing(result) == {plain, legacy, tls11}
    reasons = {f.resource: f.reason for f in result.findings}
    assert "TLSv1.1" in reasons[legacy]  # read from DescribeSSLPolicies
    assert result.facts["policies_described"] == [
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-TLS-1-1-2017-01",
    ]


def test_load_balancers_warn_on_tcp_passthrough(aws, make_context):
    balancer, group = load_balancer(aws, kind="network")
    tcp = listener(aws, balancer, "TCP", 443, [{"Type": "forward", "TargetGroupArn": group}])
    result = run("encryption.load_balancers", make_context())
    assert result.status == Status.WARN
    assert by_status(result, Status.WARN) == {tcp}


# --- S3 in transit -------------------------------------------------------------------------


def test_s3_in_transit_passes_when_policies_deny_insecure_transport(aws, make_context):
    bucket(aws, "assets")
    bucket_policy(aws, "assets", deny_insecure_transport("assets"))
    bucket(aws, "logs")
    statement = deny_insecure_transport("logs", actions=["s3:*"], value=False)
    statement["Principal"] = {"AWS": "*"}
    bucket_policy(aws, "logs", statement)
    result = run("encryption.s3_in_transit", make_context())
    assert result.status == Status.PASS, result
    assert len(result.findings) == 2


def test_s3_in_transit_fails_without_a_secure_transport_deny(aws, make_context):
    no_policy = bucket(aws, "no-policy")
    allow_only = bucket(aws, "allow-only")
    bucket_policy(
        aws,
        "allow-only",
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::allow-only/*",
        },
    )
    partial = bucket(aws, "partial")
    bucket_policy(aws, "partial", deny_insecure_transport("partial", actions="s3:GetObject"))
    bucket(aws, "good")
    bucket_policy(aws, "good", deny_insecure_transport("good"))
    result = run("encryption.s3_in_transit", make_context())
    assert result.status == Status.FAIL
    assert failing(result) == {no_policy, allow_only}
    assert by_status(result, Status.WARN) == {partial}


@pytest.mark.parametrize(
    ("statement", "status"),
    [
        ({"Condition": {"Bool": {"aws:SecureTransport": "true"}}}, Status.FAIL),
        ({"Condition": {"BoolIfExists": {"AWS:SecureTransport": ["false"]}}}, Status.PASS),
        ({"Effect": "Allow"}, Status.FAIL),
        ({"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"}}, Status.FAIL),
        ({"Action": "*"}, Status.PASS),
    ],
)
def test_secure_transport_statement_shapes(statement, status):
    document = {"Statement": [{**deny_insecure_transport("b"), **statement}]}
    assert _denies_insecure_transport(document)[0] == status


# --- CloudFront ----------------------------------------------------------------------------


CUSTOM_CERT = {
    "ACMCertificateArn": f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/abc",
    "SSLSupportMethod": "sni-only",
}


def test_cloudfront_passes_when_https_is_enforced(aws, make_context):
    distribution(aws, "default-cert", paths=[("/api/*", "https-only")])
    distribution(
        aws,
        "custom-cert",
        viewer_certificate={**CUSTOM_CERT, "MinimumProtocolVersion": "TLSv1.2_2021"},
    )
    result = run("encryption.cloudfront", make_context("global"))
    assert result.status == Status.PASS, result
    assert len(result.findings) == 2


def test_cloudfront_fails_on_allow_all_and_old_tls_on_custom_certificates(aws, make_context):
    http = distribution(aws, "http", paths=[("/static/*", "allow-all")])
    old_tls = distribution(
        aws, "old-tls", viewer_certificate={**CUSTOM_CERT, "MinimumProtocolVersion": "TLSv1_2016"}
    )
    distribution(aws, "good")
    result = run("encryption.cloudfront", make_context("global"))
    assert result.status == Status.FAIL
    assert failing(result) == {http, old_tls}
    reasons = {f.resource: f.reason for f in result.findings}
    assert "/static/*" in reasons[http]
    assert "TLSv1_2016" in reasons[old_tls]


# --- ACM -----------------------------------------------------------------------------------


def test_acm_passes_when_certificates_are_valid_beyond_the_threshold(aws, make_context):
    certificate(aws, 200)
    certificate(aws, 45, domain="api.example.com")
    result = run("encryption.acm", make_context())
    assert result.status == Status.PASS, result
    assert len(result.findings) == 2
    assert result.facts["certificate_expiry_days"] == 30


def test_acm_fails_for_in_use_certificates_expiring_soon_and_warns_when_unused(aws, make_context):
    soon_in_use = certificate(aws, 10)
    soon_unused = certificate(aws, 20, domain="old.example.com")
    certificate(aws, 200, domain="fine.example.com")
    balancer, group = load_balancer(aws)
    listener(
        aws,
        balancer,
        "HTTPS",
        443,
        [{"Type": "forward", "TargetGroupArn": group}],
        Certificates=[{"CertificateArn": soon_in_use}],
    )
    result = run("encryption.acm", make_context())
    assert result.status == Status.FAIL
    assert failing(result) == {soon_in_use}
    assert by_status(result, Status.WARN) == {soon_unused}
    # The threshold is policy: with 7 days neither is close enough to matter.
    assert run("encryption.acm", make_context(certificate_expiry_days=7)).status == Status.PASS


def test_acm_fails_for_expired_certificates_even_when_unused(aws, make_context):
    context = make_context()
    client = context.client("acm")
    past = datetime.now(UTC) - timedelta(days=3)
    arn = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/expired"
    # ACM (and moto) refuse to import an expired certificate, so answer as AWS would later.
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_certificates",
            {
                "CertificateSummaryList": [
                    {"CertificateArn": arn, "Status": "EXPIRED", "InUse": False, "NotAfter": past}
                ]
            },
        )
        result = run("encryption.acm", context)
    assert result.status == Status.FAIL
    assert failing(result) == {arn}


def test_every_probe_verifies_the_encryption_item_of_the_checklist():
    checklist = (ROOT / "readiness/data/production-readiness-checklist.md").read_text()
    probes = [p for key, p in registry().items() if key.startswith("encryption.")]
    assert len(probes) == 9
    assert "**Encryption:**" in checklist
    assert {(p.section, p.item) for p in probes} == {("Security", "Encryption")}
    assert all(p.remediation and p.actions for p in probes)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "service", "operation", "action", "region"),
    [
        (
            "encryption.ebs",
            "ec2",
            "get_ebs_encryption_by_default",
            "ec2:GetEbsEncryptionByDefault",
            REGION,
        ),
        ("encryption.rds", "rds", "describe_db_clusters", "rds:DescribeDBClusters", REGION),
        ("encryption.s3_at_rest", "s3", "list_buckets", "s3:ListAllMyBuckets", REGION),
        ("encryption.kms_rotation", "kms", "list_aliases", "kms:ListAliases", REGION),
        ("encryption.dynamodb", "dynamodb", "list_tables", "dynamodb:ListTables", REGION),
        (
            "encryption.load_balancers",
            "elbv2",
            "describe_load_balancers",
            "elasticloadbalancing:DescribeLoadBalancers",
            REGION,
        ),
        ("encryption.s3_in_transit", "s3", "list_buckets", "s3:ListAllMyBuckets", REGION),
        (
            "encryption.cloudfront",
            "cloudfront",
            "list_distributions",
            "cloudfront:ListDistributions",
            "global",
        ),
        ("encryption.acm", "acm", "list_certificates", "acm:ListCertificates", REGION),
    ],
)
def test_access_denied_is_an_error_naming_the_action(
    aws, make_context, key, service, operation, action, region
):
    context = make_context(region)
    with Stubber(context.client(service)) as stubber:
        stubber.add_client_error(operation, service_error_code="AccessDenied", http_status_code=403)
        result = run(key, context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(f"Access denied: the probe needs {action}"), result.summary


def test_a_refused_bucket_read_is_an_error_not_a_missing_configuration(aws, make_context):
    bucket(aws, "data")
    context = make_context()
    s3 = context.client("s3")
    # Only the "not configured" codes become findings; anything else must surface as an error.
    with Stubber(s3) as stubber:
        stubber.add_response(
            "list_buckets", {"Buckets": [{"Name": "data", "BucketRegion": REGION}]}
        )
        stubber.add_client_error("get_bucket_policy", service_error_code="AccessDenied")
        result = run("encryption.s3_in_transit", context)
    assert result.status == Status.ERROR


def test_an_unsupported_api_is_an_error_not_a_pass(aws, make_context):
    context = make_context()
    with Stubber(context.client("ec2")) as stubber:
        # What moto answers for a call it does not implement: HTTP 500 and no error code.
        stubber.add_client_error("get_ebs_encryption_by_default", http_status_code=500)
        result = run("encryption.ebs", context)
    assert result.status == Status.ERROR
    assert "HTTP 500" in result.summary
