"""Random and mutated input at every endpoint: the API answers 4xx, never 5xx."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.readiness.api import samples

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
VALID = [
    samples.cobertura(85, 100),
    samples.junit(1),
    samples.trivy("HIGH", "LOW"),
    samples.gitleaks(2),
]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["cut", "flip", "insert"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "cut":
            del data[at:]
        elif action == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=20))
    return bytes(data)


def no_server_error(response):
    assert response.status_code < 500, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]


@pytest.mark.django_db
@FUZZ
@given(
    path=st.sampled_from(["", "/checklist", "/gate", "/evidence", "/probe-runs/1"]),
    target=st.one_of(st.just("mine"), st.integers(-5, 10**12).map(str), st.text(max_size=8)),
    params=st.dictionaries(
        st.sampled_from(["service", "environment", "state", "page", "page_size", "x"]),
        st.text(max_size=20),
        max_size=4,
    ),
)
def test_random_reads(api, deployment, path, target, params):
    deployment_id = deployment.pk if target == "mine" else target
    no_server_error(api.get(f"/api/v1/deployments/{deployment_id}{path}", **params))
    no_server_error(api.get("/api/v1/deployments", **params))


@pytest.mark.django_db
@FUZZ
@given(
    body=JSON,
    fields=st.fixed_dictionaries(
        {},
        optional={
            "service": st.text(max_size=120) | JSON,
            "environment": st.text(max_size=60) | JSON,
            "version": st.text(max_size=120) | JSON,
            "planned_date": st.text(max_size=12) | JSON,
            "team": st.text(max_size=12) | JSON,
            "template_id": st.integers() | JSON,
        },
    ),
)
def test_random_deployment_bodies(api, body, fields):
    no_server_error(api.post("/api/v1/deployments", json=body))
    no_server_error(api.post("/api/v1/deployments", json=fields))


@pytest.mark.django_db
@FUZZ
@given(
    kind=st.sampled_from(["cobertura", "junit", "trivy", "gitleaks"]) | st.text(max_size=12),
    data=st.binary(max_size=400) | mutated(),
    item=st.none() | st.sampled_from(["E2E Tests", "Unit Tests"]) | st.text(max_size=20),
)
def test_random_evidence(api, deployment, kind, data, item):
    form = {"kind": kind, "file": SimpleUploadedFile("upload", data)}
    if item is not None:
        form["item"] = item
    no_server_error(api.post(f"/api/v1/deployments/{deployment.pk}/evidence", data=form))


@pytest.mark.django_db
@FUZZ
@given(body=JSON)
def test_random_probe_run_requests(api, deployment, body):
    no_server_error(api.post(f"/api/v1/deployments/{deployment.pk}/probe-runs", json=body))
