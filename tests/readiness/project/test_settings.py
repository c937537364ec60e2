"""The settings module as a fresh process sees it: production values, bad values, no values.

Each test runs manage.py in a subprocess with an environment built from nothing, so the
caller's DATABASE_URL, REDIS_URL, CI... cannot change the outcome.
"""

import json
import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _no_dotenv_in_checkout():
    # settings.py loads ROOT/.env for any variable the process lacks: these tests would then
    # check that file instead of the values they set.
    if (ROOT / ".env").exists():
        pytest.fail(
            f"{ROOT / '.env'} exists and settings.py reads it into every process; move it "
            "away to run these tests (they control the whole environment themselves)"
        )


def _environment(data_dir: Path, **variables: str) -> dict[str, str]:
    """DATA_DIR and the given variables only (PATH and HOME are no settings of the app)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data_dir.parent),
        "DATA_DIR": str(data_dir),
        **variables,
    }


def _manage(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


SNAPSHOT = """
import json
from django.conf import settings
database = settings.DATABASES["default"]
print(json.dumps({
    "SECRET_KEY": settings.SECRET_KEY,
    "DEBUG": settings.DEBUG,
    "DATA_DIR": str(settings.DATA_DIR),
    "DATABASE_ENGINE": database["ENGINE"],
    "DATABASE_NAME": str(database["NAME"]),
    "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
}))
"""


def _settings_snapshot(env: dict[str, str]) -> dict:
    result = _manage(env, "shell", "-c", SNAPSHOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _env_example_values() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line):
            values[match.group(1)] = match.group(2)
    return values


def _database_url(tmp_path: Path) -> str:
    # CI's PostgreSQL when the caller has one (the deploy check then loads psycopg too).
    return os.environ.get("DATABASE_URL") or f"sqlite:///{tmp_path / 'readiness.sqlite3'}"


def test_production_settings_pass_the_deploy_check(tmp_path):
    data_dir = tmp_path / "data"
    env = _environment(
        data_dir,
        DEBUG="false",
        HTTPS="true",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="readiness.example.com",
        CSRF_TRUSTED_ORIGINS="https://readiness.example.com",
        SECURE_HSTS_PRELOAD="true",
        DATABASE_URL=_database_url(tmp_path),
    )
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    # An explicit SECRET_KEY wins: no key file is generated beside it.
    assert not (data_dir / "secret_key").exists()


def test_env_example_values_pass_the_deploy_check(tmp_path):
    """The README's promise: the documented production values leave `check --deploy` silent."""
    data_dir = tmp_path / "data"
    env = _environment(
        data_dir,
        **{
            **_env_example_values(),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": _database_url(tmp_path),
        },
    )
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "nonsense://x"),
        ("DASHBOARD_PAGE_SIZE", "abc"),
        ("PROBE_SETTINGS", "[1]"),
        ("PROBE_AWS_RATES", '["20/second"]'),
        ("PROBE_AWS_RATES", '{"ec2": "fast"}'),
        ("PROBE_CHECK_TIMEOUT", "5"),  # shorter than one AWS request may take
        ("AUDIT_CHECKPOINT_INTERVAL", "1"),
        ("SESSION_IDLE_TIMEOUT", "ten minutes"),
        ("SESSION_ABSOLUTE_TIMEOUT", "60"),  # shorter than the idle limit
        ("SIGNING_CONTINUOUS_SESSION_IDLE", "-1"),
        ("AXES_FAILURE_LIMIT", "0"),
        ("AXES_LOCKOUT_PARAMETERS", "cookie"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, name, value):
    result = _manage(_environment(tmp_path / "data", **{name: value}), "check")
    assert result.returncode != 0
    # The last line of the traceback is what an operator reads first.
    assert name in result.stderr.strip().splitlines()[-1], result.stderr


def test_redis_gives_a_dead_workers_messages_back_within_a_third_of_the_run_timeout(tmp_path):
    show = (
        "import json; from django.conf import settings; "
        "print(json.dumps(getattr(settings, 'CELERY_BROKER_TRANSPORT_OPTIONS', None)))"
    )
    redis = _environment(
        tmp_path / "data", REDIS_URL="redis://127.0.0.1:6379/0", PROBE_RUN_TIMEOUT="600"
    )
    result = _manage(redis, "shell", "-c", show)
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout.strip().splitlines()[-1])
    assert options["visibility_timeout"] == 200
    # The embedded broker has no such option: kombu would hand it to SQLAlchemy's engine.
    result = _manage(_environment(tmp_path / "data"), "shell", "-c", show)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "null"


def test_an_unusable_data_dir_stops_start_up_naming_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _manage(_environment(blocker / "data"), "check")
    assert result.returncode != 0
    assert "DATA_DIR" in result.stderr.strip().splitlines()[-1], result.stderr


def test_without_environment_everything_lives_in_data_dir(tmp_path):
    data_dir = (tmp_path / "data").resolve()
    env = _environment(data_dir)
    assert set(env) == {"PATH", "HOME", "DATA_DIR"}

    first = _settings_snapshot(env)

    key_file = data_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first["SECRET_KEY"]) >= 50
    assert first["DEBUG"] is False
    assert first["DATA_DIR"] == str(data_dir)
    # SQLite through django-prometheus's wrapper, which counts queries for /metrics.
    assert first["DATABASE_ENGINE"] == "django_prometheus.db.backends.sqlite3"
    assert first["DATABASE_NAME"] == str(data_dir / "readiness.sqlite3")
    assert first["CELERY_BROKER_URL"] == f"sqla+sqlite:///{data_dir / 'celery-broker.sqlite3'}"
    assert first["CELERY_RESULT_BACKEND"] == f"db+sqlite:///{data_dir / 'celery-results.sqlite3'}"
    assert first["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1"]

    second = _settings_snapshot(env)
    assert second["SECRET_KEY"] == first["SECRET_KEY"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_commands_do_not_print_pyhankos_dsa_deprecation_warning(tmp_path):
    # Every command and process imports pyHanko, which imports cryptography's DSA key type.
    done = _manage(_environment(tmp_path / "data"), "check")
    assert done.returncode == 0, done.stderr
    assert "DSA is deprecated" not in done.stderr + done.stdout
    assert "Warning" not in done.stderr


def test_dates_django_formats_by_default_read_as_24_hour_utc():
    """The admin and any bare {{ datetime }}: not en's "Dec. 5, 2026, 11:24 p.m."."""
    from datetime import UTC, datetime

    from django.template import Context, Template

    moment = datetime(2026, 12, 5, 23, 4, 5, tzinfo=UTC)
    shown = Template("{{ moment }}|{{ moment|date }}|{{ moment|time }}").render(
        Context({"moment": moment})
    )
    assert shown == "2026-12-05 23:04:05 UTC|2026-12-05|23:04"
