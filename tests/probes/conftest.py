"""A real moto server over HTTP for the whole session; each test starts on an empty account."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest

from readiness.probes.base import ProbeContext, ProbeSettings

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server():
    port = _free_port()
    env = {
        **os.environ,
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("the moto server did not start (pip install 'moto[server]')")
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


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


@pytest.fixture
def make_context(aws):
    """ProbeContext factory: one attempt per call so moto's 500s do not retry for seconds."""

    def make(region: str = REGION, **settings) -> ProbeContext:
        return ProbeContext(
            session=aws, region=region, settings=ProbeSettings(**settings), max_attempts=1
        )

    return make
