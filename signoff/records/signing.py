"""PAdES signing of the record PDF, and verification of an uploaded or downloaded copy.

The signing key comes from settings: a PKCS#12 bundle (SIGNING_PKCS12_FILE) or a PEM/DER key
and certificate pair (SIGNING_KEY_FILE, SIGNING_CERT_FILE). With neither, records are stored
unsigned and verify by their SHA-256 alone.

Verification runs on files anyone can upload, so `verify_pdf` and `verify_record` never
raise on bad input: every parser or validator failure becomes a problem in the report.
"""

import asyncio
import concurrent.futures
import datetime
import functools
import hashlib
import io
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps import TimestampRequestError
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    SignatureCoverageLevel,
    validate_pdf_signature,
    validate_pdf_timestamp,
)
from pyhanko.sign.validation.status import ModificationLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.api import FetchLimits, OwnedFetcherBackend
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signoff.records import objstm
from signoff.records.content import (
    PREDATES,
    EmbeddedContent,
    RecordContent,
    content_from_database,
    database_differences,
    read_content,
)
from signoff.records.errors import TrustedTimeError

log = logging.getLogger(__name__)
# A tagged record keeps thousands of objects in one object stream; see objstm.
objstm.install()

SIGNATURE_FIELD = "Signature"
PDF_MAGIC = b"%PDF-"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# The record prints "Record <uuid>" on every page; the signature's /Name carries it too.
RECORD_ID_RE = re.compile(rf"Record\s*(?:id)?[\s:#]*({UUID_RE.pattern})", re.I)


class SigningConfigError(ImproperlyConfigured):
    """The signing key is configured but cannot be used; the message names the setting."""


@dataclass(frozen=True)
class SignedPdf:
    data: bytes
    certificate_subject: str
    certificate_sha256: str


# --- Loading the signer -----------------------------------------------------------------


def _default_path(name: str) -> Path:
    return Path(settings.DATA_DIR) / "signing" / name


def _explicit(path: Path, default_name: str) -> bool:
    """A path other than the default one under DATA_DIR was set on purpose."""
    return Path(path).resolve() != _default_path(default_name).resolve()


def signer_configured() -> bool:
    """Whether records should be signed: a PKCS#12 bundle is set, a key or certificate file
    exists, or a non-default path was given (a missing secret mount must fail loudly in
    `load_signer`, not silently produce unsigned records)."""
    if settings.SIGNING_PKCS12_FILE:
        return True
    key_file, cert_file = Path(settings.SIGNING_KEY_FILE), Path(settings.SIGNING_CERT_FILE)
    return (
        key_file.exists()
        or cert_file.exists()
        or _explicit(key_file, "key.pem")
        or _explicit(cert_file, "cert.pem")
    )


def _read(path: Path, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as error:
        raise SigningConfigError(f"{setting}: {path} does not exist.") from error
    except OSError as error:
        raise SigningConfigError(f"{setting}: cannot read {path}: {error.strerror}.") from error


def _password(value: str) -> bytes | None:
    return value.encode() if value else None


def _load_certificate(data: bytes, setting: str, path: Path) -> x509.Certificate:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise SigningConfigError(
            f"{setting}: {path} is not an X.509 certificate (PEM or DER)."
        ) from error


def _load_private_key(data: bytes, password: bytes | None, path: Path):
    loader = (
        serialization.load_pem_private_key
        if b"-----BEGIN" in data
        else serialization.load_der_private_key
    )
    try:
        return loader(data, password=password)
    except TypeError as error:
        # cryptography says TypeError for both directions of a password mismatch.
        if password is None:
            raise SigningConfigError(
                f"SIGNING_KEY_FILE: {path} is encrypted; set SIGNING_KEY_PASSWORD."
            ) from error
        raise SigningConfigError(
            f"SIGNING_KEY_PASSWORD is set but SIGNING_KEY_FILE ({path}) is not encrypted; "
            "unset the password or encrypt the key."
        ) from error
    except ValueError as error:
        if password is not None:
            raise SigningConfigError(
                f"SIGNING_KEY_PASSWORD does not decrypt SIGNING_KEY_FILE ({path}), or the file "
                "is not a private key."
            ) from error
        raise SigningConfigError(
            f"SIGNING_KEY_FILE: {path} is not a private key (PEM or DER)."
        ) from error


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_pair(key, certificate: x509.Certificate, where: str) -> None:
    if _public_der(key.public_key()) != _public_der(certificate.public_key()):
        raise SigningConfigError(f"{where}: the private key does not belong to the certificate.")
    now = datetime.datetime.now(datetime.UTC)
    if certificate.not_valid_after_utc < now:
        raise SigningConfigError(
            f"{where}: the certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}; "
            "make a new one (manage.py create_signing_cert --force) or install a renewed one."
        )
    if certificate.not_valid_before_utc > now:
        raise SigningConfigError(
            f"{where}: the certificate is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC."
        )


def _load_pkcs12(path: Path):
    data = _read(path, "SIGNING_PKCS12_FILE")
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(
            data, _password(settings.SIGNING_PKCS12_PASSWORD)
        )
    except ValueError as error:
        raise SigningConfigError(
            f"SIGNING_PKCS12_PASSWORD does not open SIGNING_PKCS12_FILE ({path}), or the file "
            "is not a PKCS#12 bundle."
        ) from error
    if key is None or certificate is None:
        raise SigningConfigError(
            f"SIGNING_PKCS12_FILE: {path} must hold a private key and its certificate."
        )
    return key, certificate, list(extra)


def _file_state(path) -> tuple | None:
    try:
        state = Path(path).stat()
    except OSError:
        return None
    return (str(path), state.st_mtime_ns, state.st_size)


def _configuration() -> tuple:
    """Everything the signer is loaded from, file versions included: the cache key."""
    return (
        _file_state(settings.SIGNING_PKCS12_FILE) if settings.SIGNING_PKCS12_FILE else None,
        str(settings.SIGNING_PKCS12_FILE or ""),
        settings.SIGNING_PKCS12_PASSWORD,
        _file_state(settings.SIGNING_KEY_FILE),
        _file_state(settings.SIGNING_CERT_FILE),
        str(settings.SIGNING_KEY_FILE),
        str(settings.SIGNING_CERT_FILE),
        settings.SIGNING_KEY_PASSWORD,
        signer_configured(),
    )


def _load_key_material():
    """(private key, certificate, other certificates) from settings, or None."""
    if settings.SIGNING_PKCS12_FILE:
        path = Path(settings.SIGNING_PKCS12_FILE)
        key, certificate, extra = _load_pkcs12(path)
        _check_pair(key, certificate, "SIGNING_PKCS12_FILE")
        return key, certificate, extra
    if not signer_configured():
        return None
    key_path, cert_path = Path(settings.SIGNING_KEY_FILE), Path(settings.SIGNING_CERT_FILE)
    certificate = _load_certificate(
        _read(cert_path, "SIGNING_CERT_FILE"), "SIGNING_CERT_FILE", cert_path
    )
    key = _load_private_key(
        _read(key_path, "SIGNING_KEY_FILE"), _password(settings.SIGNING_KEY_PASSWORD), key_path
    )
    _check_pair(key, certificate, "SIGNING_KEY_FILE and SIGNING_CERT_FILE")
    return key, certificate, []


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    """The certificate as pyHanko takes it: asn1crypto's, parsed from the DER."""
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _asn1_private_key(key) -> asn1_keys.PrivateKeyInfo:
    """The key as SimpleSigner takes it: asn1crypto's unencrypted PKCS#8 PrivateKeyInfo."""
    return asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


# The digests pyHanko may ask an RSA PKCS#1 v1.5 signature for, by their asn1crypto names;
# any other goes to SimpleSigner's own sign_raw.
_PKCS1V15_DIGESTS = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3_224": hashes.SHA3_224,
    "sha3_256": hashes.SHA3_256,
    "sha3_384": hashes.SHA3_384,
    "sha3_512": hashes.SHA3_512,
}


