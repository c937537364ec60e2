"""docker-compose.yml, Dockerfile and .env.example: what a deployment relies on, checked offline.

No Docker is needed: the compose file is interpolated from a .env as Compose does and validated
against the Compose Specification's JSON schema (vendored in tests/data/compose-spec/). Where a
compose binary is installed (CI installs docker-compose), the same tests ask it too and require
its verdict to agree.
"""

import gc
import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml
from celery.bin.beat import beat as beat_command

ROOT = Path(__file__).resolve().parents[3]
APP_SERVICES = ("web", "worker", "beat")
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec" / "compose-spec.json"


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


class ComposeError(Exception):
    """What Compose would refuse the file for: a required variable unset, a schema error."""


# Compose's variable syntax: $$ is a literal $, then $NAME, ${NAME} and ${NAME<op>argument}.
VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def _substitute(text: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        operator, argument = match["operator"] or "", match["argument"] or ""
        # With a colon, an empty value counts as unset.
        unset = name not in variables or (operator.startswith(":") and not variables[name])
        if operator.endswith("-"):
            return argument if unset else variables[name]
        if operator.endswith("?"):
            if unset:
                raise ComposeError(f"required variable {name} is missing a value: {argument}")
            return variables[name]
        if operator.endswith("+"):
            return "" if unset else argument
        return variables.get(name, "")

    return VARIABLE.sub(replace, text)


def _interpolate(value, variables: dict[str, str]):
    """Every string of the parsed file with its variables replaced, as Compose does before it
    validates (so a published port is checked as it will be used)."""
    if isinstance(value, dict):
        return {key: _interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, variables) for item in value]
    if isinstance(value, str):
        return _substitute(value, variables)
    return value


def _env_file(path: Path) -> dict[str, str]:
    variables = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if (line := line.strip()) and not line.startswith("#") and "=" in line:
                name, _, value = line.partition("=")
                variables[name.strip()] = value.strip()
    return variables


# The schema names formats that JSON Schema itself does not define; Compose checks them in
# code, and jsonschema ignores a format nobody registered. These follow Compose's syntax:
# [[HOST_IP:]HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTOCOL], and Go durations ("1m30s").
PORT = re.compile(
    r"^(?:(?:\[?(?P<host>[0-9A-Fa-f.:]+)\]?:)?(?P<published>\d*)(?:-(?P<published_end>\d+))?:)?"
    r"(?P<target>\d+)(?:-(?P<target_end>\d+))?(?:/(?:tcp|udp|sctp))?$"
)
EXPOSE = re.compile(r"^\d+(?:-\d+)?(?:/(?:tcp|udp|sctp))?$")
DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("ports", raises=ValueError)
def _is_port(value) -> bool:
    if isinstance(value, int):
        return 0 < value < 65536
    match = PORT.match(value)
    if match is None:
        raise ValueError(f"invalid port {value!r}")
    numbers = [match[group] for group in ("published", "published_end", "target", "target_end")]
    return all(0 < int(number) < 65536 for number in numbers if number)


@FORMATS.checks("expose")
def _is_exposed_port(value) -> bool:
    return isinstance(value, int) or bool(EXPOSE.match(value))


@FORMATS.checks("duration")
def _is_duration(value) -> bool:
    return bool(DURATION.match(value))


@cache
def _schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    # The file names draft 2019-09 under an address jsonschema does not know; it uses draft-07
    # keywords only (definitions, id), and Compose's own Go validator reads it as draft-07.
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=FORMATS)


def _compose_binary() -> list[str] | None:
    if binary := shutil.which("docker-compose"):
        return [binary]
    if (docker := shutil.which("docker")) and subprocess.run(
        [docker, "compose", "version"], capture_output=True, timeout=30
    ).returncode == 0:
        return [docker, "compose"]
    return None


