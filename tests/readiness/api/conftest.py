"""API tests: tokens for a team member and an outsider, and a client that sends them."""

import pytest
from django.test import Client

from readiness.api import tokens


class ApiClient:
    """Django's test client speaking JSON with a bearer token."""

    def __init__(self, raw: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {raw}"} if raw else {}

    def get(self, path: str, **params):
        return self.client.get(path, params, headers=self.headers)

    def post(self, path: str, json: dict | None = None, **kwargs):
        if json is not None:
            return self.client.post(
                path, json, content_type="application/json", headers=self.headers
            )
        return self.client.post(path, headers=self.headers, **kwargs)


@pytest.fixture
def write_token(member, team):
    return tokens.token_create(user=member, name="CI deploy", scope="write")


@pytest.fixture
def api(write_token):
    return ApiClient(write_token[1])


@pytest.fixture
def read_api(member, team):
    return ApiClient(tokens.token_create(user=member, name="CI read", scope="read")[1])


@pytest.fixture
def outsider_api(outsider):
    return ApiClient(tokens.token_create(user=outsider, name="other team", scope="write")[1])


@pytest.fixture
def anonymous_api():
    return ApiClient(None)
