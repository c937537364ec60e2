"""boto3 sessions for a deployment's AWS target: the worker's own credentials or an assumed role.

No long-term secret is ever stored: a role is assumed with STS for each run, and boto3 reads
`AWS_ENDPOINT_URL` (how tests and the demo reach a moto server) from the environment.
"""

import re

import boto3
from botocore.config import Config

ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
ROLE_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::(?P<account>\d{12}):role/[\w+=,.@/-]{1,512}$")
SESSION_NAME_RE = re.compile(r"[^\w+=,.@-]")


def known_regions() -> tuple[str, ...]:
    """Every commercial, GovCloud and China region botocore knows, without calling AWS."""
    session = boto3.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return tuple(sorted(regions))


def session_name(deployment_label: str) -> str:
    """An STS session name that tells CloudTrail readers which deployment asked (≤ 64 chars)."""
    return SESSION_NAME_RE.sub("-", f"readiness-{deployment_label}")[:64]


def target_session(
    *, role_arn: str = "", external_id: str = "", name: str = "readiness", region: str = "us-east-1"
) -> boto3.Session:
    """The session probes use: the ambient credentials, or a role assumed for this run."""
    base = boto3.Session(region_name=region)
    if not role_arn:
        return base
    sts = base.client("sts", config=Config(retries={"mode": "standard", "total_max_attempts": 4}))
    request = {"RoleArn": role_arn, "RoleSessionName": session_name(name), "DurationSeconds": 3600}
    if external_id:
        request["ExternalId"] = external_id
    credentials = sts.assume_role(**request)["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
