import datetime
import os
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

KEY_SIZE = 3072


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a private temporary file renamed into place, so a reader never sees a
    half-written key and the key is never readable by others, even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)  # the umask may have narrowed the certificate's 0644
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def build_certificate(
    key: rsa.RSAPrivateKey, *, common_name: str, organization: str, days: int
) -> x509.Certificate:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    name = x509.Name(attributes)
    # Backdated a little: a verifier whose clock runs behind must not see "not yet valid".
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        # A CA so that auditors can install it as its own trust root.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # nonRepudiation, which pyHanko asks of a signer
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


class Command(BaseCommand):
    help = (
        f"Make an RSA {KEY_SIZE} key and a self-signed certificate for signing records (PAdES). "
        "Writes SIGNING_KEY_FILE and SIGNING_CERT_FILE unless other paths are given; the key is "
        "encrypted with SIGNING_KEY_PASSWORD when that is set."
    )

    def add_arguments(self, parser):
        host = urlsplit(settings.SITE_URL).hostname or "localhost"
        parser.add_argument("--common-name", default=f"Readiness record signing ({host})")
        parser.add_argument("--organization", default="")
        parser.add_argument("--days", type=int, default=3650, help="Validity (default 10 years).")
        parser.add_argument("--key-file", type=Path, default=None)
        parser.add_argument("--cert-file", type=Path, default=None)
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--force", action="store_true", help="Replace existing files.")
        group.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing (exit 0) when both files already exist.",
        )

    def handle(self, *args, **options):
        key_file = Path(options["key_file"] or settings.SIGNING_KEY_FILE).resolve()
        cert_file = Path(options["cert_file"] or settings.SIGNING_CERT_FILE).resolve()
        if key_file == cert_file:
            raise CommandError("The key and the certificate need two different files.")
        if options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        existing = [path for path in (key_file, cert_file) if path.exists()]
        if options["if_missing"] and (len(existing) == 2 or settings.SIGNING_PKCS12_FILE):
            # `make run` calls this on every start; a PKCS#12 bundle is a signer already.
            if options["verbosity"] > 1:
                self.stdout.write("A signing key is already configured; nothing to do.")
            return
        if existing and not options["force"]:
            names = " and ".join(str(path) for path in existing)
            verb, pronoun = ("exists", "it") if len(existing) == 1 else ("exist", "them")
            raise CommandError(
                f"{names} already {verb}; records signed with the current key would no longer "
                f"match a new certificate. Use --force to replace {pronoun} (and add the old "
                "certificate to SIGNING_TRUST_ROOTS so older records stay trusted)."
            )

        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        certificate = build_certificate(
            key,
            common_name=options["common_name"],
            organization=options["organization"],
            days=options["days"],
        )
        password = settings.SIGNING_KEY_PASSWORD
        encryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        _write(
            key_file,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            ),
            0o600,
        )
        _write(cert_file, certificate.public_bytes(serialization.Encoding.PEM), 0o644)

        protection = ", encrypted with SIGNING_KEY_PASSWORD" if password else ""
        self.stdout.write(
            f"Wrote the private key to {key_file} (RSA {KEY_SIZE}, mode 0600{protection})."
        )
        self.stdout.write(
            f"Wrote the certificate to {cert_file}: {certificate.subject.rfc4514_string()}, "
            f"valid until {certificate.not_valid_after_utc:%Y-%m-%d}."
        )
        self.stdout.write(f"SHA-256 fingerprint: {_fingerprint(certificate)}")
        self.stdout.write("Environment for the web and worker processes:")
        self.stdout.write(f"SIGNING_KEY_FILE={key_file}")
        self.stdout.write(f"SIGNING_CERT_FILE={cert_file}")
        if password:
            self.stdout.write("SIGNING_KEY_PASSWORD=(the one already set)")
        if settings.SIGNING_PKCS12_FILE:
            self.stderr.write(
                "Note: SIGNING_PKCS12_FILE is set and takes precedence; unset it to sign with "
                "these files."
            )
        self.stdout.write(
            "Give auditors the certificate file (and its fingerprint) to trust signed records."
        )
