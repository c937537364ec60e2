"""PAdES signing and verification of record PDFs (signoff.signing, create_signing_cert)."""

import datetime
import io
import re
import stat
import uuid
from io import StringIO

import pypdf
import pytest
import weasyprint
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.core.management import CommandError, call_command
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from signoff.records import signing
from signoff.records.signing import SigningConfigError, sign_pdf, verify_pdf

RECORD_ID = uuid.UUID("6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")


def make_cert(directory, *extra) -> tuple:
    """Key and certificate written by the command, as an operator would make them."""
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    out = StringIO()
    call_command(
        "create_signing_cert",
        "--key-file",
        str(key_file),
        "--cert-file",
        str(cert_file),
        *extra,
        stdout=out,
    )
    return key_file, cert_file, out.getvalue()


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("signing"))[:2]


@pytest.fixture(scope="session")
def other_cert_files(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("other-signing"), "--common-name", "Someone else")[:2]


@pytest.fixture
def configured(settings, cert_files, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.SIGNING_KEY_FILE, settings.SIGNING_CERT_FILE = cert_files
    settings.SIGNING_KEY_PASSWORD = ""
    settings.SIGNING_PKCS12_FILE = None
    settings.SIGNING_PKCS12_PASSWORD = ""
    settings.SIGNING_TRUST_ROOTS = []
    return settings


@pytest.fixture
def unconfigured(settings, tmp_path):
    """Nothing set: the default paths under DATA_DIR hold no files."""
    settings.DATA_DIR = tmp_path
    settings.SIGNING_KEY_FILE = tmp_path / "signing" / "key.pem"
    settings.SIGNING_CERT_FILE = tmp_path / "signing" / "cert.pem"
    settings.SIGNING_PKCS12_FILE = None
    settings.SIGNING_TRUST_ROOTS = []
    return settings


@pytest.fixture(scope="session")
def record_pdf() -> bytes:
    return weasyprint.HTML(
        string=f"<h1>Readiness record</h1><p>Record {RECORD_ID}</p><p>payments-api 2.4.0</p>"
    ).write_pdf()


@pytest.fixture
def signed(configured, record_pdf):
    return sign_pdf(record_pdf, reason="Production-readiness record", location="test")


def byte_range(data: bytes) -> tuple[int, int, int, int]:
    found = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", data)
    return tuple(int(n) for n in found.groups())


def with_byte(data: bytes, index: int, value: int) -> bytes:
    changed = bytearray(data)
    changed[index] = value
    return bytes(changed)


def encrypted_pdf(source: bytes) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(source)))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- create_signing_cert ------------------------------------------------------------------


def test_create_signing_cert_writes_a_private_key_and_a_ca_certificate(tmp_path):
    key_file, cert_file, output = make_cert(
        tmp_path, "--common-name", "Acme records", "--organization", "Acme", "--days", "30"
    )

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert key.key_size == 3072
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Acme records"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme"
    assert cert.issuer == cert.subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and usage.key_cert_sign
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=29) < lifetime <= datetime.timedelta(days=30)
    assert f"SIGNING_KEY_FILE={key_file}" in output
    assert f"SIGNING_CERT_FILE={cert_file}" in output


def test_create_signing_cert_refuses_to_overwrite_without_force(tmp_path):
    _, cert_file, _ = make_cert(tmp_path)
    before = cert_file.read_bytes()

    with pytest.raises(CommandError, match=r"already exist.*--force"):
        make_cert(tmp_path)
    assert cert_file.read_bytes() == before

    make_cert(tmp_path, "--force")
    assert cert_file.read_bytes() != before


def test_create_signing_cert_if_missing_is_quiet_when_both_files_exist(tmp_path):
    key_file, _, _ = make_cert(tmp_path)
    before = key_file.read_bytes()

    _, _, output = make_cert(tmp_path, "--if-missing")

    assert output == ""
    assert key_file.read_bytes() == before


