"""Verifying a record against the stored copies: verify_record, its command and its page."""

import io
import json
import re
import uuid
from io import StringIO

import pypdf
import pytest
import weasyprint
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from signoff.records.models import SignedRecord
from signoff.records.signing import sign_pdf, verify_record
from tests.signoff_helpers import approve_all, signers_for

URL = "/records/verify/"


@pytest.fixture(autouse=True)
def configured(settings, cert_files, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SIGNING_KEY_FILE, settings.SIGNING_CERT_FILE = cert_files
    settings.SIGNING_KEY_PASSWORD = ""
    settings.SIGNING_PKCS12_FILE = None
    settings.SIGNING_TRUST_ROOTS = []
    return settings


def record_pdf(record_id: uuid.UUID, text: str = "payments-api 2.4.0") -> bytes:
    return weasyprint.HTML(
        string=f"<h1>Production-readiness record</h1><p>{text}</p><p>Record {record_id}</p>"
    ).write_pdf()


def store(deployment, data: bytes, *, record_id, pades_signed=True, signoffs=()) -> SignedRecord:
    record = SignedRecord(
        deployment=deployment,
        record_id=record_id,
        number=1,
        deployment_state=deployment.state,
        state_digest="d" * 64,
        sha256=verify_record(data).pdf.sha256,
        size_bytes=len(data),
        page_size="A4",
        pades_signed=pades_signed,
        created_at=timezone.now(),
    )
    record.file.save(f"record-{record_id}.pdf", ContentFile(data), save=False)
    record.save()
    record.signoffs.set(signoffs)
    return record


@pytest.fixture
def approved(deployment, team):
    approve_all(deployment, signers_for(team))
    return deployment


@pytest.fixture
def stored(approved):
    """A signed record of an approved deployment, stored as the generation task stores it."""
    record_id = uuid.uuid4()
    data = sign_pdf(
        record_pdf(record_id), reason="Production-readiness record", location="test"
    ).data
    record = store(approved, data, record_id=record_id, signoffs=list(approved.signoffs.all()))
    return record, data


def changed_byte(data: bytes) -> bytes:
    found = re.search(rb"/ByteRange\s*\[\s*\d+\s+(\d+)", data)
    index = int(found.group(1)) // 2
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


def encrypted(data: bytes) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def run_command(path, *args):
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_record", str(path), *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), ""


def upload(client, data: bytes, name: str = "record.pdf", **extra):
    file = SimpleUploadedFile(name, data, content_type="application/pdf")
    return client.post(URL, {"file": file}, **extra)


# --- verify_record ------------------------------------------------------------------------


def test_a_stored_signed_record_is_valid_with_its_deployment_and_signoffs(stored, approved):
    record, data = stored

    result = verify_record(data)

    assert result.valid, result.verdict
    assert result.pdf.ok
    assert result.record.record_id == str(record.record_id)
    assert result.record.deployment_id == approved.pk
    assert result.record.deployment == str(approved)
    # This PDF embeds no content (as records made before it did): the database's, marked so.
    assert result.content.source == "database"
    assert result.database == "predates"
    assert [line.role for line in result.content.signatures] == [
        "Tech Lead",
        "Security",
        "DevOps",
        "Product",
    ]
    assert {line.meaning_label for line in result.content.signatures} == {"approved"}
    assert "PAdES signature is valid" in result.basis


def test_a_record_stored_without_a_signature_is_valid_by_its_sha256(deployment):
    record_id = uuid.uuid4()
    data = record_pdf(record_id)
    store(deployment, data, record_id=record_id, pades_signed=False)

    result = verify_record(data)

    assert result.valid
    assert not result.pdf.signed
    assert "without a PAdES signature" in result.basis
    assert result.problems == []


def test_a_changed_copy_claims_its_record_but_differs(stored):
    record, data = stored

    result = verify_record(changed_byte(data))

    assert not result.valid
    assert result.record is None
    assert result.claimed_record_id == str(record.record_id)
    assert result.claimed_record.number == 1
    assert f"claims to be record {record.record_id}" in result.verdict
    assert "differs from the stored copy" in result.verdict


def test_a_changed_unsigned_record_is_found_by_its_printed_id(deployment):
    record_id = uuid.uuid4()
    store(deployment, record_pdf(record_id), record_id=record_id, pades_signed=False)

    result = verify_record(record_pdf(record_id, text="payments-api 9.9.9"))

    assert not result.valid
    assert result.claimed_record_id == str(record_id)
    assert "differs from the stored copy" in result.verdict


def test_the_record_id_in_the_signature_name_is_read_too(deployment):
    record_id = uuid.uuid4()
    source = weasyprint.HTML(string="<p>A record without its id printed</p>").write_pdf()
    store(deployment, source, record_id=record_id, pades_signed=False)
    data = sign_pdf(source, reason="test", name=f"readiness-record-{record_id}").data

    result = verify_record(data)

    assert result.claimed_record_id == str(record_id)
    assert "differs from the stored copy" in result.verdict


def test_a_signed_pdf_that_was_never_stored_is_not_a_record(db):
    data = sign_pdf(record_pdf(uuid.uuid4()), reason="test").data

    result = verify_record(data)

    assert not result.valid
    assert result.pdf.ok
    assert "never stored" in result.verdict


# --- manage.py verify_record --------------------------------------------------------------


def test_command_reports_a_valid_record_and_exits_0(stored, approved, tmp_path):
    record, data = stored
    path = tmp_path / "record.pdf"
    path.write_bytes(data)

    code, output, _ = run_command(path)

    assert code == 0
    assert "Verdict: VALID" in output
    assert re.search(r"signer trusted: +yes", output)
    assert re.search(r"signed content intact: +yes", output)
    assert re.search(r"nothing added or changed after: +yes", output)
    assert str(record.record_id) in output
    assert str(approved) in output
    assert "Tech Lead: Tech-Lead Signer, approved" in output


def test_command_json_output(stored, approved, tmp_path):
    _, data = stored
    path = tmp_path / "record.pdf"
    path.write_bytes(data)

    code, output, _ = run_command(path, "--format", "json")

    report = json.loads(output)
    assert code == 0
    assert report["verdict"] == "valid"
    assert report["pdf"]["trusted"] is True
    assert report["record"]["deployment_id"] == approved.pk
    assert len(report["content"]["signatures"]) == 4
    assert report["content"]["source"] == "database"
    assert report["database"]["status"] == "predates"


def test_command_exits_1_on_a_changed_record(stored, tmp_path):
    _, data = stored
    path = tmp_path / "record.pdf"
    path.write_bytes(changed_byte(data))

    code, output, error = run_command(path)

    assert code == 1
    assert "Verdict: NOT VALID" in output
    assert re.search(r"signed content intact: +NO", output)
    assert "changed after signing" in output
    assert "not valid" in error


@pytest.mark.parametrize(
    "content",
    [b"hello, not a pdf", b"%PDF-1.7\n" + b"garbage " * 100, b""],
    ids=["garbage", "damaged", "empty"],
)
def test_command_exits_2_on_input_that_is_not_a_readable_pdf(db, tmp_path, content):
    path = tmp_path / "input.pdf"
    path.write_bytes(content)

    code, _, error = run_command(path)

    assert code == 2
    assert "not valid" in error


def test_command_exits_2_on_a_missing_file(db, tmp_path):
    code, _, error = run_command(tmp_path / "absent.pdf")

    assert code == 2
    assert "cannot read" in error


# --- The verification page ----------------------------------------------------------------


def test_url_name():
    assert reverse("record_verify") == URL


def test_anonymous_is_sent_to_login_when_the_page_is_not_public(client, settings):
    settings.RECORD_VERIFY_PUBLIC = False

    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_member_sees_the_form(member_client):
    response = member_client.get(URL)

    assert response.status_code == 200
    assert b'type="file"' in response.content
    assert b'enctype="multipart/form-data"' in response.content


def test_upload_of_a_stored_record_is_valid_with_deployment_and_signoffs(
    member_client, stored, approved, django_assert_max_num_queries
):
    record, data = stored

    with django_assert_max_num_queries(8):
        response = upload(member_client, data)

    content = response.content.decode()
    assert response.status_code == 200
    assert "✓ Valid" in content
    assert f'href="{reverse("deployment_detail", args=[approved.pk])}"' in content
    assert str(record.record_id) in content
    for name in ("Tech-Lead Signer", "Security Signer", "Devops Signer", "Product Signer"):
        assert name in content
    assert record.sha256 in content


def test_upload_of_a_record_with_one_changed_byte_is_not_valid(member_client, stored):
    _, data = stored

    response = upload(member_client, changed_byte(data))

    content = response.content.decode()
    assert response.status_code == 200
    assert "✗ Not valid" in content
    assert "differs from the stored copy" in content
    assert "changed after signing" in content


def test_upload_of_a_record_stored_without_a_signature_says_so(member_client, deployment):
    record_id = uuid.uuid4()
    data = record_pdf(record_id)
    store(deployment, data, record_id=record_id, pades_signed=False)

    response = upload(member_client, data)

    content = response.content.decode()
    assert response.status_code == 200
    assert "✓ Valid" in content
    assert "stored without a PAdES signature" in content


def test_a_member_of_another_team_sees_the_verdict_but_nothing_from_the_database(
    outsider_client, stored, approved
):
    _, data = stored

    response = upload(outsider_client, data)

    content = response.content.decode()
    assert response.status_code == 200
    assert "✓ Valid" in content
    # This record predates embedded content: its deployment is known to the database only.
    assert str(approved) not in content
    assert reverse("deployment_detail", args=[approved.pk]) not in content


def test_htmx_upload_answers_with_the_panel_only(member_client, stored):
    _, data = stored

    response = upload(member_client, data, HTTP_HX_REQUEST="true")

    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<div id="verify-panel">')
    assert "<html" not in content
    assert "✓ Valid" in content


def _bad_inputs():
    signed_source = record_pdf(uuid.UUID(int=7))
    return {
        "garbage": (b"\x00\x01garbage" * 50, "not a PDF"),
        "not-a-pdf-named-pdf": (b"<html>surely a pdf</html>", "not a PDF"),
        "truncated": (signed_source[: len(signed_source) // 2], "truncated or damaged"),
        "encrypted": (encrypted(signed_source), "encrypted"),
        "unsigned-non-record": (
            weasyprint.HTML(string="<p>Holiday photos</p>").write_pdf(),
            "not a record",
        ),
    }


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_uploads_are_400_with_a_message(member_client, case):
    data, message = BAD_INPUTS[case]

    response = upload(member_client, data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert "This file cannot be verified" in response.content.decode()


def test_an_empty_upload_is_400(member_client):
    response = upload(member_client, b"")

    assert response.status_code == 400
    assert "The file is empty." in response.content.decode()


def test_a_missing_file_field_is_400(member_client):
    response = member_client.post(URL, {})

    assert response.status_code == 400
    assert "Choose the PDF to verify." in response.content.decode()


def test_a_file_over_the_limit_is_400_before_it_is_read(member_client, stored, settings):
    _, data = stored
    settings.RECORD_VERIFY_MAX_BYTES = 1000

    response = upload(member_client, data)

    assert response.status_code == 400
    assert "the limit is 1000" in response.content.decode()
