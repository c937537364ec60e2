"""signing.py builds its signer from pyHanko's public API only, and signs exactly as pyHanko's
own SimpleSigner does, with the key parsed once instead of for every signature."""

import ast
import datetime
import io
from pathlib import Path

import pypdf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signoff.management.commands.create_signing_cert import build_certificate
from signoff.records import signing

SIGNING_PY = Path(signing.__file__)


def _blank_pdf() -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=100, height=100)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


PDF = _blank_pdf()


def _certificate(key, common_name, issuer_key=None, issuer=None) -> x509.Certificate:
    """Self-signed as create_signing_cert makes it, or a leaf issued by `issuer`."""
    if issuer is None:
        return build_certificate(key, common_name=common_name, organization="", days=30)
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _write_pair(directory: Path, key, certificate) -> tuple[Path, Path]:
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


@pytest.fixture(scope="module")
def rsa_pair(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _write_pair(tmp_path_factory.mktemp("rsa"), key, _certificate(key, "RSA signer"))


@pytest.fixture(scope="module")
def ec_pair(tmp_path_factory):
    key = ec.generate_private_key(ec.SECP256R1())
    return _write_pair(tmp_path_factory.mktemp("ec"), key, _certificate(key, "EC signer"))


@pytest.fixture
def use_pair(settings, tmp_path):
    def configure(pair):
        settings.DATA_DIR = tmp_path
        settings.SIGNING_KEY_FILE, settings.SIGNING_CERT_FILE = pair
        settings.SIGNING_KEY_PASSWORD = ""
        settings.SIGNING_PKCS12_FILE = None
        settings.SIGNING_PKCS12_PASSWORD = ""
        settings.SIGNING_TRUST_ROOTS = []
        return signing.load_signer()

    return configure


def _signer_info(data: bytes):
    return PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures[0].signer_info


def test_signing_imports_no_private_pyhanko_names():
    tree = ast.parse(SIGNING_PY.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            module, names = "", [alias.name for alias in node.names]
        else:
            continue
        for dotted in [module, *names]:
            if not dotted.startswith("pyhanko") and not module.startswith("pyhanko"):
                continue
            parts = dotted.split(".")
            assert "internal" not in parts, f"{dotted} is pyHanko-internal"
            assert not any(part.startswith("_") for part in parts), f"{dotted} is private"


def test_key_and_certificate_are_what_pyhankos_public_loaders_make(use_pair, rsa_pair):
    signer = use_pair(rsa_pair)
    key_file, cert_file = rsa_pair

    assert isinstance(signer, signers.SimpleSigner)
    assert signer.signing_key.dump() == load_private_key_from_pemder(key_file, None).dump()
    assert signer.signing_cert.dump() == load_cert_from_pemder(cert_file).dump()
    assert signer.signature_mechanism is None and signer.prefer_pss is False


def test_pkcs12_signer_matches_pyhankos_load_pkcs12(settings, tmp_path):
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _certificate(ca_key, "Test CA")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _certificate(key, "Bundle signer", ca_key, ca.subject)
    bundle = tmp_path / "signer.p12"
    bundle.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"x", key, leaf, [ca], serialization.BestAvailableEncryption(b"pw")
        )
    )
    settings.DATA_DIR = tmp_path
    settings.SIGNING_PKCS12_FILE, settings.SIGNING_PKCS12_PASSWORD = bundle, "pw"

    ours = signing.load_signer()
    theirs = signers.SimpleSigner.load_pkcs12(bundle, passphrase=b"pw")

    assert ours.signing_key.dump() == theirs.signing_key.dump()
    assert ours.signing_cert.dump() == theirs.signing_cert.dump()
    # pyHanko's registry leaves out the signer's own certificate; ours holds it as well.
    assert {c.dump() for c in ours.cert_registry} == {
        theirs.signing_cert.dump(),
        *(c.dump() for c in theirs.cert_registry),
    }
    signed = signing.sign_pdf(PDF, reason="t", signer=ours).data
    embedded = PdfFileReader(io.BytesIO(signed), strict=False).embedded_signatures[0]

    assert signing.verify_pdf(signed).intact
    assert ca.public_bytes(serialization.Encoding.DER) in {
        c.chosen.dump() for c in embedded.signed_data["certificates"]
    }


def test_rsa_signatures_are_pyhankos_pkcs1v15_byte_for_byte(use_pair, rsa_pair):
    signer = use_pair(rsa_pair)
    plain = signers.SimpleSigner(
        signing_cert=signer.signing_cert,
        signing_key=signer.signing_key,
        cert_registry=SimpleCertificateStore.from_certs([signer.signing_cert]),
    )

    for digest in ("sha256", "sha384", "sha512"):
        assert signer.sign_raw(b"attributes", digest) == plain.sign_raw(b"attributes", digest)
    signed = signing.sign_pdf(PDF, reason="t")
    info = _signer_info(signed.data)

    assert info["signature_algorithm"].signature_algo == "rsassa_pkcs1v15"
    assert info["digest_algorithm"]["algorithm"].native == "sha256"
    assert signing.verify_pdf(signed.data).ok


def test_the_rsa_key_is_not_parsed_again_for_each_signature(use_pair, rsa_pair, monkeypatch):
    signer = use_pair(rsa_pair)

    def reparse(*args, **kwargs):
        raise AssertionError("the private key was parsed again to sign")

    monkeypatch.setattr(serialization, "load_der_private_key", reparse)
    monkeypatch.setattr(serialization, "load_pem_private_key", reparse)
    signed = signing.sign_pdf(PDF, reason="t", signer=signer)

    assert signing.load_signer() is signer
    assert signing.verify_pdf(signed.data).signature_valid


def test_a_non_rsa_key_is_signed_by_pyhankos_simplesigner(use_pair, ec_pair):
    signer = use_pair(ec_pair)
    signed = signing.sign_pdf(PDF, reason="t")

    assert _signer_info(signed.data)["signature_algorithm"].signature_algo == "ecdsa"
    assert signing.verify_pdf(signed.data).ok
    assert signing._reserved_bytes(signer) > 2 * len(_signer_info(signed.data).dump())
