"""What the tests of the Deployment and Operational probes share."""

from readiness.probes.base import execute, registry


def run(key, context):
    return execute(registry()[key], context).result


def found(result) -> dict:
    return {f.resource: f for f in result.findings}
