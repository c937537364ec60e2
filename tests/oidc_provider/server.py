"""Start the test OpenID provider (this folder's Django project) on a free loopback port.

A session fixture (tests/oidc_provider/fixtures.py) calls `start()`: a fresh data folder,
a new RSA signing key, `migrate`, then `runserver` in a child process; `stop()` ends it.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = Path(__file__).resolve().parent
READY_TIMEOUT = 30


@dataclass
class Provider:
    base_url: str
    data_dir: Path
    process: subprocess.Popen
    subjects: dict = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/o"

    def seed(self, spec: dict) -> dict:
        """Create or update users and clients (see seed.py); returns {"subjects": {...}}."""
        result = subprocess.run(
            [sys.executable, str(HERE / "seed.py")],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            env=_environment(self.data_dir),
            cwd=HERE,
            timeout=60,
            check=False,
        )
        if result.returncode:
            raise RuntimeError(f"seeding the test OpenID provider failed:\n{result.stderr}")
        answer = json.loads(result.stdout)
        self.subjects.update(answer["subjects"])
        return answer

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _environment(data_dir: Path) -> dict:
    environment = {
        key: value
        for key, value in os.environ.items()
        # The provider is not the app under test: none of the app's settings reach it.
        if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_"))
    }
    return {**environment, "OP_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "op_settings"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(data_dir: Path) -> Provider:
    data_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (data_dir / "rsa.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    environment = _environment(data_dir)
    manage = [sys.executable, str(HERE / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v", "0"],
        env=environment,
        cwd=HERE,
        check=True,
        timeout=120,
    )
    # The free port is only free when asked: another process may take it before runserver
    # binds it, and then runserver exits at once. Another port then.
    for _attempt in range(3):
        provider = _serve(data_dir, manage, environment)
        if provider is not None:
            return provider
    raise RuntimeError(
        "the test OpenID provider did not start:\n"
        + (data_dir / "server.log").read_text(errors="replace")
    )


def _serve(data_dir: Path, manage: list[str], environment: dict) -> Provider | None:
    port = _free_port()
    # The child writes to its own copy of the descriptor; this one can close.
    with open(data_dir / "server.log", "wb") as log:
        process = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
            env=environment,
            cwd=HERE,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    provider = Provider(base_url=f"http://127.0.0.1:{port}", data_dir=data_dir, process=process)
    deadline = time.monotonic() + READY_TIMEOUT
    discovery = f"{provider.issuer}/.well-known/openid-configuration"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(discovery, timeout=2) as answer:
                if answer.status == 200:
                    return provider
        except OSError:
            pass
        if process.poll() is not None:
            return None
        time.sleep(0.2)
    provider.stop()
    return None
