"""docker-compose.yml, Dockerfile and .env.example: what a deployment relies on, checked offline.

No Docker engine is needed: docker-compose 1.29 validates the compose file without one.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from celery.bin.beat import beat as beat_command

ROOT = Path(__file__).resolve().parents[3]
APP_SERVICES = ("web", "worker", "beat")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _services() -> dict:
    return _compose()["services"]


def _command(service: dict) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(command)


def _healthcheck(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def _settings_variables() -> set[str]:
    source = (ROOT / "readiness" / "project" / "settings.py").read_text()
    return set(re.findall(r"""\benv\.\w+\(\s*["']([A-Z][A-Z0-9_]*)["']""", source))


def _env_example_names() -> set[str]:
    """Every variable .env.example sets or shows commented out (`# NAME=example`)."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {
        match.group(1) for line in lines if (match := re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line))
    }


def _env_example_values() -> dict[str, str]:
    """The variables .env.example actually sets (commented-out lines excluded)."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line):
            values[match.group(1)] = match.group(2)
    return values


def test_compose_defines_the_five_services():
    assert set(_services()) == {"postgres", "redis", "web", "worker", "beat"}


def test_web_runs_the_migrations_then_gunicorn_on_all_interfaces():
    command = _command(_services()["web"])
    assert "manage.py migrate --noinput" in command
    assert "gunicorn readiness.project.wsgi" in command
    assert "--bind 0.0.0.0:8000" in command
    assert command.index("migrate") < command.index("gunicorn")
    # exec: gunicorn replaces the shell and receives docker's SIGTERM itself.
    assert "exec gunicorn" in command


def test_worker_and_beat_run_celery():
    services = _services()
    assert _command(services["worker"]).startswith("celery -A readiness worker")
    beat = _command(services["beat"])
    assert beat.startswith("celery -A readiness beat")
    assert "--schedule /data/celerybeat-schedule" in beat


def test_workers_can_be_scaled_out():
    # `--scale worker=N` refuses services with a fixed container name or a published port.
    worker = _services()["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_app_services_read_env_file_and_talk_to_the_compose_services():
    services = _services()
    for name in APP_SERVICES:
        service = services[name]
        env_file = service["env_file"]
        assert (env_file if isinstance(env_file, list) else [env_file]) == [".env"], name
        environment = service["environment"]
        assert "@postgres:5432/" in environment["DATABASE_URL"], name
        assert environment["DATABASE_URL"].startswith("postgres://"), name
        assert environment["REDIS_URL"].startswith("redis://redis:6379/"), name
        assert service["restart"] == "unless-stopped", name


def test_app_services_share_the_data_volume():
    compose = _compose()
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert "app-data:/data" in service["volumes"], name
        assert service["environment"]["DATA_DIR"] == "/data", name
    assert {"app-data", "postgres-data", "redis-data"} <= set(compose["volumes"])
    assert "postgres-data:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    assert "redis-data:/data" in compose["services"]["redis"]["volumes"]


def test_every_service_has_a_health_check():
    services = _services()
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert "pg_isready" in _healthcheck(services["postgres"])
    assert "redis-cli ping" in _healthcheck(services["redis"])
    assert "inspect ping" in _healthcheck(services["worker"])
    assert "-d celery@$$HOSTNAME" in _healthcheck(services["worker"])
    assert "inspect ping" in _healthcheck(services["beat"])
    assert "-d celerybeat@$$HOSTNAME" in _healthcheck(services["beat"])


def test_beat_answers_the_ping_of_its_health_check():
    # `celerybeat@host` exists only with remote control, new in Celery 5.7.
    assert "--enable-remote-control" in _command(_services()["beat"])
    options = {option for parameter in beat_command.params for option in parameter.opts}
    assert "--enable-remote-control" in options, "beat's health check needs celery>=5.7"


def test_web_health_check_calls_healthz_over_the_proxy_scheme_without_the_worker_check():
    check = _healthcheck(_services()["web"])
    assert "urllib.request" in check  # python:3.11-slim has no curl
    assert "http://127.0.0.1:8000/healthz?check=database&check=broker" in check
    assert "X-Forwarded-Proto" in check and "https" in check


def test_app_services_wait_for_healthy_dependencies():
    services = _services()
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency in ("postgres", "redis"):
            assert depends_on[dependency] == {"condition": "service_healthy"}, name
    for name in ("worker", "beat"):
        assert services[name]["depends_on"]["web"] == {"condition": "service_healthy"}, name


def _docker_compose_config(directory: Path) -> subprocess.CompletedProcess:
    """`docker-compose config` on a copy of the compose file in `directory`.

    A copy beside its own .env: nothing is written into the checkout, and the caller's own
    DATABASE_URL, POSTGRES_PASSWORD... cannot leak into the result.
    """
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed: apt-get install docker-compose "
            "(it validates docker-compose.yml offline; CI installs it)"
        )
    shutil.copy(ROOT / "docker-compose.yml", directory / "docker-compose.yml")
    return subprocess.run(
        [binary, "-f", "docker-compose.yml", "config"],
        cwd=directory,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(directory)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_docker_compose_validates_the_file_with_the_example_env(tmp_path):
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = _docker_compose_config(tmp_path)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    example = _env_example_values()
    web = resolved["web"]["environment"]
    assert web["SECRET_KEY"] == example["SECRET_KEY"]
    assert web["DATABASE_URL"] == (
        f"postgres://readiness:{example['POSTGRES_PASSWORD']}@postgres:5432/readiness"
    )
    assert resolved["postgres"]["environment"]["POSTGRES_PASSWORD"] == example["POSTGRES_PASSWORD"]


def test_docker_compose_refuses_to_start_postgres_without_a_password(tmp_path):
    (tmp_path / ".env").write_text("SECRET_KEY=x\n")
    result = _docker_compose_config(tmp_path)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_settings_variables_are_found_in_the_source():
    # Guards the regex: an empty set would make the next test pass vacuously.
    found = _settings_variables()
    assert {"DATA_DIR", "DATABASE_URL", "SECRET_KEY", "REDIS_URL", "LOG_LEVEL"} <= found
    assert len(found) >= 20


def test_env_example_lists_every_variable_settings_reads():
    missing = _settings_variables() - _env_example_names()
    assert not missing, f".env.example does not list {sorted(missing)}"


def test_env_example_explains_every_variable_with_a_comment():
    lines = (ROOT / ".env.example").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^#?\s*[A-Z][A-Z0-9_]*=", line) and not line.startswith("# AWS_"):
            previous = lines[number - 1]
            assert previous.startswith("#"), f"line {number + 1} ({line}) has no comment above"


def test_env_example_holds_production_values():
    values = _env_example_values()
    assert values["DEBUG"] == "false"
    assert values["HTTPS"] == "true"
    assert values["ALLOWED_HOSTS"] == "readiness.example.com"
    assert values["CSRF_TRUSTED_ORIGINS"] == "https://readiness.example.com"
    # A placeholder Django's own deploy check flags (security.W009) until it is replaced.
    assert values["SECRET_KEY"].startswith("django-insecure-")
    assert values["POSTGRES_PASSWORD"]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_serves_gunicorn_on_port_8000_as_a_non_root_user():
    instructions = _dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert ("EXPOSE", "8000") in instructions
    cmd = [rest for keyword, rest in instructions if keyword == "CMD"][-1]
    assert cmd.startswith('["gunicorn", "readiness.project.wsgi", "--bind", "0.0.0.0:8000"')
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    # The last USER comes after every RUN: nothing later runs as root again.
    last_user = max(i for i, k in enumerate(keywords) if k == "USER")
    assert last_user > max(i for i, k in enumerate(keywords) if k == "RUN")


def test_dockerfile_installs_the_project_and_collects_static_files():
    runs = " ".join(rest for keyword, rest in _dockerfile_instructions() if keyword == "RUN")
    assert "pip install ." in runs
    assert "[test]" not in runs
    assert "manage.py collectstatic --noinput" in runs
    envs = " ".join(rest for keyword, rest in _dockerfile_instructions() if keyword == "ENV")
    assert "DATA_DIR=/data" in envs
    # Collected files live in the image, outside the /data volume.
    assert "STATIC_ROOT=/app/staticfiles" in envs
    assert ("VOLUME", '["/data"]') in _dockerfile_instructions()


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "data", ".git", ".env", ".pytest_cache", ".ruff_cache"} <= ignored
