"""`manage.py serve` as `make run` starts it: on the ports it is given, beside another instance,
and stopped by Ctrl-C with exit status 0.

Real processes on free loopback ports, each instance with the embedded defaults (SQLite and
the SQLAlchemy broker) in a DATA_DIR of its own.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from readiness.dev.demo_aws import free_port

ROOT = Path(__file__).resolve().parents[3]
STARTUP_SECONDS = 120


def _environment(data_dir: Path, home: Path) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        # Embedded defaults, as on a fresh clone: none of the suite's own services.
        if name not in {"DATABASE_URL", "REDIS_URL", "CI", "DJANGO_SETTINGS_MODULE"}
        and not name.startswith("AWS_")
    }
    # A HOME of its own: gunicorn's default control socket would be created under it.
    return {**environment, "DATA_DIR": str(data_dir), "HOME": str(home)}


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory) -> Path:
    """A DATA_DIR as `make run` leaves it before serve (migrated database, collected static
    files for the manifest storage), copied for each instance: making it costs seconds."""
    data_dir = tmp_path_factory.mktemp("serve-template")
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        subprocess.run(
            [sys.executable, "manage.py", *command, "-v0"],
            cwd=ROOT,
            env=_environment(data_dir, data_dir),
            check=True,
            capture_output=True,
            timeout=300,
        )
    return data_dir


class Instance:
    """One `manage.py serve --demo-aws` on free ports, in a session of its own (as a terminal
    runs a foreground job) so that Ctrl-C can be sent to its whole process group."""

    def __init__(self, directory: Path, template: Path) -> None:
        self.data_dir, self.home = directory / "data", directory / "home"
        shutil.copytree(template, self.data_dir)
        self.home.mkdir()
        self.port, self.emulator_port = free_port(), free_port()
        self.log = directory / "serve.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "serve",
                "--demo-aws",
                "--concurrency",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--moto-port",
                str(self.emulator_port),
            ],
            cwd=ROOT,
            env=_environment(self.data_dir, self.home),
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def status(self, url: str) -> int | None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while self.status(f"http://127.0.0.1:{self.port}/login/") != 200:
            assert self.process.poll() is None, f"serve exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"no login page after {STARTUP_SECONDS} s"
            time.sleep(0.5)
        assert self.status(f"http://127.0.0.1:{self.emulator_port}/moto-api/") == 200
        # The worker too: its banner ends with "ready" once it takes tasks.
        while not re.search(r"celery@\S+ ready", self.output()):
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.5)

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=90)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def test_two_instances_serve_on_their_own_ports_and_ctrl_c_stops_each_with_status_0(
    tmp_path, migrated_database
):
    first = Instance(tmp_path / "first", migrated_database)
    second = Instance(tmp_path / "second", migrated_database)
    try:
        first.wait_until_up()
        second.wait_until_up()
        for instance in (first, second):
            # No control socket under the account's HOME for the next instance to take over.
            assert not (instance.home / ".gunicorn").exists()
            output = instance.output()
            assert f"log in at http://127.0.0.1:{instance.port}/login/" in output
            assert f"(moto) on http://127.0.0.1:{instance.emulator_port}" in output
        assert first.ctrl_c() == 0, first.output()
        # The other instance is untouched by the first one's stop.
        assert second.status(f"http://127.0.0.1:{second.port}/login/") == 200
        assert second.ctrl_c() == 0, second.output()
    finally:
        first.kill()
        second.kill()
    for instance in (first, second):
        output = instance.output()
        assert "Stopped." in output
        assert "SecurityWarning" not in output
        assert "Traceback" not in output
        assert instance.status(f"http://127.0.0.1:{instance.port}/login/") is None
        assert instance.status(f"http://127.0.0.1:{instance.emulator_port}/moto-api/") is None


def test_make_run_passes_port_and_emulator_port_to_serve():
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run", "PORT=8123", "EMULATOR_PORT=5123"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "manage.py serve --demo-aws --bind 127.0.0.1:8123 --moto-port 5123" in result.stdout
