"""Every address under /api and every method answers JSON: a 404 for an address the API does
not have, a 405 naming the allowed methods for one it has, with or without a token, and
without a CSRF cookie (a pipeline has none), never Django's HTML 404, CSRF or login page."""

import pytest
from django.test import Client

from readiness.api import tokens
from readiness.api.endpoints import api

METHODS = ("get", "post", "put", "patch", "delete")
UNKNOWN = (
    "/api",
    "/api/",
    "/api/v1",
    "/api/v1/",
    "/api/v2/deployments",
    "/api/v1/nope",
    "/api/v1/deployments/",
    "/api/v1/deployments/{pk}/",
    "/api/v1/deployments/{pk}/gate/",
    "/api/v1/deployments/{pk}/nope",
    "/api/v1/deployments/abc",
    "/api/v1/deployments/{pk}/probe-runs/abc",
    "/api/v1/openapi.json/x",
)
# What the schema does not list: the schema itself and its docs page, read-only.
NOT_IN_SCHEMA = {"/api/v1/openapi.json": {"GET", "HEAD"}, "/api/v1/docs": {"GET", "HEAD"}}


def known_addresses() -> dict[str, set[str]]:
    """{path template: its methods} from the schema the API serves, so a new operation is
    covered without a new line here."""
    paths = api.get_openapi_schema()["paths"]
    found = {path: {method.upper() for method in operations} for path, operations in paths.items()}
    return {**found, **NOT_IN_SCHEMA}


@pytest.fixture(params=["anonymous", "token"])
def pipeline(request, member, team):
    """A client with no CSRF cookie, as a pipeline's curl, with or without a write token."""
    client = Client(enforce_csrf_checks=True)
    headers = {}
    if request.param == "token":
        raw = tokens.token_create(user=member, name="pipeline", scope="write")[1]
        headers = {"Authorization": f"Bearer {raw}"}
    return client, headers


def send(pipeline, method: str, path: str):
    client, headers = pipeline
    if method == "get":
        return client.get(path, headers=headers)
    return client.generic(
        method.upper(), path, data="{}", content_type="application/json", headers=headers
    )


@pytest.mark.django_db
@pytest.mark.parametrize("path", UNKNOWN)
def test_every_method_on_an_unknown_api_address_is_a_json_404(pipeline, deployment, path):
    for method in METHODS:
        response = send(pipeline, method, path.format(pk=deployment.pk))
        assert response.status_code == 404, (method, path, response.status_code)
        assert response["Content-Type"] == "application/json", (method, path)
        assert response.json()["detail"].startswith("No such API endpoint"), (method, path)


@pytest.mark.django_db
def test_a_wrong_method_on_every_api_address_is_a_json_405_naming_the_allowed_ones(
    pipeline, deployment
):
    checked = 0
    for template, allowed in known_addresses().items():
        path = template.format(deployment_id=deployment.pk, run_id=1)
        for method in METHODS:
            if method.upper() in allowed:
                continue
            response = send(pipeline, method, path)
            assert response.status_code == 405, (method, path, response.status_code)
            assert response["Content-Type"] == "application/json", (method, path)
            # django-ninja lists the methods in no fixed order.
            named = set(response["Allow"].split(", "))
            assert named == allowed, (method, path, named)
            assert response.json()["detail"].startswith(f"{method.upper()} is not allowed here")
            checked += 1
    assert checked >= 30  # every path of the schema, not an empty loop


def test_the_schema_lists_the_addresses_a_pipeline_uses():
    assert {"/api/v1/deployments", "/api/v1/deployments/{deployment_id}/gate"} <= set(
        known_addresses()
    )