def _resolve(directory: Path) -> dict:
    """docker-compose.yml in `directory` as Compose would run it: interpolated from the .env
    beside it and valid against the Compose Specification, or ComposeError saying why not.

    Where a compose binary is installed, its `config` must reach the same verdict, and the
    same environment for each service.
    """
    try:
        resolved = _interpolate(
            yaml.safe_load((directory / "docker-compose.yml").read_text()),
            _env_file(directory / ".env"),
        )
        errors = sorted(_schema_validator().iter_errors(resolved), key=lambda e: e.path)
        if errors:
            raise ComposeError(
                "; ".join(f"{'.'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors)
            )
    except ComposeError as error:
        if (checked := _compose_config(directory)) is not None:
            assert checked.returncode != 0, f"Compose accepts what the schema refused: {error}"
        raise
    if (checked := _compose_config(directory)) is not None:
        assert checked.returncode == 0, (
            f"Compose refuses what the schema accepted: {checked.stderr}"
        )
        theirs = yaml.safe_load(checked.stdout)["services"]
        for name, service in resolved["services"].items():
            for variable, value in (service.get("environment") or {}).items():
                assert str(theirs[name]["environment"][variable]) == str(value), (name, variable)
    return resolved


def _compose_config(directory: Path) -> subprocess.CompletedProcess | None:
    """`config` of an installed compose binary on the file in `directory`, or None.

    Its environment holds only PATH and HOME: the caller's own DATABASE_URL,
    POSTGRES_PASSWORD... cannot leak into the result.
    """
    binary = _compose_binary()
    if binary is None:
        return None
    return subprocess.run(
        [*binary, "-f", "docker-compose.yml", "config"],
        cwd=directory,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(directory)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def compose_dir(tmp_path) -> Path:
    """A copy of docker-compose.yml beside the example .env: nothing is written into the
    checkout."""
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    return tmp_path


def test_compose_file_is_valid_with_the_example_env(compose_dir):
    resolved = _resolve(compose_dir)["services"]
    example = _env_example_values()
    web = resolved["web"]["environment"]
    assert web["DATABASE_URL"] == (
        f"postgres://readiness:{example['POSTGRES_PASSWORD']}@postgres:5432/readiness"
    )
    assert resolved["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert resolved["postgres"]["environment"]["POSTGRES_PASSWORD"] == example["POSTGRES_PASSWORD"]
    # $$HOSTNAME reaches the container's shell as $HOSTNAME.
    assert "-d celery@$HOSTNAME" in _healthcheck(resolved["worker"])


def test_compose_refuses_to_start_postgres_without_a_password(compose_dir):
    (compose_dir / ".env").write_text("SECRET_KEY=x\n")
    with pytest.raises(ComposeError, match="POSTGRES_PASSWORD"):
        _resolve(compose_dir)


BROKEN = {
    "an unknown top-level key": ("\nservices:", "\nfrobnicate: true\nservices:"),
    "a port with an unknown protocol": (
        '"${WEB_PORT:-127.0.0.1:8000}:8000"',
        '"127.0.0.1:8000:8000/icmp"',
    ),
    "a port that is not a number": ('"${WEB_PORT:-127.0.0.1:8000}:8000"', '"127.0.0.1:web:8000"'),
    "an unknown service key": ("    image: redis:7\n", "    image: redis:7\n    imagee: x\n"),
    "a health check retries that is not a number": ("retries: 5", "retries: five"),
}


@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_compose_file_is_refused(compose_dir, change):
    old, new = change
    source = (compose_dir / "docker-compose.yml").read_text()
    assert old in source, "the test's anchor is gone from docker-compose.yml"
    (compose_dir / "docker-compose.yml").write_text(source.replace(old, new, 1))
    with pytest.raises(ComposeError):
        _resolve(compose_dir)


def test_a_port_value_the_compose_syntax_allows_passes_the_format_check():
    for port in (
        "8000",
        "8000:8000",
        "127.0.0.1:8000:8000",
        "[::1]:80:80",
        "9000-9005:9000-9005/udp",
        80,
    ):
        assert _is_port(port), port
    # A number the syntax allows but no port has: Compose v2 refuses it when it parses.
    assert not _is_port("127.0.0.1:80000:8000")
    with pytest.raises(ValueError):
        _is_port("8000:8000/icmp")
    assert _is_duration("1m30s") and not _is_duration("ten seconds")


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


def test_every_way_of_running_the_worker_limits_its_malloc_arenas():
    # Eight threads would each get a glibc arena of their own and keep its freed pages: the
    # image is what a deployment runs, with or without this compose file.
    envs = " ".join(rest for keyword, rest in _dockerfile_instructions() if keyword == "ENV")
    assert re.search(r"(^|\s)MALLOC_ARENA_MAX=2(\s|$)", envs)
    assert str(_services()["worker"]["environment"]["MALLOC_ARENA_MAX"]) == "2"
    serve = (ROOT / "readiness" / "management" / "commands" / "serve.py").read_text()
    assert '"worker": {**env, "MALLOC_ARENA_MAX": "2"}' in serve


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "data", ".git", ".env", ".pytest_cache", ".ruff_cache"} <= ignored


GUNICORN_CONFIG = "python:readiness.project.gunicorn_conf"


def test_every_gunicorn_launch_reads_the_shared_config_module():
    cmd = [rest for keyword, rest in _dockerfile_instructions() if keyword == "CMD"][-1]
    assert f'"--config", "{GUNICORN_CONFIG}"' in cmd
    assert f"--config {GUNICORN_CONFIG}" in _command(_services()["web"])
    serve = (ROOT / "readiness" / "management" / "commands" / "serve.py").read_text()
    assert f'"{GUNICORN_CONFIG}"' in serve
    # Threads are set in one place: a launch that set them too would override the module.
    for launch in (cmd, _command(_services()["web"]), serve):
        assert "--threads" not in launch


def test_a_gunicorn_worker_freezes_what_loading_the_app_allocated():
    from readiness.project import gunicorn_conf

    assert gunicorn_conf.threads >= 1
    gc.unfreeze()
    try:
        gunicorn_conf.post_worker_init(worker=None)
        # The loaded modules are out of every collection from now on.
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
