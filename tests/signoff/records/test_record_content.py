"""A record says what it holds in the signed file itself, and verification reads it from there.

The record embeds its snapshot (the canonical JSON whose SHA-256 is the state digest) and its
context (id, time, audit chain head) before it is signed; `verify_record` shows that content
from the file and, apart, whether today's database agrees: a row rewritten past the
application is reported as "database differs from the signed record", never printed as what
the record says (issue 15, item 5).
"""

import dataclasses
import hashlib
import io
import json
import re
import uuid
from io import StringIO

import pypdf
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from pyhanko.pdf_utils.embed import EmbeddedFileObject, FileSpec, embed_file
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from readiness.audit.append_only import append_only_reverse_sql
from readiness.audit.models import AuditEvent
from signoff.records import content as record_content
from signoff.records import pdf, signing
from signoff.records.models import SignedRecord
from signoff.records.services import record_generate
from signoff.records.snapshot import record_snapshot
from signoff.signatures.models import SignOff
from signoff.signatures.selectors import digest_of
from tests.signoff_helpers import approve_all, signers_for

URL = "/records/verify/"
MEASURED_FAULT = (
    "UPDATE signoff_signoff SET meaning = 'reject', printed_name = 'Mallory', comment = 'no' "
    "WHERE id = %s"
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.SIGNING_TRUST_ROOTS = []
    settings.SIGNING_PKCS12_FILE = None
    settings.SIGNING_KEY_PASSWORD = ""
    # The default paths under DATA_DIR, absent: no signing key (signing_key sets one).
    settings.SIGNING_KEY_FILE = tmp_path / "signing" / "key.pem"
    settings.SIGNING_CERT_FILE = tmp_path / "signing" / "cert.pem"
    return settings


@pytest.fixture
def signing_key(media, cert_files):
    media.SIGNING_KEY_FILE, media.SIGNING_CERT_FILE = cert_files
    return cert_files


@pytest.fixture
def approved(deployment, team):
    approve_all(deployment, signers_for(team))
    return deployment


@pytest.fixture
def record(approved, signing_key) -> SignedRecord:
    """The signed record the worker stores when the deployment is approved."""
    stored = record_generate(deployment_id=approved.pk)
    assert stored.pades_signed
    return stored


def product_signoff(deployment) -> SignOff:
    return SignOff.objects.get(deployment=deployment, role__slug="product")


def raw(sql: str, params=(), *, tables=("signoff_signoff",)) -> None:
    """Tamper as someone with database access would, past the application and the triggers
    (tests/readiness/audit/test_audit.py does the same for the audit tables)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # a superuser can switch user triggers off
            cursor.execute("SET session_replication_role = replica")
        else:  # the file's owner can drop them (this test's transaction puts them back)
            for table in tables:
                for statement in append_only_reverse_sql(table, "sqlite"):
                    cursor.execute(statement)
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")


def run_command(path, *args) -> tuple[int, str, str]:
    out = StringIO()
    try:
        call_command("verify_record", str(path), *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), ""


def sections(output: str) -> tuple[str, str]:
    """(what the record says, what today's database says) of the command's text report."""
    says = output.index("What the signed record says")
    database = output.index("Today's database:")
    return output[says:database], output[database:]


def attachments(data: bytes) -> dict[str, bytes]:
    return {
        name: copies[0] for name, copies in pypdf.PdfReader(io.BytesIO(data)).attachments.items()
    }


def upload(client, data: bytes):
    file = SimpleUploadedFile("record.pdf", data, content_type="application/pdf")
    return client.post(URL, {"file": file})


def test_the_signed_record_embeds_its_snapshot_whose_sha256_is_the_state_digest(record):
    data = record.file.read()

    embedded = attachments(data)

    assert set(embedded) == {
        "record-snapshot.json",
        "record-context.json",
        "record-audit-trail.json",
        "record-probe-results.json",
    }
    snapshot = embedded["record-snapshot.json"]
    assert hashlib.sha256(snapshot).hexdigest() == record.state_digest
    assert json.loads(snapshot)["deployment"]["id"] == record.deployment_id
    context = json.loads(embedded["record-context.json"])
    assert context["record_id"] == str(record.record_id)
    assert context["state_digest"] == record.state_digest
    head = AuditEvent.objects.filter(deployment_id=record.deployment_id).order_by("-seq").first()
    # The head when the record was rendered: the record.created event came after it.
    assert head.action == "record.created"
    assert context["audit"]["chain"] == f"deployment:{record.deployment_id}"
    assert context["audit"]["seq"] == head.seq - 1
    # The files are part of the first revision, the one the signature covers.
    first_revision = data[: data.index(b"%%EOF") + len(b"%%EOF")]
    assert attachments(first_revision)["record-snapshot.json"] == snapshot


def test_the_state_digest_is_the_sha256_of_the_embedded_bytes(approved):
    snapshot = record_snapshot(approved, record_id="r")

    assert hashlib.sha256(snapshot.canonical_json).hexdigest() == snapshot.state_digest
    # The snapshot is the same canonical form sign-offs use: unchanged for existing records.
    assert digest_of(json.loads(snapshot.canonical_json)) == snapshot.state_digest


def test_drafts_embed_nothing(approved):
    data = pdf.render_record(record_snapshot(approved, record_id="DRAFT"), draft=True)

    assert attachments(data) == {}


def test_an_untampered_record_says_what_it_holds_and_the_database_agrees(record, tmp_path):
    path = tmp_path / "record.pdf"
    path.write_bytes(record.file.read())

    code, output, _ = run_command(path)

    assert code == 0, output
    assert "Verdict: VALID" in output
    says, database = sections(output)
    assert "read from the file" in says
    assert "the embedded snapshot's SHA-256 is the state digest it states" in says
    assert f"record {record.record_id}" in says
    assert f"state Approved, state digest {record.state_digest}" in says
    for role, name in (
        ("Tech Lead", "Tech-Lead Signer"),
        ("Security", "Security Signer"),
        ("DevOps", "Devops Signer"),
        ("Product", "Product Signer"),
    ):
        assert re.search(rf"{role}: {name}, approved, \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC", says)
    head = AuditEvent.objects.get(deployment_id=record.deployment_id, action="record.created")
    previous = AuditEvent.objects.get(deployment_id=record.deployment_id, seq=head.seq - 1)
    assert (
        f"audit chain head at generation: deployment:{record.deployment_id}, position "
        f"{previous.seq}, hash {previous.hash}" in says
    )
    assert "Database agrees with the signed record." in database
    assert "differs" not in output


def test_the_measured_fault_shows_the_real_signer_and_reports_the_database(record, tmp_path):
    """`UPDATE signoff_signoff SET meaning='reject', printed_name='Mallory'` (triggers off)
    made verify_record print "Product: Mallory, rejected" beside a PDF showing the real
    signer. The record's content now comes from the file; the database is reported apart."""
    product = product_signoff(record.deployment)
    raw(MEASURED_FAULT, [product.pk])
    path = tmp_path / "record.pdf"
    path.write_bytes(record.file.read())

    code, output, error = run_command(path)

    says, database = sections(output)
    assert "Verdict: VALID" in output  # the file is still the authentic record
    assert re.search(r"Product: Product Signer, approved, ", says)
    assert "Mallory" not in says and "rejected" not in says
    assert "Database differs from the signed record:" in database
    assert (
        "Product, signature 1, printed name: the signed record says 'Product Signer', "
        "the database says 'Mallory'" in database
    )
    assert (
        "Product, signature 1, meaning: the signed record says 'approve', "
        "the database says 'reject'" in database
    )
    assert "Product, signature 1, comment: the signed record says nothing" in database
    assert code == 3
    assert "database differs from the signed record" in error


def test_the_measured_fault_in_json_keeps_content_and_database_apart(record, tmp_path):
    raw(MEASURED_FAULT, [product_signoff(record.deployment).pk])
    path = tmp_path / "record.pdf"
    path.write_bytes(record.file.read())

    code, output, _ = run_command(path, "--format", "json")

    report = json.loads(output)
    assert code == 3 and report["valid"] is True
    assert report["content"]["source"] == "file"
    product = next(line for line in report["content"]["signatures"] if line["role"] == "Product")
    assert product["printed_name"] == "Product Signer" and product["meaning"] == "approve"
    assert report["database"]["status"] == "differs" and report["database"]["agrees"] is False
    assert len(report["database"]["differences"]) == 3
    assert "Mallory" not in json.dumps(report["content"])


def test_the_verify_page_shows_the_file_and_the_database_apart(
    member_client, record, django_assert_max_num_queries
):
    raw(MEASURED_FAULT, [product_signoff(record.deployment).pk])

    with django_assert_max_num_queries(8):
        response = upload(member_client, record.file.read())

    content = response.content.decode()
    assert response.status_code == 200
    assert "✓ Valid" in content
    says = content[content.index("What the record says") : content.index("Today's database")]
    assert "Product Signer" in says and "Mallory" not in says
    differs = content[content.index('id="database-differs"') :]
    assert "Database differs from the signed record:" in differs
    assert "the database says &#x27;Mallory&#x27;" in differs


def test_the_verify_page_says_the_database_agrees(member_client, record):
    response = upload(member_client, record.file.read())

    content = response.content.decode()
    assert 'id="database-agrees"' in content
    assert "Database agrees with the signed record." in content
    assert "database-differs" not in content
    assert str(record.record_id) in content


def test_an_edited_audit_head_is_a_database_difference(record, tmp_path):
    data = record.file.read()
    context = json.loads(attachments(data)["record-context.json"])
    head = context["audit"]
    raw(
        "UPDATE signoff_auditevent SET hash = %s WHERE deployment_id = %s AND seq = %s",
        ["f" * 64, record.deployment_id, head["seq"]],
        tables=("signoff_auditevent",),
    )

    result = signing.verify_record(data)

    assert result.valid and result.database == "differs"
    event = AuditEvent.objects.get(deployment_id=record.deployment_id, seq=head["seq"])
    assert result.database_differences == [
        f"the signed record prints deployment:{record.deployment_id} position {head['seq']} as "
        f"{head['head']}, but today's trail holds {'f' * 64} there (event #{event.pk}): the "
        "trail was rewritten since the record was made"
    ]


def test_a_sign_off_removed_from_the_record_in_the_database_is_named(record):
    product = product_signoff(record.deployment)
    raw(
        "DELETE FROM signoff_signedrecord_signoffs WHERE signoff_id = %s",
        [product.pk],
        tables=("signoff_signedrecord_signoffs",),
    )

    result = signing.verify_record(record.file.read())

    assert result.database == "differs"
    assert result.database_differences == [
        "sign-offs the record holds: the signed record says 'Tech Lead 1, Security 1, "
        "DevOps 1, Product 1', the database says 'Tech Lead 1, Security 1, DevOps 1'"
    ]


def test_a_record_stored_without_a_signature_shows_its_content_too(approved, media):
    stored = record_generate(deployment_id=approved.pk)
    assert not stored.pades_signed

    result = signing.verify_record(stored.file.read())

    assert result.valid
    assert result.content.from_file and result.database == "agrees"
    assert "the file is the stored copy" in result.content_basis


def test_a_snapshot_that_is_not_the_stated_digest_makes_the_record_invalid(approved, signing_key):
    record_id = uuid.uuid4()
    snapshot = record_snapshot(approved, record_id=str(record_id))
    forged = snapshot.canonical_json.replace(b"Product Signer", b"Mallory")
    rendered = pdf.render_record(dataclasses.replace(snapshot, canonical_json=forged), draft=False)
    data = signing.sign_pdf(rendered, reason="test").data
    stored = SignedRecord(
        deployment=approved,
        record_id=record_id,
        number=1,
        deployment_state=approved.state,
        state_digest=snapshot.state_digest,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        page_size="A4",
        pades_signed=True,
        created_at=timezone.now(),
    )
    stored.file.save("forged.pdf", ContentFile(data), save=False)
    stored.save()

    result = signing.verify_record(data)

    assert result.pdf.ok and result.record is not None
    assert not result.valid
    assert "is not the state digest the record states" in result.verdict


def test_content_appended_after_signing_is_not_read(record):
    data = record.file.read()
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    forged = json.loads(attachments(data)["record-snapshot.json"])
    for line in forged["signoffs"]:
        line["printed_name"] = "Mallory"
    embed_file(
        writer,
        FileSpec(
            file_spec_string="record-snapshot.json",
            embedded_data=EmbeddedFileObject.from_file_data(
                writer, data=json.dumps(forged).encode()
            ),
        ),
    )
    out = io.BytesIO()
    writer.write(out)

    result = signing.verify_record(out.getvalue())

    assert not result.valid
    assert not result.pdf.covers_whole_file
    assert result.content.from_file
    assert "Mallory" not in {line.printed_name for line in result.content.signatures}


def test_the_content_module_reads_nothing_from_a_pdf_without_embedded_files():
    data = pdf.render_bare_table(rows=2)

    found = record_content.read_content(data)

    assert not found.present and found.content is None and found.problems == []
