"""Probe tests: `aws` (root conftest) gives an empty moto account; contexts are built here.

Every probe test also records the AWS calls the probes made and fails if one of them is not
covered by the actions its probe declares: the published least-privilege policy is built
from those declarations, so a missing one would be an AccessDenied in a customer account.
"""

import pytest

from readiness.probes.base import (
    CallRecorder,
    ProbeContext,
    ProbeSettings,
    action_of,
    record_calls,
    registry,
)
from tests.conftest import REGION


@pytest.fixture
def make_context(aws):
    """ProbeContext factory: one attempt per call so moto's 500s do not retry for seconds."""

    def make(region: str = REGION, **settings) -> ProbeContext:
        return ProbeContext(
            session=aws, region=region, settings=ProbeSettings(**settings), max_attempts=1
        )

    return make


def undeclared(recorder: CallRecorder) -> list[str]:
    """Calls made by a probe whose IAM action the probe does not declare."""
    probes = registry()
    missing = []
    for key, service, operation in sorted(recorder.calls):
        if key not in probes:  # a probe made up by a test of the framework itself
            continue
        action = action_of((service, operation))
        if action not in probes[key].actions:
            missing.append(f"{key} calls {service}.{operation} but does not declare {action}")
    return missing


@pytest.fixture(autouse=True)
def declared_actions_cover_calls():
    recorder = CallRecorder()
    record_calls(recorder)
    try:
        yield recorder
    finally:
        record_calls(None)
    assert not undeclared(recorder), "\n".join(undeclared(recorder))
