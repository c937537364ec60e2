"""A real test PKI on loopback: certomancer's Animator serves the TSA, OCSP responder and CRL
of pki/certomancer.yml over HTTP from werkzeug servers in threads, as pyHanko's own tests do.

Two servers share one PKI: `now` answers at the real time; `past` is the same TSA with its
clock in mid-2020 (certomancer's fixed `at_time`), the only way to obtain a genuine timestamp
from before the end of the `expired` signer certificate.
"""

import datetime
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import pem
from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import CertomancerConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server

CONFIG = Path(__file__).with_name("pki") / "certomancer.yml"
ARCH = "readiness"
KEYS = ("root", "tsa", "signer", "expired", "revoked")
# Inside the `expired` certificate's validity (2020) and after every other one's start.
PAST = datetime.datetime(2020, 6, 1, 12, 0, tzinfo=datetime.UTC)


class _Deferred:
    """The WSGI app a server is made with before the PKI (which needs the server's port in
    its URLs) exists."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@dataclass
class LocalPki:
    directory: Path
    url: str = ""
    past_url: str = ""
    _servers: list = field(default_factory=list)

    def tsa_url(self, *, past: bool = False) -> str:
        return f"{self.past_url if past else self.url}/{ARCH}/tsa/tsa"

    def certificate_path(self, label: str) -> Path:
        return self.directory / f"{label}.cert.pem"

    def key_path(self, label: str) -> Path:
        return self.directory / f"{label}.key.pem"

    @property
    def root_path(self) -> Path:
        return self.certificate_path("root")

    def stop(self) -> None:
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        self._servers.clear()


def _write_keys(directory: Path) -> None:
    for label in KEYS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (directory / f"{label}.key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _serve(app) -> tuple:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="certomancer", daemon=True)
    thread.start()
    return server, thread


def start_pki(directory: Path) -> LocalPki:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIG, directory / CONFIG.name)
    _write_keys(directory)
    now_app, past_app = _Deferred(), _Deferred()
    pki = LocalPki(directory=directory)
    for app in (now_app, past_app):
        pki._servers.append(_serve(app))
    now_port = pki._servers[0][0].port
    pki.url = f"http://127.0.0.1:{now_port}"
    pki.past_url = f"http://127.0.0.1:{pki._servers[1][0].port}"
    config = CertomancerConfig.from_file(
        str(directory / CONFIG.name), key_search_dir=str(directory), external_url_prefix=pki.url
    )
    store = AnimatorArchStore(config.pki_archs)
    now_app.app = Animator(store, with_web_ui=False, allow_time_override=False)
    past_app.app = Animator(store, at_time=PAST, with_web_ui=False, allow_time_override=False)
    architecture = config.get_pki_arch(ARCH)
    for label in ("root", "tsa", *KEYS[2:]):
        certificate = architecture.get_cert(label)
        pki.certificate_path(label).write_bytes(pem.armor("CERTIFICATE", certificate.dump()))
    return pki
