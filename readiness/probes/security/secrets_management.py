"""Security / Secrets Management: no literal credentials in Lambda, EC2 user data or ECS task
definitions; secrets rotated; secret-looking SSM parameters encrypted.

A finding never carries a secret value: only the resource, the variable name and the kind of
secret, so that the evidence stored and rendered by Readiness cannot leak what it found.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import itertools
import re
import zlib
from collections.abc import Iterable

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
ITEM = "Secrets Management"

ACCESS_KEY = "AWS access key id"
PRIVATE_KEY = "private key block"
URL_PASSWORD = "password embedded in a URL"
LITERAL = "secret-looking name with a literal value"

_ACCESS_KEY_RE = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_PRIVATE_KEY_RE = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
# scheme://user:password@host, unless the password is a shell or template reference.
_URL_PASSWORD_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?![$%{])[^/\s@'\"]+@", re.I)
# NAME=value, NAME: value, "name": "value" (shell, .env, YAML, JSON in user data). `==` is a
# comparison, not an assignment; a value stops at & and ? so that each query-string
# parameter of a URL is an assignment of its own.
_ASSIGNMENT_RE = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)['\"]?[ \t]*[:=](?!=)[ \t]*['\"]?(?P<value>[^\s'\",;}&?]*)"
)
_NAME_SPLIT_RE = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

_SECRET_WORDS = {
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PASSPHRASE",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "APIKEY",
    "PRIVATEKEY",
    "CREDENTIAL",
    "CREDENTIALS",
}
_SECRET_ENDINGS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "PRIVATEKEY")
_SECRET_PAIRS = {("API", "KEY"), ("PRIVATE", "KEY"), ("ACCESS", "KEY"), ("SIGNING", "KEY")}
# A name ending in one of these points at a secret or describes it; it does not hold one
# (SECRET_ARN, DB_PASSWORD_PARAM, TOKEN_TTL, ACCESS_KEY_ID: the id alone is not a credential).
_REFERENCE_SUFFIXES = {
    "ARN",
    "NAME",
    "ID",
    "URL",
    "URI",
    "PATH",
    "FILE",
    "DIR",
    "ENDPOINT",
    "HOST",
    "REGION",
    "TTL",
    "EXPIRY",
    "LENGTH",
    "HEADER",
    "TYPE",
    "VERSION",
    "PARAM",
    "PARAMETER",
    "ENABLED",
}
_NOT_SECRET_VALUES = {"", "true", "false", "yes", "no", "on", "off", "none", "null", "disabled"}
_REFERENCE_VALUE_RE = re.compile(
    r"^(?:arn:aws[a-z-]*:(?:secretsmanager|ssm|kms):|\{\{resolve:|[$%/{\[|>]|ssm:|secretsmanager:)",
    re.I,
)


def name_looks_secret(name: str) -> bool:
    words = [w.upper() for w in _NAME_SPLIT_RE.split(name) if w]
    if not words or words[-1] in _REFERENCE_SUFFIXES:
        return False
    # Run-together names count too (PGPASSWORD, CLIENTSECRET), but only by their ending:
    # TOKENIZER_MODEL holds no token.
    if any(w in _SECRET_WORDS or w.endswith(_SECRET_ENDINGS) for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def is_literal(value: str) -> bool:
    """True when a value is the secret itself rather than a reference to where it is kept."""
    value = value.strip().strip("'\"")
    if value.lower() in _NOT_SECRET_VALUES or value.isdigit():
        return False
    # Paths and parameter names (/prod/db/password), shell/env references ($VAR, $(cmd),
    # %VAR%), ARNs of Secrets Manager, SSM or KMS, CloudFormation dynamic references, and
    # the start of a YAML/JSON structure ({, [, |, >) rather than a scalar.
    return not _REFERENCE_VALUE_RE.match(value) and "{{resolve:" not in value


def scan_text(text: str) -> set[tuple[str, str]]:
    """(name, kind) pairs for the literal secrets in free text; `name` is "" when unnamed."""
    found: set[tuple[str, str]] = set()
    if _ACCESS_KEY_RE.search(text):
        found.add(("", ACCESS_KEY))
    if _PRIVATE_KEY_RE.search(text):
        found.add(("", PRIVATE_KEY))
    if _URL_PASSWORD_RE.search(text):
        found.add(("", URL_PASSWORD))
    for match in _ASSIGNMENT_RE.finditer(text):
        name, value = match.group("name"), match.group("value")
        if name_looks_secret(name) and is_literal(value):
            found.add((name, LITERAL))
    return found


def scan_variable(name: str, value: str) -> set[str]:
    """Kinds of literal secret held by one environment variable."""
    kinds = {kind for _, kind in scan_text(value)}
    if name_looks_secret(name) and is_literal(value):
        kinds.add(LITERAL)
    return kinds


def _describe(found: Iterable[tuple[str, str]]) -> str:
    return "; ".join(f"{name}: {kind}" if name else kind for name, kind in sorted(found))


def _env_finding(resource: str, variables: Iterable[tuple[str, str, str]], judged: str) -> Finding:
    """variables: (label shown in the reason, variable name, value)."""
    found = set()
    count = 0
    for label, name, value in variables:
        count += 1
        for kind in scan_variable(name, value or ""):
            found.add((label, kind))
    if found:
        return Finding(resource, Status.FAIL, f"literal secrets in {_describe(found)}")
    return Finding(resource, Status.PASS, f"{count} {judged}, no literal secret")


REMEDIATION_REFERENCE = (
    "Move the value to AWS Secrets Manager (or an SSM SecureString parameter), rotate the "
    "exposed credential since it has been readable by anyone with describe access, and "
    "reference it instead: "
)


@probe(
    key="secrets.lambda_environment",
    section=SECTION,
    item=ITEM,
    title="No Lambda function holds a literal secret in its environment variables",
    actions=("lambda:ListFunctions",),
    scope=Scope.REGIONAL,
    severity=Severity.CRITICAL,
    remediation=REMEDIATION_REFERENCE
    + "have the function read it at start with secretsmanager:GetSecretValue (or the "
    "AWS Parameters and Secrets Lambda Extension) and put only the secret's ARN in the "
    "environment (Lambda console > Configuration > Environment variables; "
    "`aws lambda update-function-configuration --environment`).",
)
def lambda_environment(context: ProbeContext) -> ProbeResult:
    findings = []
    for function in context.paginate("lambda", "list_functions", "Functions"):
        environment = function.get("Environment") or {}
        arn = function["FunctionArn"]
        if environment.get("Error"):
            # Variables encrypted with a customer key the caller cannot decrypt come back as
            # an error instead of values: unknown, not clean.
            code = environment["Error"].get("ErrorCode", "error")
            findings.append(Finding(arn, Status.WARN, f"environment not readable ({code})"))
            continue
        variables = (environment.get("Variables") or {}).items()
        findings.append(_env_finding(arn, ((f"env {n}", n, v) for n, v in variables), "variables"))
    return verdict(
        findings,
        passed="{total} Lambda functions checked; no literal secret in their environment",
        failed="{failed} of {total} Lambda functions hold literal secrets in their environment",
        warned="{warned} of {total} Lambda functions have an environment the probe cannot read",
        empty="No Lambda functions in this region",
        facts={"functions": len(findings)},
    )


def _user_data_text(encoded: str) -> str:
    try:
        raw = base64.b64decode(encoded)
    except (binascii.Error, ValueError):
        return encoded
    # cloud-init accepts gzip-compressed user data (it has to fit in 16 KB).
    if raw[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError, zlib.error):
            raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


@probe(
    key="secrets.ec2_user_data",
    section=SECTION,
    item=ITEM,
    title="No EC2 instance has a literal secret in its user data",
    actions=("ec2:DescribeInstances", "ec2:DescribeInstanceAttribute"),
    scope=Scope.REGIONAL,
    severity=Severity.CRITICAL,
    remediation=REMEDIATION_REFERENCE
    + "fetch it at boot with `aws secretsmanager get-secret-value` using the instance "
    "profile's role, and replace the user data (stop the instance, then Actions > "
    "Instance settings > Edit user data; in IaC the UserData of the instance or launch "
    "template). User data is readable from the instance metadata service by any process.",
)
def ec2_user_data(context: ProbeContext) -> ProbeResult:
    ec2 = context.client("ec2")
    findings = []
    for reservation in context.paginate(
        "ec2",
        "describe_instances",
        "Reservations",
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}],
    ):
        for instance in reservation["Instances"]:
            instance_id = instance["InstanceId"]
            attribute = ec2.describe_instance_attribute(
                InstanceId=instance_id, Attribute="userData"
            )
            encoded = (attribute.get("UserData") or {}).get("Value") or ""
            if not encoded:
                findings.append(Finding(instance_id, Status.PASS, "no user data"))
                continue
            found = scan_text(_user_data_text(encoded))
            if found:
                reason = f"literal secrets in user data: {_describe(found)}"
                findings.append(Finding(instance_id, Status.FAIL, reason))
            else:
                findings.append(
                    Finding(instance_id, Status.PASS, "user data has no literal secret")
                )
    return verdict(
        findings,
        passed="{total} EC2 instances checked; no literal secret in user data",
        failed="{failed} of {total} EC2 instances have literal secrets in their user data",
        empty="No pending, running or stopped EC2 instances in this region",
        facts={"instances": len(findings)},
    )


@probe(
    key="secrets.ecs_task_environment",
    section=SECTION,
    item=ITEM,
    title="No active ECS task definition puts a literal secret in a container's environment",
    actions=("ecs:ListTaskDefinitionFamilies", "ecs:DescribeTaskDefinition"),
    scope=Scope.REGIONAL,
    severity=Severity.CRITICAL,
    remediation=REMEDIATION_REFERENCE
    + "in the container definition move the variable from `environment` to `secrets` with "
    "`valueFrom` set to the secret's or parameter's ARN (the task execution role needs "
    "secretsmanager:GetSecretValue or ssm:GetParameters), then register a new revision and "
    "deregister the old ones, which stay readable.",
)
def ecs_task_environment(context: ProbeContext) -> ProbeResult:
    ecs = context.client("ecs")
    findings = []
    for family in context.paginate(
        "ecs", "list_task_definition_families", "families", status="ACTIVE"
    ):
        # A family name alone resolves to its latest ACTIVE revision: the one services and
        # new tasks use.
        definition = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
        variables = [
            (f"container {container['name']} env {env['name']}", env["name"], env.get("value"))
            for container in definition.get("containerDefinitions", [])
            for env in container.get("environment", [])
        ]
        findings.append(
            _env_finding(definition["taskDefinitionArn"], variables, "environment variables")
        )
    return verdict(
        findings,
        passed="{total} active task definition families checked; no literal secret",
        failed="{failed} of {total} task definitions hold literal secrets in container "
        "environments",
        empty="No active ECS task definition families in this region",
        facts={"task_definitions": len(findings), "revision": "latest ACTIVE per family"},
    )


@probe(
    key="secrets.rotation",
    section=SECTION,
    item=ITEM,
    title="Every Secrets Manager secret has automatic rotation enabled",
    actions=("secretsmanager:ListSecrets",),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Turn on rotation for each secret (Secrets Manager console > secret > Rotation > Edit "
        "rotation; `aws secretsmanager rotate-secret --rotation-rules "
        "AutomaticallyAfterDays=30`; CloudFormation AWS::SecretsManager::RotationSchedule) with "
        "an AWS-provided rotation function for RDS/Redshift/DocumentDB or your own Lambda "
        "for other credentials. For RDS master passwords, ManageMasterUserPassword rotates "
        "for you."
    ),
)
def rotation(context: ProbeContext) -> ProbeResult:
    findings = []
    for secret in context.paginate("secretsmanager", "list_secrets", "SecretList"):
        if secret.get("RotationEnabled"):
            days = (secret.get("RotationRules") or {}).get("AutomaticallyAfterDays")
            every = f" every {days} days" if days else ""
            findings.append(Finding(secret["ARN"], Status.PASS, f"rotation enabled{every}"))
        else:
            findings.append(Finding(secret["ARN"], Status.FAIL, "rotation not enabled"))
    return verdict(
        findings,
        passed="All {total} secrets have rotation enabled",
        failed="{failed} of {total} secrets have no automatic rotation",
        empty="No Secrets Manager secrets in this region",
        facts={"secrets": len(findings)},
    )


@probe(
    key="secrets.ssm_secure_string",
    section=SECTION,
    item=ITEM,
    title="SSM parameters whose name looks secret are SecureString",
    actions=("ssm:DescribeParameters",),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Recreate each parameter as a SecureString (`aws ssm put-parameter --type "
        "SecureString --overwrite` cannot change the type: delete and put it again, or write "
        "a new name) encrypted with a KMS key, and give readers kms:Decrypt; or move it to "
        "Secrets Manager. String parameters are readable in clear by anyone with "
        "ssm:GetParameter."
    ),
)
def ssm_secure_string(context: ProbeContext) -> ProbeResult:
    findings = []
    read = 0
    for parameter in context.paginate("ssm", "describe_parameters", "Parameters"):
        read += 1
        name = parameter["Name"]
        if not name_looks_secret(name):
            continue
        kind = parameter.get("Type", "String")
        if kind == "SecureString":
            findings.append(Finding(name, Status.PASS, "SecureString"))
        else:
            findings.append(
                Finding(name, Status.FAIL, f"name looks secret but type is {kind}, not encrypted")
            )
    return verdict(
        findings,
        passed="All {total} secret-looking SSM parameters are SecureString",
        failed="{failed} of {total} secret-looking SSM parameters are stored unencrypted",
        empty="No SSM parameter in this region has a secret-looking name "
        "(password, secret, token, api key, private key...)",
        facts={"parameters_read": read, "secret_looking": len(findings)},
    )
