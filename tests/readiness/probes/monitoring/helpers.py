"""What the tests of the Monitoring & Observability probes share."""

from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry

REGION = "us-east-1"


def run(key, context):
    return execute(registry()[key], context).result


def statuses(result) -> dict[str, Status]:
    return {finding.resource: finding.status for finding in result.findings}


def _without_metadata(response: dict) -> dict:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def _topic(aws, name: str, region: str = REGION) -> str:
    return aws.client("sns", region_name=region).create_topic(Name=name)["TopicArn"]


def assert_access_denied_names_a_declared_action(context, key, service, operation) -> None:
    """AccessDenied on `operation` is an error result naming an action the probe declares."""
    with Stubber(context.client(service)) as stubber:
        stubber.add_client_error(operation, service_error_code="AccessDenied")
        result = run(key, context)
    assert result.status == Status.ERROR
    prefix = "Access denied: the probe needs "
    assert result.summary.startswith(prefix)
    assert result.summary.removeprefix(prefix) in registry()[key].actions
