import os
import subprocess
import urllib.request

import boto3
import pytest
from django.conf import settings as django_settings
from django.db import connections

from readiness.audit.append_only import allow_flush_sql
from tests.factories import TeamFactory, UserFactory, make_deployment

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REGION = "us-east-1"


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


def _flushes_the_database(item) -> bool:
    marker = item.get_closest_marker("django_db")
    fixtures = getattr(item, "fixturenames", ())
    return bool(
        (marker and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")))
        or "transactional_db" in fixtures
        or "live_server" in fixtures
    )


def _reads_seeded_rows(item) -> bool:
    return bool(item.get_closest_marker("django_db")) or "db" in getattr(item, "fixturenames", ())


def pytest_collection_finish(session):
    """A transactional test empties the database when it ends, the roles and template the
    migrations seeded included; a test in a rolled-back transaction that runs after it finds
    them gone (CI once lost 364 tests that way). pytest-django orders the former after the
    latter, and another plugin's reordering can undo that: refuse such an order outright."""
    flushed_by = None
    for item in session.items:
        if _flushes_the_database(item):
            flushed_by = flushed_by or item
        elif flushed_by is not None and _reads_seeded_rows(item):
            raise pytest.UsageError(
                f"{item.nodeid} would run after {flushed_by.nodeid}, which flushes the database; "
                "a plugin reordered the tests (a parameter named like a fixture, such as `page`?)"
            )


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test databases, marked as ones whose append-only tables may be flushed between
    tests (TRUNCATE on PostgreSQL, DELETE on SQLite); a real database never is."""
    with django_db_blocker.unblock():
        for connection in connections.all():
            statements = allow_flush_sql(connection.vendor, connection.settings_dict["NAME"])
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
            # A database setting reaches new sessions only.
            connection.close()


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The manifest storage needs collectstatic; tests serve static files from the finders.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness is for attackers; tests create and check many passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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


# A real moto server over HTTP for the whole session; each test starts on an empty account.


@pytest.fixture(scope="session")
def moto_server():
    """The AWS emulator the demo runs (readiness.emulator), on a free port."""
    from readiness.dev.demo_aws import free_port, start_moto_server

    port = free_port()
    try:
        process = start_moto_server(port)
    except RuntimeError as exc:
        pytest.fail(f"{exc} (pip install 'moto[server]')")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        # A busy machine can take longer to stop it than the tests took to use it: that says
        # nothing about them, and the process must not outlive the session.
        process.kill()
        process.wait()


@pytest.fixture
def aws(moto_server, monkeypatch):
    """Ambient AWS settings pointing every boto3 client at a freshly reset moto server."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10)
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return boto3.Session(region_name=REGION)
