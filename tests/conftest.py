import os

import pytest
from django.conf import settings as django_settings

from tests.factories import TeamFactory, UserFactory, make_deployment

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_configure(config):
    # CI proves the app on the production stack: refuse to run there on the embedded one.
    if IN_CI:
        engine = django_settings.DATABASES["default"]["ENGINE"]
        broker = django_settings.CELERY_BROKER_URL
        if "postgresql" not in engine or not broker.startswith("redis"):
            raise pytest.UsageError(
                f"CI=true needs DATABASE_URL on PostgreSQL and REDIS_URL on Redis; got {engine} "
                f"and {broker.split('://')[0]}. Run the tests through .ci/run."
            )


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The manifest storage needs collectstatic; tests serve static files from the finders.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def member(db):
    return UserFactory(username="lee", first_name="Lee", last_name="Tran")


@pytest.fixture
def team(member):
    return TeamFactory(name="Payments", slug="payments", members=[member])


@pytest.fixture
def outsider(db):
    """Logged in, but in another team."""
    user = UserFactory(username="olga")
    TeamFactory(name="Search", slug="search", members=[user])
    return user


@pytest.fixture
def deployment(member, team):
    return make_deployment(user=member, team=team)


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def outsider_client(client, outsider):
    client.force_login(outsider)
    return client
