import gzip
import io
import json
import zipfile

import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry
from readiness.probes.security.secrets_management import name_looks_secret, scan_text, scan_variable

# Secret-shaped test values, assembled so that the source file itself holds no scanner bait.
ACCESS_KEY_ID = "AKIA" + "Q3EGRZ7XAMPLEKEY"
PRIVATE_KEY = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"
PASSWORD_VALUE = "hunter2-" + "not-a-real-one"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def run(key, context):
    return execute(registry()[key], context).result


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _function(aws, name: str, variables: dict) -> str:
    role = aws.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=TRUST)
    return aws.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        Environment={"Variables": variables},
    )["FunctionArn"]


def _no_value_leaks(result, *values):
    text = json.dumps(result.as_json())
    for value in values:
        assert value not in text


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("stripeApiKey", True),
        ("API_KEY", True),
        ("JWT_SECRET", True),
        ("GITHUB_TOKEN", True),
        ("spring.datasource.password", True),
        ("DB_PASSWORD_ARN", False),
        ("TOKEN_TTL", False),
        ("AWS_ACCESS_KEY_ID", False),
        ("LOG_LEVEL", False),
        ("PGPASSWORD", True),
        ("TOKENIZER_MODEL", False),
        ("/prod/db/password", True),
    ],
)
def test_name_heuristic_flags_secret_names_but_not_references_to_them(name, secret):
    assert name_looks_secret(name) is secret


def test_scanner_accepts_references_and_rejects_literals():
    assert scan_variable("DB_PASSWORD", SECRET_ARN) == set()
    assert scan_variable("DB_PASSWORD", "{{resolve:secretsmanager:db:SecretString:pw}}") == set()
    assert scan_variable("DB_PASSWORD", "${DB_PASSWORD}") == set()
    assert scan_variable("DB_PASSWORD", PASSWORD_VALUE)
    assert scan_variable("DATABASE_URL", f"postgres://app:{PASSWORD_VALUE}@db:5432/app")
    assert scan_variable("DATABASE_URL", "postgres://app:${PW}@db:5432/app") == set()
    found = scan_text(f'export TOKEN="{PASSWORD_VALUE}"\nif [ "$TOKEN" == "" ]; then exit; fi')
    assert found == {("TOKEN", "secret-looking name with a literal value")}


def test_lambda_environment_passes_with_references_only(aws, make_context):
    _function(aws, "api", {"DB_SECRET_ARN": SECRET_ARN, "LOG_LEVEL": "info", "DEBUG": "false"})
    result = run("secrets.lambda_environment", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["functions"] == 1


def test_lambda_environment_fails_naming_variables_and_kinds_but_never_values(aws, make_context):
    clean = _function(aws, "clean", {"DB_PASSWORD": SECRET_ARN})
    leaky = _function(
        aws,
        "leaky",
        {"DB_PASSWORD": PASSWORD_VALUE, "AWS_KEY": ACCESS_KEY_ID, "LOG_LEVEL": "info"},
    )
    result = run("secrets.lambda_environment", make_context())
    assert result.status == Status.FAIL
    by_arn = {f.resource: f for f in result.findings}
    assert by_arn[clean].status == Status.PASS
    assert by_arn[leaky].status == Status.FAIL
    assert "env DB_PASSWORD: secret-looking name" in by_arn[leaky].reason
    assert "env AWS_KEY: AWS access key id" in by_arn[leaky].reason
    _no_value_leaks(result, PASSWORD_VALUE, ACCESS_KEY_ID)


def _instance(aws, user_data: str | bytes | None) -> str:
    kwargs = {"UserData": user_data} if user_data is not None else {}
    return aws.client("ec2").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, **kwargs
    )["Instances"][0]["InstanceId"]