class _LoadedKeySigner(signers.SimpleSigner):
    """pyHanko's SimpleSigner parses (and validates) the private key again for every
    signature (its sign_raw runs load_der_private_key on `signing_key`), which costs more
    than the rest of signing together: ~120 ms here for the 3072-bit key create_signing_cert
    makes, against under 1 ms to sign. This one signs RSA PKCS#1 v1.5 (pyHanko's choice for
    an RSA key) with the key loaded once.

    pyHanko's public API has no way to hand SimpleSigner an already-loaded key
    (SimpleSigner.load, load_pkcs12 and the pyhanko.keys loaders all end in the same
    PrivateKeyInfo that sign_raw parses again), so this keeps the one override, built
    only on public names: SimpleSigner.sign_raw and Signer.get_signature_mechanism_for_digest
    (both documented), asn1crypto and cryptography. Anything but RSA PKCS#1 v1.5 with a
    known digest is left to SimpleSigner. The mechanism is pyHanko's own choice, unchanged
    (no signature_mechanism, prefer_pss off), so the signatures are the ones SimpleSigner
    makes: PKCS#1 v1.5 signatures are deterministic, byte for byte the same."""

    def __init__(self, *args, private_key, **kwargs):
        super().__init__(*args, **kwargs)
        self._loaded_key = private_key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        try:
            algorithm = mechanism.signature_algo
        except ValueError:
            algorithm = mechanism["algorithm"].native
        digest = _PKCS1V15_DIGESTS.get(digest_algorithm.lower())
        if (
            algorithm == "rsassa_pkcs1v15"
            and digest is not None
            and isinstance(self._loaded_key, rsa.RSAPrivateKey)
        ):
            return self._loaded_key.sign(data, padding.PKCS1v15(), digest())
        return super().sign_raw(data, digest_algorithm)


@functools.lru_cache(maxsize=4)
def _cached_signer(configuration: tuple) -> signers.SimpleSigner | None:
    # Keyed by the settings and the files' versions, so a replaced key is picked up; a
    # SigningConfigError is raised each time (lru_cache does not keep exceptions).
    material = _load_key_material()
    if material is None:
        return None
    key, certificate, extra = material
    signing_cert = _asn1_certificate(certificate)
    chain = [_asn1_certificate(cert) for cert in extra]
    try:
        signing_key = _asn1_private_key(key)
    except Exception as error:  # an unsupported key type surfaces here, deep in asn1crypto
        raise SigningConfigError(f"The signing key's type is not supported: {error}") from error
    return _LoadedKeySigner(
        signing_cert=signing_cert,
        signing_key=signing_key,
        cert_registry=SimpleCertificateStore.from_certs([signing_cert, *chain]),
        private_key=key,
    )


def load_signer() -> signers.SimpleSigner | None:
    """The configured signer, None when nothing is configured; SigningConfigError when the
    configuration is there but unusable. Loaded once per configuration and process."""
    return _cached_signer(_configuration())


