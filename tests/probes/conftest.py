"""Probe tests: `aws` (root conftest) gives an empty moto account; contexts are built here."""

import pytest

from readiness.probes.base import ProbeContext, ProbeSettings
from tests.conftest import REGION


@pytest.fixture
def make_context(aws):
    """ProbeContext factory: one attempt per call so moto's 500s do not retry for seconds."""

    def make(region: str = REGION, **settings) -> ProbeContext:
        return ProbeContext(
            session=aws, region=region, settings=ProbeSettings(**settings), max_attempts=1
        )

    return make