def test_ec2_user_data_passes_when_secrets_are_fetched_at_boot(aws, make_context):
    _instance(
        aws,
        "#!/bin/bash\nDB_PASSWORD=$(aws secretsmanager get-secret-value --secret-id db "
        "--query SecretString --output text)\nexport DB_PASSWORD\n",
    )
    _instance(aws, None)
    result = run("secrets.ec2_user_data", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["instances"] == 2


def test_ec2_user_data_fails_on_keys_and_passwords_even_gzipped(aws, make_context):
    plain = _instance(aws, f"#!/bin/bash\necho '{PRIVATE_KEY}' > /root/.ssh/id_rsa\n")
    # boto3 base64-encodes UserData itself; gzip is what cloud-init accepts to save space.
    zipped = _instance(
        aws, gzip.compress(f"#cloud-config\nmysql:\n  password: {PASSWORD_VALUE}\n".encode())
    )
    result = run("secrets.ec2_user_data", make_context())
    assert result.status == Status.FAIL
    by_id = {f.resource: f for f in result.findings}
    assert by_id[plain].status == Status.FAIL
    assert "private key block" in by_id[plain].reason
    assert by_id[zipped].status == Status.FAIL
    assert "password: secret-looking name with a literal value" in by_id[zipped].reason
    _no_value_leaks(result, PASSWORD_VALUE, "MIIEow")


def _task_definition(aws, family: str, environment: list, secrets: list | None = None) -> str:
    container = {"name": "app", "image": "nginx", "memory": 128, "environment": environment}
    if secrets:
        container["secrets"] = secrets
    return aws.client("ecs").register_task_definition(
        family=family, containerDefinitions=[container]
    )["taskDefinition"]["taskDefinitionArn"]


def test_ecs_task_environment_passes_with_secrets_value_from(aws, make_context):
    _task_definition(
        aws,
        "web",
        [{"name": "PORT", "value": "8080"}],
        secrets=[{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}],
    )
    result = run("secrets.ecs_task_environment", make_context())
    assert result.status == Status.PASS, result


def test_ecs_task_environment_judges_only_the_latest_revision(aws, make_context):
    _task_definition(aws, "web", [{"name": "API_TOKEN", "value": PASSWORD_VALUE}])
    _task_definition(aws, "web", [{"name": "API_TOKEN_PARAM", "value": "/prod/api/token"}])
    leaky = _task_definition(aws, "worker", [{"name": "STRIPE_API_KEY", "value": PASSWORD_VALUE}])
    result = run("secrets.ecs_task_environment", make_context())
    assert result.status == Status.FAIL
    failing = {f.resource: f.reason for f in result.findings if f.status == Status.FAIL}
    assert list(failing) == [leaky]
    assert "container app env STRIPE_API_KEY" in failing[leaky]
    assert result.facts["task_definitions"] == 2
    _no_value_leaks(result, PASSWORD_VALUE)


def test_rotation_passes_when_every_secret_rotates(aws, make_context):
    client = aws.client("secretsmanager")
    arn = client.create_secret(Name="db", SecretString="x")["ARN"]
    function = _function(aws, "rotator", {})
    client.rotate_secret(
        SecretId=arn,
        RotationLambdaARN=function,
        RotationRules={"AutomaticallyAfterDays": 30},
    )
    result = run("secrets.rotation", make_context())
    assert result.status == Status.PASS, result


def test_rotation_fails_for_secrets_without_rotation(aws, make_context):
    arn = aws.client("secretsmanager").create_secret(Name="stripe", SecretString="x")["ARN"]
    result = run("secrets.rotation", make_context())
    assert result.status == Status.FAIL
    assert [f.resource for f in result.findings if f.status == Status.FAIL] == [arn]


def test_ssm_secure_string_passes_for_encrypted_secret_parameters(aws, make_context):
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/prod/db/password", Value="x", Type="SecureString")
    ssm.put_parameter(Name="/prod/db/host", Value="db.internal", Type="String")
    result = run("secrets.ssm_secure_string", make_context())
    assert result.status == Status.PASS, result
    assert result.facts == {"parameters_read": 2, "secret_looking": 1}


def test_ssm_secure_string_fails_for_plain_string_secrets(aws, make_context):
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/prod/api/token", Value="x", Type="String")
    ssm.put_parameter(Name="/prod/db/password", Value="x", Type="SecureString")
    result = run("secrets.ssm_secure_string", make_context())
    assert result.status == Status.FAIL
    assert [f.resource for f in result.findings if f.status == Status.FAIL] == ["/prod/api/token"]


def test_nothing_to_judge_is_not_applicable(aws, make_context):
    for key in ("secrets.lambda_environment", "secrets.rotation", "secrets.ssm_secure_string"):
        assert run(key, make_context()).status == Status.NOT_APPLICABLE


def test_access_denied_is_an_error_not_a_pass(aws, make_context):
    context = make_context()
    client = context.client("lambda")
    with Stubber(client) as stubber:
        stubber.add_client_error("list_functions", service_error_code="AccessDeniedException")
        result = run("secrets.lambda_environment", context)
    assert result.status == Status.ERROR
    assert result.summary.startswith("Access denied: the probe needs lambda:ListFunctions")