def configured_certificate() -> x509.Certificate | None:
    """The signing certificate alone (verification needs no private key)."""
    if settings.SIGNING_PKCS12_FILE:
        signer = load_signer()
        return x509.load_der_x509_certificate(signer.signing_cert.dump())
    if not signer_configured():
        return None
    path = Path(settings.SIGNING_CERT_FILE)
    return _load_certificate(_read(path, "SIGNING_CERT_FILE"), "SIGNING_CERT_FILE", path)


def certificate_fingerprint(certificate: asn1_x509.Certificate) -> str:
    return hashlib.sha256(certificate.dump()).hexdigest()


def certificate_subject(certificate: asn1_x509.Certificate) -> str:
    try:
        return x509.load_der_x509_certificate(certificate.dump()).subject.rfc4514_string()
    except ValueError:
        return certificate.subject.human_friendly


# --- Signing ------------------------------------------------------------------------------


def _reserved_bytes(signer: signers.SimpleSigner, *, timestamped: bool = False) -> int:
    """Room for the CMS signature, written as hex (two characters a byte): the certificates
    (counted twice: pyHanko embeds a self-signed root again as the chain's root), the
    signature value and ~1 KB of signed attributes; with a timestamp, 8 KB for the TSA's
    token (its signature and certificates).

    Giving pyHanko this up front skips its dry-run signature; if it is ever short, sign_pdf
    signs again with pyHanko's own estimate.
    """
    certificates = sum(len(cert.dump()) for cert in signer.cert_registry)
    signature = max(signer.signing_key.bit_size // 4, 512)
    token = 8192 if timestamped else 0
    return 2 * (2 * certificates + signature + 1024 + token)


def _outside_event_loop(function, *args, **kwargs):
    """Call one of pyHanko's synchronous entry points, which start their own event loop
    (asyncio.run): from a thread already running one (an ASGI view, a browser test), it
    runs in a short-lived thread of its own instead of failing."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


@dataclass(frozen=True)
class TrustedTime:
    """Where signatures get their time: no TSA (PAdES B-B, the server clock only), an RFC 3161
    TSA (B-T), or a TSA plus embedded validation data and a document timestamp (B-LTA)."""

    tsa_url: str = ""
    username: str = ""
    password: str = ""
    ltv: bool = False

    @property
    def level(self) -> str:
        if not self.tsa_url:
            return "B-B"
        return "B-LTA" if self.ltv else "B-T"


def trusted_time() -> TrustedTime:
    """The SIGNING_TSA_* and SIGNING_LTV settings."""
    return TrustedTime(
        tsa_url=settings.SIGNING_TSA_URL,
        username=settings.SIGNING_TSA_USERNAME,
        password=settings.SIGNING_TSA_PASSWORD,
        ltv=settings.SIGNING_LTV,
    )


# A TSA answers in well under a second; past this it is down for signing purposes.
TSA_TIMEOUT_SECONDS = 10
# Tries of one timestamp request when the connection drops without an answer (not on a
# timeout or an answer that refuses: those say the TSA is down or says no).
TSA_CONNECTION_ATTEMPTS = 3


class _TimeStamper(timestamps.HTTPTimeStamper):
    """pyHanko's HTTP client, with every way a TSA can fail (refused connection, timeout, an
    HTTP error, a non-TSP answer, a rejected request, a reply that does not parse) turned
    into one TrustedTimeError that names the TSA."""

    async def async_timestamp(self, message_digest, md_algorithm):
        try:
            for attempt in range(TSA_CONNECTION_ATTEMPTS):
                try:
                    return await super().async_timestamp(message_digest, md_algorithm)
                except TimestampRequestError as error:
                    cause = error.__cause__
                    dropped = isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(
                        cause, asyncio.TimeoutError
                    )
                    if not dropped or attempt == TSA_CONNECTION_ATTEMPTS - 1:
                        raise
                    # A connection the TSA (or a proxy before it) dropped before answering:
                    # a timestamp request may be repeated, each on a new connection.
        except Exception as error:
            cause = error.__cause__ if isinstance(error, TimestampRequestError) else None
            detail = _detail(error) + (f": {_detail(cause)}" if cause else "")
            raise TrustedTimeError(
                f"The time-stamping authority at {self.url} (SIGNING_TSA_URL) did not give a "
                f"timestamp: {detail}. Nothing was signed."
            ) from error


def _timestamper(time: TrustedTime) -> timestamps.TimeStamper | None:
    if not time.tsa_url:
        return None
    auth = (time.username, time.password) if time.username else None
    return _TimeStamper(time.tsa_url, timeout=TSA_TIMEOUT_SECONDS, auth=auth)


def _signing_validation_context(signer: signers.SimpleSigner) -> ValidationContext:
    """What B-LT signing validates the signer's and the TSA's chains with, fetching their
    OCSP responses and CRLs (embedded in the DSS): the verification trust roots, plus the
    signing certificate itself when it is self-signed."""
    roots, _problems = trust_roots()
    return ValidationContext(
        trust_roots=roots,
        other_certs=list(signer.cert_registry),
        allow_fetching=True,
        revocation_mode="soft-fail",
    )


def sign_pdf(
    pdf_bytes: bytes,
    *,
    reason: str,
    location: str = "",
    name: str = "",
    signer: signers.SimpleSigner | None = None,
    time: TrustedTime | None = None,
) -> SignedPdf:
    """Add one PAdES signature (SHA-256) as an incremental update; the original bytes stay
    the file's first revision. `time` defaults to the settings (trusted_time()): with a TSA
    the signature carries its timestamp (B-T); with LTV, validation data and a document
    timestamp follow in two more revisions (B-LTA).

    Raises SigningConfigError when no signer is configured, TrustedTimeError when the TSA or
    (with LTV) the validation data cannot be had."""
    signer = signer or load_signer()
    if signer is None:
        raise SigningConfigError(
            "No signing key is configured: set SIGNING_PKCS12_FILE, or SIGNING_KEY_FILE and "
            "SIGNING_CERT_FILE (manage.py create_signing_cert makes a self-signed pair)."
        )
    time = trusted_time() if time is None else time
    timestamper = _timestamper(time)
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason or None,
        location=location or None,
        name=name or None,
        embed_validation_info=time.ltv,
        use_pades_lta=time.ltv,
        validation_context=_signing_validation_context(signer) if time.ltv else None,
    )

    def sign(**reservation):
        try:
            return _outside_event_loop(
                signers.sign_pdf,
                IncrementalPdfFileWriter(io.BytesIO(pdf_bytes), strict=False),
                meta,
                signer=signer,
                timestamper=timestamper,
                **reservation,
            )
        except TrustedTimeError:
            raise
        except SigningError as error:
            if time.ltv and "could not be validated" in str(error):
                # Not transient: a root missing from SIGNING_TRUST_ROOTS, or a certificate
                # that is revoked or expired (soft-fail revocation lets an absent OCSP pass).
                cause = f" ({_detail(error.__cause__)})" if error.__cause__ else ""
                raise SigningConfigError(
                    f"SIGNING_LTV: {_detail(error)}{cause}. The signing certificate and the "
                    "TSA's must chain to SIGNING_TRUST_ROOTS (or be the signing certificate "
                    "itself) and be neither expired nor revoked. Nothing was signed."
                ) from error
            raise

    try:
        output = sign(bytes_reserved=_reserved_bytes(signer, timestamped=timestamper is not None))
    except SigningError as error:
        # The estimate was short (a long chain in a PKCS#12 bundle): let pyHanko measure.
        log.info("signature reservation too small, signing again with an estimate: %s", error)
        output = sign()
    return SignedPdf(
        data=output.getvalue(),
        certificate_subject=certificate_subject(signer.signing_cert),
        certificate_sha256=certificate_fingerprint(signer.signing_cert),
    )


# --- Verifying a PDF ----------------------------------------------------------------------


@dataclass
class Verification:
    """What a PDF's bytes say about themselves, without the database."""

    sha256: str
    size_bytes: int
    is_pdf: bool = False
    readable: bool = False
    encrypted: bool = False
    signed: bool = False
    signature_count: int = 0
    signature_valid: bool = False  # pyHanko's overall verdict (bottom_line)
    intact: bool = False  # the signed bytes hash to the digest the signature covers
    trusted: bool = False
    covers_whole_file: bool = False
    signer_subject: str = ""
    signer_certificate_sha256: str = ""
    signing_time: datetime.datetime | None = None
    signature_name: str = ""
    signature_reason: str = ""
    # The length of the revision the signature covers (its /ByteRange's end): the record's
    # content is read from these bytes.
    signed_length: int = 0
    # Trusted time. The PAdES level the file carries (B-B, B-T, B-LT, B-LTA); the signature's
    # RFC 3161 timestamp, its authority and whether it is intact and from a trusted TSA; the
    # last document timestamp (B-LTA); and the time the signer's certificate was judged at:
    # the timestamp's when it proves one, otherwise now.
    pades_level: str = ""
    timestamp_time: datetime.datetime | None = None
    timestamp_authority: str = ""
    timestamp_valid: bool = False
    document_timestamp_time: datetime.datetime | None = None
    judged_at: datetime.datetime | None = None
    judged_at_timestamp: bool = False
    # Why the signature can be neither accepted nor rejected (the certificate expired or was
    # revoked and no timestamp proves the signature came first), or "".
    indeterminate: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def bad_input(self) -> bool:
        """Not something a record could be: not a PDF, unreadable, or encrypted."""
        return not self.is_pdf or not self.readable or self.encrypted

    @property
    def unmodified(self) -> bool:
        """Nothing changed since signing: neither the signed bytes nor anything after them."""
        return self.intact and self.covers_whole_file

    @property
    def ok(self) -> bool:
        return (
            self.signed
            and self.signature_valid
            and self.intact
            and self.trusted
            and self.covers_whole_file
            and not self.problems
        )

    def as_dict(self) -> dict:
        data = asdict(self)
        for name in ("signing_time", "timestamp_time", "document_timestamp_time", "judged_at"):
            moment = getattr(self, name)
            data[name] = moment.isoformat() if moment else None
        data["unmodified"] = self.unmodified
        return data