def test_create_signing_cert_if_missing_leaves_a_pkcs12_setup_alone(unconfigured, tmp_path):
    unconfigured.SIGNING_PKCS12_FILE = tmp_path / "signer.p12"

    call_command("create_signing_cert", "--if-missing", stdout=StringIO())

    assert not unconfigured.SIGNING_KEY_FILE.exists()


def test_create_signing_cert_if_missing_refuses_a_half_pair(tmp_path):
    _, cert_file, _ = make_cert(tmp_path)
    cert_file.unlink()

    with pytest.raises(CommandError, match="already exists"):
        make_cert(tmp_path, "--if-missing")


def test_create_signing_cert_writes_to_the_configured_paths(unconfigured):
    call_command("create_signing_cert", stdout=StringIO())

    assert unconfigured.SIGNING_KEY_FILE.exists() and unconfigured.SIGNING_CERT_FILE.exists()
    assert signing.signer_configured()
    assert signing.load_signer() is not None


def test_create_signing_cert_encrypts_the_key_with_the_configured_password(unconfigured):
    unconfigured.SIGNING_KEY_PASSWORD = "s3cret"
    call_command("create_signing_cert", stdout=StringIO())

    assert b"ENCRYPTED" in unconfigured.SIGNING_KEY_FILE.read_bytes()
    assert signing.load_signer() is not None

    unconfigured.SIGNING_KEY_PASSWORD = "wrong"
    with pytest.raises(SigningConfigError, match="SIGNING_KEY_PASSWORD does not decrypt"):
        signing.load_signer()
    unconfigured.SIGNING_KEY_PASSWORD = ""
    with pytest.raises(SigningConfigError, match="encrypted; set SIGNING_KEY_PASSWORD"):
        signing.load_signer()


# --- Loading the signer -------------------------------------------------------------------


def test_nothing_configured_means_no_signer(unconfigured, record_pdf):
    assert not signing.signer_configured()
    assert signing.load_signer() is None
    with pytest.raises(SigningConfigError, match="No signing key is configured"):
        sign_pdf(record_pdf, reason="test")


def test_missing_key_file_names_the_setting(configured, tmp_path):
    configured.SIGNING_KEY_FILE = tmp_path / "absent.pem"

    assert signing.signer_configured()
    with pytest.raises(SigningConfigError, match=r"SIGNING_KEY_FILE: .*absent.pem does not exist"):
        signing.load_signer()


def test_an_explicit_path_without_files_is_a_broken_configuration(unconfigured, tmp_path):
    # A secret that was not mounted must not quietly produce unsigned records.
    unconfigured.SIGNING_KEY_FILE = tmp_path / "secrets" / "key.pem"
    unconfigured.SIGNING_CERT_FILE = tmp_path / "secrets" / "cert.pem"

    assert signing.signer_configured()
    with pytest.raises(SigningConfigError, match="SIGNING_CERT_FILE"):
        signing.load_signer()


def test_a_key_that_does_not_belong_to_the_certificate_is_refused(configured, other_cert_files):
    configured.SIGNING_KEY_FILE = other_cert_files[0]

    with pytest.raises(SigningConfigError, match="does not belong to the certificate"):
        signing.load_signer()


