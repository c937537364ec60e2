"""schemathesis against the schema the API serves (/api/v1/openapi.json), in-process over WSGI.

Every operation gets the schema's examples, schemathesis's coverage cases (boundaries, wrong
types, missing fields) and a bounded number of generated requests, valid and invalid, with a
write token of a member whose team has a deployment with items, a probe run and evidence.
Each answer must be no 5xx and match the schema: a documented status code, its content type
and its body schema. The seed is fixed and generation deterministic, so a failure found in CI
is found again on a laptop.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from readiness.api import tokens
from readiness.evidence.services import Upload, evidence_upload
from readiness.probe_runs.models import ProbeRunTrigger
from readiness.probe_runs.services import probe_run_start
from readiness.project.wsgi import application
from tests.factories import set_aws_target
from tests.readiness.api import samples

# 30 generated requests per operation and phase (examples and coverage cases come on top):
# about a minute for the whole API on this machine.
MAX_EXAMPLES = 30
SEED = 20261214

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            # A method the schema does not list is a 405 naming the ones it does.
            "unsupported_method": {"enabled": True},
            "allow_header_conformance": {"enabled": True},
        },
    }
)


@pytest.fixture
def world(member, team, deployment):
    """What the token's user can see: a deployment with items, a probe run and evidence."""
    token, raw = tokens.token_create(user=member, name="schemathesis", scope="write")
    set_aws_target(deployment, user=member, regions=["eu-west-1"])
    run, _ = probe_run_start(deployment=deployment, user=member, trigger=ProbeRunTrigger.API)
    evidence_upload(
        deployment=deployment,
        user=member,
        kind="cobertura",
        upload=Upload(filename="coverage.xml", data=samples.cobertura(9, 10)),
        token=token,
    )
    return {"raw": raw, "deployment_id": deployment.pk, "run_id": run.pk}


@pytest.fixture
def served_in_process(world):
    """The WSGI handler closes the connection at each request's start and end when it is in a
    transaction, as the test's is: Django's test client unhooks that the same way, and hooks it
    again after each request it makes (so this comes after the world is built)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield world
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# The schema as served, loaded at collection, where pytest-django allows no database access.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application, config=CONFIG)


@schema.parametrize()
# The world is built once per operation and shared by its examples, on purpose: it only grows.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_answer_is_documented_and_no_server_error(case, served_in_process):
    world = served_in_process
    headers = {"Authorization": f"Bearer {world['raw']}"}
    case.call_and_validate(headers=headers)
    # Generated ids mostly name nothing (a 404), and cases are made before the world exists:
    # the same request again on the world's deployment and run reaches the code behind them.
    generated = case.path_parameters or {}
    known = {key: world[key] for key in generated if key in world}
    if known and any(generated[key] != value for key, value in known.items()):
        case.path_parameters = {**generated, **known}
        case.call_and_validate(headers=headers)
