"""What the tests of the Cost Optimization probes share."""

from readiness.probes.base import execute, registry

ACCOUNT = "123456789012"  # moto's account


def run(key, context):
    return execute(registry()[key], context).result


def by_id(result) -> dict:
    return {finding.resource: finding for finding in result.findings}