def test_files_that_are_not_keys_or_certificates_are_refused(configured, cert_files, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    configured.SIGNING_CERT_FILE = junk
    with pytest.raises(SigningConfigError, match=r"SIGNING_CERT_FILE: .* not an X\.509"):
        signing.load_signer()

    configured.SIGNING_CERT_FILE, configured.SIGNING_KEY_FILE = cert_files[1], junk
    with pytest.raises(SigningConfigError, match="SIGNING_KEY_FILE"):
        signing.load_signer()


def test_an_expired_certificate_is_refused(configured, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Expired")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    configured.SIGNING_KEY_FILE, configured.SIGNING_CERT_FILE = key_file, cert_file

    with pytest.raises(SigningConfigError, match="expired"):
        signing.load_signer()


def _pkcs12(cert_files, password: bytes) -> bytes:
    key = serialization.load_pem_private_key(cert_files[0].read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(cert_files[1].read_bytes())
    return pkcs12.serialize_key_and_certificates(
        b"readiness", key, cert, None, serialization.BestAvailableEncryption(password)
    )


def test_pkcs12_bundle_signs_with_the_right_password(configured, cert_files, tmp_path, record_pdf):
    bundle = tmp_path / "signer.p12"
    bundle.write_bytes(_pkcs12(cert_files, b"p12-pass"))
    # The PEM pair stays configured too: the bundle takes precedence.
    configured.SIGNING_PKCS12_FILE = bundle
    configured.SIGNING_PKCS12_PASSWORD = "p12-pass"

    result = verify_pdf(sign_pdf(record_pdf, reason="test").data)

    assert result.ok, result.problems


def test_pkcs12_bundle_with_the_wrong_password_names_the_setting(configured, cert_files, tmp_path):
    bundle = tmp_path / "signer.p12"
    bundle.write_bytes(_pkcs12(cert_files, b"p12-pass"))
    configured.SIGNING_PKCS12_FILE = bundle
    configured.SIGNING_PKCS12_PASSWORD = "nope"

    with pytest.raises(SigningConfigError, match="SIGNING_PKCS12_PASSWORD does not open"):
        signing.load_signer()

    configured.SIGNING_PKCS12_FILE = tmp_path / "missing.p12"
    with pytest.raises(SigningConfigError, match=r"SIGNING_PKCS12_FILE: .* does not exist"):
        signing.load_signer()


# --- Signing and verifying ----------------------------------------------------------------


def test_signed_pdf_verifies_as_valid_trusted_intact_and_whole(configured, signed, cert_files):
    cert = x509.load_pem_x509_certificate(cert_files[1].read_bytes())

    result = verify_pdf(signed.data)

    assert b"/ETSI.CAdES.detached" in signed.data  # PAdES, not adbe.pkcs7.detached
    assert result.signed and result.signature_count == 1
    assert result.signature_valid  # pyHanko's bottom_line
    assert result.trusted and result.intact and result.covers_whole_file and result.unmodified
    assert result.problems == []
    assert result.ok
    assert result.signer_subject == cert.subject.rfc4514_string() == signed.certificate_subject
    assert signed.certificate_sha256 == cert.fingerprint(hashes.SHA256()).hex()
    assert result.signer_certificate_sha256 == signed.certificate_sha256
    age = datetime.datetime.now(datetime.UTC) - result.signing_time
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=5)


def test_signing_keeps_the_original_as_the_first_revision(signed, record_pdf):
    assert signed.data.startswith(record_pdf)


def test_one_changed_byte_in_the_signed_range_invalidates_the_signature(signed):
    _, length, _, _ = byte_range(signed.data)
    index = length // 2
    tampered = with_byte(signed.data, index, signed.data[index] ^ 0x01)

    result = verify_pdf(tampered)

    assert not result.signature_valid
    assert not result.intact and not result.unmodified
    assert result.trusted  # the signer is still who it was; the content is not
    assert not result.ok
    assert result.problems == [
        "The signature is invalid: the signed content was changed after signing."
    ]


def test_a_changed_byte_in_the_signature_value_is_invalid_not_a_crash(signed):
    _, length, second, _ = byte_range(signed.data)
    contents = signed.data[length + 1 : second - 1]
    cms_end = len(contents.rstrip(b"0"))
    # Near the end of the CMS blob: inside the RSA signature value.
    index = length + 1 + cms_end - 20
    digit = b"1" if signed.data[index : index + 1] != b"1" else b"2"

    result = verify_pdf(with_byte(signed.data, index, digit[0]))

    assert not result.signature_valid
    assert not result.ok
    assert any("signature is invalid" in problem for problem in result.problems)


def test_a_damaged_signature_structure_is_invalid_not_a_crash(signed):
    _, length, second, _ = byte_range(signed.data)
    contents = signed.data[length + 1 : second - 1]
    index = length + 1 + len(contents.rstrip(b"0")) // 2  # mid-CMS: breaks the DER

    for damaged in (
        with_byte(signed.data, index, ord("@")),  # not a hex digit
        with_byte(signed.data, length + 1 + 100, ord("f")),  # inside the DER structure
    ):
        result = verify_pdf(damaged)
        assert not result.signature_valid and not result.ok
        assert any("signature is invalid" in problem for problem in result.problems)


def test_a_changed_byte_in_the_signature_padding_is_not_the_signed_file(signed):
    _, length, second, _ = byte_range(signed.data)
    contents = signed.data[length + 1 : second - 1]
    index = length + 1 + len(contents.rstrip(b"0")) + 40

    result = verify_pdf(with_byte(signed.data, index, ord("1")))

    assert not result.covers_whole_file
    assert not result.ok
    assert any("inside the signature field" in problem for problem in result.problems)


def test_damaged_byte_range_is_invalid_not_a_crash(signed):
    found = re.search(rb"/ByteRange\s*\[[^\]]*\]", signed.data).group(0)
    numbers = byte_range(signed.data)
    shorter = found.replace(
        str(numbers[3]).encode(), str(numbers[3] - 1).encode().rjust(len(str(numbers[3])))
    )
    unreadable = found.replace(b"[", b"(", 1)

    for damaged in (signed.data.replace(found, shorter), signed.data.replace(found, unreadable)):
        assert len(damaged) == len(signed.data)
        result = verify_pdf(damaged)
        assert not result.signature_valid
        assert not result.ok
        assert result.problems


def test_an_incremental_update_after_signing_is_not_the_whole_file(signed):
    writer = IncrementalPdfFileWriter(io.BytesIO(signed.data))
    writer.root["/Extra"] = generic.NameObject("/Appended")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)

    result = verify_pdf(out.getvalue())

    assert result.intact  # the signed revision itself is untouched
    assert not result.covers_whole_file
    assert not result.ok
    assert any("changed after signing" in problem for problem in result.problems)


def test_a_certificate_outside_the_trust_roots_is_untrusted(
    configured, cert_files, other_cert_files, record_pdf
):
    configured.SIGNING_KEY_FILE, configured.SIGNING_CERT_FILE = other_cert_files
    stranger = sign_pdf(record_pdf, reason="test")
    configured.SIGNING_KEY_FILE, configured.SIGNING_CERT_FILE = cert_files

    result = verify_pdf(stranger.data)

    assert result.intact and result.covers_whole_file
    assert not result.trusted
    assert not result.signature_valid  # bottom_line includes trust
    assert "not trusted" in result.problems[0]

    configured.SIGNING_TRUST_ROOTS = [str(other_cert_files[1])]
    assert verify_pdf(stranger.data).ok


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "not a PDF"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not a PDF"),
        (b"%PDF-1.7\n" + b"garbage " * 200, "truncated or damaged"),
    ],
)
def test_bad_input_is_reported_not_raised(configured, data, problem):
    result = verify_pdf(data)

    assert result.bad_input and not result.ok
    assert problem in result.problems[0]


def test_a_truncated_signed_pdf_is_reported_not_raised(signed):
    result = verify_pdf(signed.data[: len(signed.data) // 2])

    assert result.is_pdf and not result.readable and result.bad_input
    assert "truncated or damaged" in result.problems[0]


def test_an_encrypted_pdf_is_reported_not_raised(configured, record_pdf):
    result = verify_pdf(encrypted_pdf(record_pdf))

    assert result.encrypted and result.bad_input
    assert "encrypted" in result.problems[0]


def test_an_unsigned_pdf_is_reported_as_unsigned(configured, record_pdf):
    result = verify_pdf(record_pdf)

    assert result.readable and not result.bad_input
    assert not result.signed and not result.ok
    assert result.problems == ["The PDF has no digital signature."]