def _load_trust_certificates(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def trust_roots() -> tuple[list[asn1_x509.Certificate], list[str]]:
    """The configured signing certificate and SIGNING_TRUST_ROOTS, and what could not be
    loaded (a broken signing setup makes signatures untrusted; it does not stop checks)."""
    roots: list[x509.Certificate] = []
    problems: list[str] = []
    try:
        certificate = configured_certificate()
    except SigningConfigError as error:
        problems.append(f"This server's signing certificate could not be loaded: {error}")
    else:
        if certificate is not None:
            roots.append(certificate)
    for path in settings.SIGNING_TRUST_ROOTS:
        try:
            roots.extend(_load_trust_certificates(Path(path).read_bytes()))
        except (OSError, ValueError) as error:
            problems.append(f"SIGNING_TRUST_ROOTS: cannot load {path}: {error}")
    return [_asn1_certificate(cert) for cert in roots], problems


def _padding_untouched(signature) -> bool:
    """The hex /Contents is the CMS blob padded with zeros, and the padding is outside the
    signed byte ranges: a changed padding byte leaves the signature valid but the file is no
    longer the one that was signed."""
    contents = bytes(signature.sig_object["/Contents"])
    if len(contents) < 2 or contents[0] != 0x30:
        return False
    length = contents[1]
    header = 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(contents[2 : 2 + count], "big")
        header += count
    return not contents[header + length :].strip(b"\x00")


def _text(value) -> str:
    return str(value) if value is not None else ""


# How long verification waits for an OCSP responder or CRL server named in a trusted chain.
REVOCATION_FETCH_TIMEOUT = 5

# What pyHanko says when the chain is sound but the time is not: the certificate was expired
# or revoked at the time it was judged, and nothing proves the signature came before that.
_EXPIRED = {
    AdESIndeterminate.OUT_OF_BOUNDS_NO_POE,
    AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED,
    AdESIndeterminate.EXPIRED,
}
_REVOKED = {AdESIndeterminate.REVOKED_NO_POE, AdESIndeterminate.REVOKED_CA_NO_POE}


class _Contexts:
    """Validation contexts over the trust roots and the file's DSS (its embedded OCSP
    responses, CRLs and certificates), fetching what is missing from the services a trusted
    chain names; a new one per use, since a context caches what it learnt at its moment."""

    def __init__(self, reader, roots: list[asn1_x509.Certificate]):
        try:
            self.dss = DocumentSecurityStore.read_dss(reader)
        except Exception:  # no /DSS (B-B, B-T), or one too damaged to use: fetch instead
            self.dss = None
        self.roots = roots

    def at(self, moment: datetime.datetime | None = None) -> ValidationContext:
        kwargs = {
            "trust_roots": self.roots,
            "allow_fetching": True,
            "revocation_mode": "soft-fail",
            # Files come from anyone: a chain that names many services must not make
            # the server fetch on and on.
            # Owned: pyHanko closes its HTTP session when the validation is over.
            "fetcher_backend": OwnedFetcherBackend(
                AIOHttpFetcherBackend(
                    per_request_timeout=REVOCATION_FETCH_TIMEOUT,
                    limits=FetchLimits(
                        max_requests=20, max_cert_requests=10, max_aia_urls_per_object=2
                    ),
                )
            ),
        }
        if moment is not None:
            # Judging in the past: OCSP responses and CRLs issued since still speak for then.
            kwargs.update(moment=moment, best_signature_time=moment, retroactive_revinfo=True)
        if self.dss is not None:
            return self.dss.as_validation_context(kwargs)
        return ValidationContext(**kwargs)


def _day(moment) -> str:
    return f"{moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC"


def _time_problem(status, proven: datetime.datetime | None) -> str:
    """The sentence for a certificate judged expired or revoked; "" for other trust issues."""
    if status.trust_problem_indic in _EXPIRED:
        what = f"expired on {_day(status.signing_cert.not_valid_after)}"
    elif status.trust_problem_indic in _REVOKED:
        details = status.revocation_details
        whose = "signer's issuing CA" if details and details.ca_revoked else "signer's certificate"
        when = f" on {_day(details.revocation_date)}" if details else ""
        reason = f" ({details.revocation_reason.human_friendly})" if details else ""
        return f"The {whose} was revoked{when}{reason}, " + (
            f"before the time its timestamp proves ({_day(proven)}): the signature is not valid."
            if proven
            else "and no timestamp proves the signature was made before that."
        )
    else:
        return ""
    if proven:
        return (
            f"The signer's certificate {what}, before the time its timestamp proves "
            f"({_day(proven)}): the signature is not valid."
        )
    return (
        f"The signer's certificate {what} and no timestamp proves the signature was made "
        "before that."
    )


def _tsa_name(stamp) -> str:
    try:
        return certificate_subject(stamp.signing_cert)
    except Exception:
        return ""


def _check_timestamp(result: Verification, status) -> datetime.datetime | None:
    """Report the signature's timestamp; the time it proves, or None."""
    stamp = status.timestamp_validity
    if stamp is None:
        return None
    result.timestamp_time = stamp.timestamp
    result.timestamp_authority = _tsa_name(stamp)
    result.timestamp_valid = bool(stamp.intact and stamp.valid and stamp.trusted)
    if not (stamp.intact and stamp.valid):
        result.problems.append(
            "The signature's timestamp is invalid: the timestamp token does not match the "
            "signature it stamps, or its own signature does not verify."
        )
    elif not stamp.trusted:
        result.problems.append(
            "The signature's timestamp is not trusted: the time-stamping authority does not "
            "chain to a certificate in SIGNING_TRUST_ROOTS"
            + (f" ({stamp.trust_problem_indic.name})." if stamp.trust_problem_indic else ".")
        )
    return stamp.timestamp if result.timestamp_valid else None


def _covers_the_rest(status) -> bool:
    """A signature or document timestamp covers the whole file, or all of it but validation
    data and document timestamps added after it (B-LT, B-LTA)."""
    return (
        status.coverage == SignatureCoverageLevel.ENTIRE_FILE
        and status.modification_level in (None, ModificationLevel.NONE)
    ) or (
        status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
        and status.modification_level == ModificationLevel.LTA_UPDATES
    )


def _check_document_timestamps(result: Verification, stamps, contexts: _Contexts) -> bool:
    """B-LTA: the last document timestamp must be valid, trusted and cover the whole file
    (earlier ones are covered by it). Whether it does."""
    if not stamps:
        return True
    last = stamps[-1]
    status = _outside_event_loop(validate_pdf_timestamp, last, contexts.at())
    result.document_timestamp_time = status.timestamp
    # pyHanko ends B-LTA with the validation data of the document timestamp's own TSA, in a
    # DSS update after it: validation data is the one addition allowed there too.
    covers = _covers_the_rest(status) and _padding_untouched(last)
    if not (status.intact and status.valid):
        result.problems.append(
            "The document timestamp is invalid: the file changed after it was stamped, or its "
            "signature does not verify."
        )
    elif not status.trusted:
        result.problems.append(
            "The document timestamp is not trusted: its time-stamping authority does not chain "
            "to a certificate in SIGNING_TRUST_ROOTS."
        )
    return covers and bool(status.intact and status.valid)


def _pades_level(status, contexts: _Contexts, document_timestamps) -> str:
    if status.timestamp_validity is None:
        return "B-B"
    if contexts.dss is None:
        return "B-T"
    return "B-LTA" if document_timestamps else "B-LT"


def _check_signature(
    result: Verification, signature, document_timestamps, contexts: _Contexts
) -> None:
    result.signature_name = _text(signature.sig_object.get("/Name"))
    byte_range = signature.byte_range
    if len(byte_range) == 4:  # a malformed one is the validation's to report
        result.signed_length = int(byte_range[2]) + int(byte_range[3])
    result.signature_reason = _text(signature.sig_object.get("/Reason"))
    status = _outside_event_loop(validate_pdf_signature, signature, contexts.at())
    proven = _check_timestamp(result, status)
    judged = status
    if proven is not None:
        # A certificate expired or revoked since is judged when the timestamp proves the
        # signature existed (PAdES B-T and up): that is what the timestamp is for.
        # The file's changes since the signature were judged above (`status`); they do not
        # depend on the moment, and judging them again costs a walk of every revision.
        judged = _outside_event_loop(
            validate_pdf_signature, signature, contexts.at(proven), skip_diff=True
        )
        result.judged_at, result.judged_at_timestamp = proven, True
    else:
        result.judged_at = status.validation_time
    result.pades_level = _pades_level(status, contexts, document_timestamps)
    result.signature_valid = bool(judged.bottom_line) and bool(
        status.docmdp_ok or status.modification_level is None
    )
    result.intact = bool(status.intact)
    # pyHanko's `trusted` is also False when the content changed; this one answers only
    # "does the signer's certificate chain to a trust root, valid at the time judged".
    result.trusted = judged.validation_path is not None and judged.trust_problem_indic is None
    result.signer_subject = certificate_subject(status.signing_cert)
    result.signer_certificate_sha256 = certificate_fingerprint(status.signing_cert)
    result.signing_time = status.signer_reported_dt
    # Validation data and document timestamps (B-LT, B-LTA) are the only additions allowed
    # after the signature, and then the last document timestamp must cover the rest.
    whole_file = _covers_the_rest(status)
    whole_file = _check_document_timestamps(result, document_timestamps, contexts) and whole_file
    padding_ok = _padding_untouched(signature)
    result.covers_whole_file = whole_file and padding_ok
    if not status.intact:
        result.problems.append(
            "The signature is invalid: the signed content was changed after signing."
        )
    elif not status.valid:
        result.problems.append(
            "The signature is invalid: its value does not match the signed content."
        )
    time_problem = _time_problem(judged, proven) if status.intact and status.valid else ""
    if time_problem:
        if proven is None:
            result.indeterminate = time_problem
        result.problems.append(time_problem)
    elif not result.trusted and status.intact and status.valid:
        result.problems.append(
            "The signer's certificate is not trusted: it does not chain to this server's "
            "signing certificate or a certificate in SIGNING_TRUST_ROOTS"
            + (f" ({judged.trust_problem_indic.name})." if judged.trust_problem_indic else ".")
        )
    if not whole_file:
        result.problems.append(
            "The file was changed after signing: the signature does not cover the whole file "
            "(content was appended as an incremental update, or the signed ranges were altered)."
        )
    elif not padding_ok:
        result.problems.append(
            "The file was changed after signing: bytes inside the signature field differ."
        )
    if not judged.bottom_line and not result.problems:
        result.problems.append(f"The signature is invalid ({judged.summary()}).")


def _detail(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    # asn1crypto quotes absurd lengths read from damaged DER, hundreds of digits long.
    return text if len(text) <= 160 else text[:160] + "…"


def _damaged(error: Exception) -> str:
    return f"The signature is invalid: its structure is damaged ({_detail(error)})."


def verify_pdf(data: bytes) -> Verification:
    """Check a PDF's embedded signature; never raises (bad input is a problem, not an error)."""
    result = Verification(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    if not data.startswith(PDF_MAGIC):
        result.problems.append("This is not a PDF file: it does not start with %PDF-.")
        return result
    result.is_pdf = True
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        result.encrypted = bool(reader.encrypted)
        if result.encrypted:
            result.readable = True
            result.problems.append(
                "The PDF is encrypted: records are never encrypted, so it cannot be verified."
            )
            return result
        result.readable = True
    except Exception as error:  # any parser failure means a truncated or damaged file
        result.problems.append(
            f"The PDF cannot be read: it is truncated or damaged ({_detail(error)})."
        )
        return result
    try:
        embedded = reader.embedded_signatures
        signatures = [s for s in embedded if s.sig_object_type != "/DocTimeStamp"]
        document_timestamps = [s for s in embedded if s.sig_object_type == "/DocTimeStamp"]
    except Exception as error:
        # The document opened, so a failure here is in a signature field's /Contents (bad
        # hex, a CMS blob that does not parse): a damaged signature, not a damaged file.
        result.signed = True
        result.problems.append(_damaged(error))
        return result
    result.signature_count = len(signatures)
    result.signed = bool(signatures)
    if not signatures:
        result.problems.append("The PDF has no digital signature.")
        return result
    if len(signatures) > 1:
        result.problems.append(
            f"The PDF has {len(signatures)} signatures; a record carries exactly one."
        )
    roots, root_problems = trust_roots()
    try:
        _check_signature(result, signatures[0], document_timestamps, _Contexts(reader, roots))
    except Exception as error:
        # A damaged /ByteRange or /Contents makes pyHanko raise (PdfReadError, ValueError,
        # even AttributeError) instead of returning a status: that is an invalid signature.
        result.signature_valid = result.intact = result.trusted = False
        result.covers_whole_file = result.timestamp_valid = False
        result.indeterminate = ""
        result.problems.append(_damaged(error))
    if not result.trusted:
        result.problems.extend(root_problems)
    return result


# --- Verifying against the stored records -------------------------------------------------


@dataclass(frozen=True)
class RecordMatch:
    """A stored record's row in today's database, as the verification report shows it.

    What the record says (its sign-offs among the rest) is `RecordVerification.content`,
    read from the file; this row is only where the database keeps it."""

    record_id: str
    number: int
    deployment_id: int
    deployment: str
    team: str
    deployment_state: str
    state_digest: str
    created_at: datetime.datetime
    pades_signed: bool
    certificate_subject: str


# RecordVerification.database: what today's database says beside the file.
DATABASE_AGREES = "agrees"
DATABASE_DIFFERS = "differs"
DATABASE_PREDATES = "predates"  # no embedded content to compare with: shown from the database
DATABASE_NONE = "none"  # no stored record is, or is named by, this file
DATABASE_UNCHECKED = "unchecked"  # the file's content is not vouched for: nothing to compare
DATABASE_DIFFERS_TITLE = "database differs from the signed record"


@dataclass
class RecordVerification:
    pdf: Verification
    verdict: str
    basis: str = ""
    record: RecordMatch | None = None
    claimed_record_id: str = ""
    claimed_record: RecordMatch | None = None
    problems: list[str] = field(default_factory=list)
    # What the record says: from its embedded files ("file"), or for a record that predates
    # them, from the database, marked so ("database"); None when neither is there.
    content: RecordContent | None = None
    content_basis: str = ""
    database: str = ""
    database_differences: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"

    @property
    def indeterminate(self) -> bool:
        """Neither valid nor invalid: the file is the stored record, intact, but its signer's
        certificate expired or was revoked and no timestamp proves the signature came first."""
        return (
            not self.valid
            and self.record is not None
            and bool(self.pdf.indeterminate)
            and all(problem == self.pdf.indeterminate for problem in self.problems)
        )

    @property
    def database_agrees(self) -> bool:
        return self.database == DATABASE_AGREES

    @property
    def database_differs(self) -> bool:
        return self.database == DATABASE_DIFFERS

    @property
    def is_record(self) -> bool:
        """Is, claims to be, or was signed as something worth a full report; a readable PDF
        that is none of these is simply not a record."""
        return bool(
            self.record
            or self.claimed_record_id
            or self.pdf.signed
            or (self.content and self.content.from_file)
        )

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "valid": self.valid,
            "indeterminate": self.indeterminate,
            "basis": self.basis,
            "problems": self.problems,
            "pdf": self.pdf.as_dict(),
            "content": self.content.as_dict() if self.content else None,
            "content_basis": self.content_basis,
            "database": {
                "status": self.database or DATABASE_NONE,
                "agrees": self.database_agrees,
                "differences": self.database_differences,
            },
            "record": _match_dict(self.record),
            "claimed_record_id": self.claimed_record_id or None,
            "claimed_record": _match_dict(self.claimed_record),
        }


def _match_dict(match: RecordMatch | None) -> dict | None:
    if match is None:
        return None
    data = asdict(match)
    data["created_at"] = match.created_at.isoformat()
    return data


def _record_match(record) -> RecordMatch:
    return RecordMatch(
        record_id=str(record.record_id),
        number=record.number,
        deployment_id=record.deployment_id,
        deployment=str(record.deployment),
        team=record.deployment.team.name,
        deployment_state=record.deployment_state,
        state_digest=record.state_digest,
        created_at=record.created_at,
        pades_signed=record.pades_signed,
        certificate_subject=record.certificate_subject,
    )


def claimed_record_id(data: bytes, verification: Verification) -> str:
    """The record id the PDF names (signature /Name, metadata, or the printed "Record <uuid>"),
    or "". Only a few pages are read: the id is on every page."""
    for text in (verification.signature_name, verification.signature_reason):
        found = UUID_RE.search(text)
        if found:
            return found.group(0).lower()
    if verification.bad_input:
        return ""
    try:
        import pypdf

        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        metadata = reader.metadata or {}
        for value in metadata.values():
            found = UUID_RE.search(str(value))
            if found:
                return found.group(0).lower()
        pages = list(reader.pages)
        for page in [*pages[:2], *pages[-1:]][:3]:
            try:
                found = RECORD_ID_RE.search(page.extract_text() or "")
            except Exception:  # a changed byte can break one page's stream; try the next
                continue
            if found:
                return found.group(1).lower()
    except Exception:  # the id is a hint for the report; an unreadable one is just absent
        log.debug("could not read a record id from the PDF", exc_info=True)
    return ""


def _stored(**lookup):
    from signoff.records.models import SignedRecord

    return (
        SignedRecord.objects.select_related("deployment__team", "deployment__template")
        .filter(**lookup)
        .first()
    )


def verify_record(data: bytes) -> RecordVerification:
    """verify_pdf plus the stored records: is this file a record this server stored, unaltered?
    And, separately: what does the record say, and does today's database still agree?

    The verdict is "valid" only when the file is byte for byte a stored record, its embedded
    content matches the state digest it states and, if that record was signed, its PAdES
    signature is valid, trusted and covers the whole file. Otherwise it is the first precise
    reason it is not. The record's content is read from the file (`content`); the database is
    compared with it apart (`database`, `database_differences`) and never shown as content,
    except for a record that predates embedded content, whose content is marked as the
    database's.
    """
    pdf = verify_pdf(data)
    if pdf.bad_input:
        return RecordVerification(pdf=pdf, verdict=pdf.problems[0], problems=list(pdf.problems))
    # A signed record's content is read from the revision its signature covers: anything
    # appended after signing cannot change what the record says.
    embedded = read_content(data, signed_length=pdf.signed_length or None)
    result, stored = _judge_file(data, pdf, embedded)
    _describe_content(result, stored, embedded)
    return result


def _judge_file(data: bytes, pdf: Verification, embedded: EmbeddedContent):
    """The verdict on the file itself, and the stored record it is or names (or None)."""
    problems = [*pdf.problems, *embedded.problems]
    stored = _stored(sha256=pdf.sha256)
    if stored is not None:
        match = _record_match(stored)
        if not stored.pades_signed:
            problems = [p for p in problems if p != "The PDF has no digital signature."]
            if problems:
                return RecordVerification(
                    pdf=pdf, verdict=problems[0], record=match, problems=problems
                ), stored
            return RecordVerification(
                pdf=pdf,
                verdict="valid",
                basis=(
                    "Identical to the stored copy (same SHA-256). This record was stored "
                    "without a PAdES signature (no signing key was configured), so the "
                    "SHA-256 match with the server's copy is the only proof."
                ),
                record=match,
                problems=problems,
            ), stored
        if pdf.ok and not embedded.problems:
            return RecordVerification(
                pdf=pdf,
                verdict="valid",
                basis=(
                    "The PAdES signature is valid, trusted and covers the whole file, and the "
                    "file is identical to the stored copy (same SHA-256)."
                ),
                record=match,
                problems=problems,
            ), stored
        return RecordVerification(
            pdf=pdf,
            verdict=problems[0] if problems else "The signature does not verify.",
            record=match,
            problems=problems,
        ), stored
    named = embedded.content.record_id if embedded.content else ""
    claimed = named.lower() if UUID_RE.fullmatch(named) else claimed_record_id(data, pdf)
    claimed_record = None
    if claimed:
        stored = _stored(record_id=claimed)
        if stored is not None:
            claimed_record = _record_match(stored)
            verdict = (
                f"It claims to be record {claimed} (record {stored.number} of "
                f"{claimed_record.deployment}), but it differs from the stored copy."
            )
        else:
            verdict = f"It claims to be record {claimed}, which this server never stored."
    elif pdf.ok:
        verdict = "The signature is valid, but this PDF is not a record stored on this server."
    else:
        verdict = "This PDF is not a record stored on this server (no stored record matches it)."
    if problems and claimed:
        verdict = f"{verdict} {problems[0]}"
    return RecordVerification(
        pdf=pdf,
        verdict=verdict,
        claimed_record_id=claimed,
        claimed_record=claimed_record,
        problems=[*problems, "No stored record has this file's SHA-256."],
    ), stored


def _vouched(result: RecordVerification) -> bool:
    """Whether something other than the file itself stands behind what it says: a valid,
    trusted signature over the revision the content is read from, or (a record stored
    without a signature) being byte for byte the stored copy."""
    pdf = result.pdf
    if pdf.signed:
        return pdf.signature_valid and pdf.intact and pdf.trusted
    return result.record is not None


def _describe_content(result: RecordVerification, stored, embedded: EmbeddedContent) -> None:
    """What the record says, and separately whether today's database agrees with it."""
    vouched = _vouched(result)
    if embedded.content is not None:
        result.content = embedded.content
        if not vouched:
            result.content_basis = (
                "Read from the file, but nothing vouches for it: "
                + (
                    "its signature does not verify"
                    if result.pdf.signed
                    else "it carries no signature and is not a stored copy"
                )
                + ". It was not compared with the database."
            )
            result.database = DATABASE_UNCHECKED
            return
        if result.pdf.signed:
            result.content_basis = (
                "Read from the record's embedded files, in the bytes its PAdES signature "
                "covers; the embedded snapshot's SHA-256 is the state digest it states."
            )
        else:
            result.content_basis = (
                "Read from the record's embedded files; the file is the stored copy (same "
                "SHA-256) and the embedded snapshot's SHA-256 is the state digest it states."
            )
        if stored is None:
            result.database = DATABASE_NONE
            return
    elif stored is not None and not embedded.present:
        result.content = content_from_database(stored)
        result.content_basis = PREDATES
        if not vouched:
            result.database = DATABASE_UNCHECKED
            return
    else:
        result.database = DATABASE_NONE
        return
    differences = database_differences(result.content, stored, metadata=embedded.metadata)
    result.database_differences = differences
    if differences:
        result.database = DATABASE_DIFFERS
    else:
        result.database = DATABASE_AGREES if result.content.from_file else DATABASE_PREDATES
