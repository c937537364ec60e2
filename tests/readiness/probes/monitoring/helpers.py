"""What the tests of the Monitoring & Observability probes share."""

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
