"""The signed record is PDF/A-3b and tagged, and carries its evidence inside (issue 16, item 3).

Read with pypdf and poppler (pdfinfo, pdfsig) as an archivist or an auditor would: the XMP
identification, the output intent, the structure tree, the associated files and the
signature; then the evidence files themselves, whose audit events must hash to the head the
record prints; and `verify_record --extract`, which writes them out and refuses a name that
would leave the folder.
"""

import hashlib
import io
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ElementTree
from io import StringIO

import pypdf
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from readiness.audit.models import AuditEvent
from readiness.audit.services import audit_record
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeResult, ProbeRun
from signoff.records import pdf
from signoff.records.evidence import AUDIT_FILE, PROBE_FILE, record_evidence
from signoff.records.models import SignedRecord
from signoff.records.services import record_generate
from signoff.records.snapshot import MAX_FINDINGS_PER_RESULT, record_snapshot
from tests.signoff_helpers import approve_all, signers_for

pytestmark = pytest.mark.django_db

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
}
EMBEDDED = {"record-snapshot.json", "record-context.json", AUDIT_FILE, PROBE_FILE}
# What the evidence file adds to each event beside the fields its hash covers.
NOT_HASHED = {"id", "actor", "actor_name", "hash"}
# More failing findings than the pages list, so the evidence file must hold the rest.
FINDINGS = MAX_FINDINGS_PER_RESULT + 5


@pytest.fixture(autouse=True)
def configured(settings, cert_files, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.SIGNING_KEY_FILE, settings.SIGNING_CERT_FILE = cert_files
    settings.SIGNING_KEY_PASSWORD = ""
    settings.SIGNING_PKCS12_FILE = None
    settings.SIGNING_TRUST_ROOTS = []
    return settings


def add_probe_run(deployment) -> ProbeRun:
    """A finished run over two regions; Encryption's probes fail with FINDINGS resources."""
    run = ProbeRun.objects.create(
        deployment=deployment, state="succeeded", regions=["us-east-1", "eu-west-1"]
    )
    results = []
    for probe, item in probe_runs.probes_for(deployment):
        failing = item.title == "Encryption"
        findings = [
            {"id": f"arn:aws:s3:::bucket-{n}", "status": "fail", "reason": "encryption off"}
            for n in range(FINDINGS if failing else 0)
        ]
        results += [
            ProbeResult(
                run=run,
                item=item,
                probe_key=probe.key,
                region=region,
                section_title=probe.section,
                item_title=probe.item,
                title=probe.title,
                severity=str(probe.severity),
                state="done",
                status="fail" if failing else "pass",
                summary=f"{len(findings)} unencrypted" if failing else "all compliant",
                findings=findings,
            )
            for region in run.regions
        ]
    ProbeResult.objects.bulk_create(results)
    return run


@pytest.fixture
def approved(deployment, team):
    add_probe_run(deployment)
    approve_all(deployment, signers_for(team))
    return deployment


@pytest.fixture
def record(approved) -> SignedRecord:
    stored = record_generate(deployment_id=approved.pk)
    assert stored.pades_signed
    return stored


@pytest.fixture
def record_file(record, tmp_path):
    path = tmp_path / "record.pdf"
    path.write_bytes(record.file.read())
    return path


def first_revision(data: bytes) -> bytes:
    """What WeasyPrint wrote, before the signature's incremental update."""
    return data[: data.index(b"%%EOF") + len(b"%%EOF")]


def catalog(data: bytes):
    return pypdf.PdfReader(io.BytesIO(data)).trailer["/Root"]


def xmp_property(data: bytes, prefix: str, name: str) -> str | None:
    """An XMP property, written as an attribute of an rdf:Description or as its child."""
    packet = catalog(data)["/Metadata"].get_object().get_data()
    root = ElementTree.fromstring(
        packet[packet.index(b"<x:xmpmeta") : packet.rindex(b"</x:xmpmeta>") + 12]
    )
    key = f"{{{NS[prefix]}}}{name}"
    for description in root.iter(f"{{{NS['rdf']}}}Description"):
        if key in description.attrib:
            return description.attrib[key]
        child = description.find(f"{prefix}:{name}", NS)
        if child is not None:
            return "".join(child.itertext()).strip()
    return None


def pdf_date_seconds(value: str) -> str:
    """ "D:20261205185628+00'00" as "2026-12-05T18:56:28"."""
    digits = re.match(r"D:(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})", value)
    year, month, day, hour, minute, second = digits.groups()
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}"


def embedded(data: bytes) -> dict[str, bytes]:
    return {
        name: copies[0] for name, copies in pypdf.PdfReader(io.BytesIO(data)).attachments.items()
    }


def run_tool(*command) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def verify(path, *args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("verify_record", str(path), *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


# --- PDF/A-3b ------------------------------------------------------------------------------


def test_the_signed_record_identifies_itself_as_pdfa_3b_before_and_after_signing(record):
    data = record.file.read()

    for revision in (first_revision(data), data):
        assert xmp_property(revision, "pdfaid", "part") == "3"
        assert xmp_property(revision, "pdfaid", "conformance") == "B"
        info = pypdf.PdfReader(io.BytesIO(revision)).metadata
        # PDF/A: every document information entry with an XMP analogue says the same there.
        created = xmp_property(revision, "xmp", "CreateDate")
        assert created.startswith(pdf_date_seconds(info["/CreationDate"]))
        assert "." not in created  # whole seconds, as a PDF date has
        if "/Producer" in info:
            assert info["/Producer"] == xmp_property(revision, "pdf", "Producer")
    # The signature's incremental update names pyHanko in both places alike.
    assert "pyHanko" in pypdf.PdfReader(io.BytesIO(data)).metadata["/Producer"]


def test_the_signed_record_has_an_srgb_output_intent_with_its_icc_profile(record):
    intents = catalog(record.file.read())["/OutputIntents"]

    assert len(intents) == 1
    intent = intents[0].get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    profile = intent["/DestOutputProfile"].get_object()
    assert profile["/N"] == 3  # RGB
    icc = profile.get_data()
    assert icc[36:40] == b"acsp"  # the ICC profile signature
    assert icc[16:20] == b"RGB "


def test_the_signed_record_is_tagged_with_a_structure_tree(record_file):
    root = catalog(record_file.read_bytes())

    assert root["/MarkInfo"]["/Marked"].value is True
    tree = root["/StructTreeRoot"].get_object()
    assert tree["/Type"] == "/StructTreeRoot"
    assert tree["/K"]  # the document's structure elements
    assert "/ParentTree" in tree
    assert root["/Lang"]
    assert re.search(r"^Tagged:\s+yes$", run_tool("pdfinfo", str(record_file)), re.M)


def test_drafts_are_tagged_but_claim_no_pdfa_conformance(approved, tmp_path):
    data = pdf.render_record(record_snapshot(approved, record_id="DRAFT"), draft=True)
    path = tmp_path / "draft.pdf"
    path.write_bytes(data)

    assert re.search(r"^Tagged:\s+yes$", run_tool("pdfinfo", str(path)), re.M)
    root = catalog(data)
    assert "/OutputIntents" not in root
    assert "/Metadata" not in root or xmp_property(data, "pdfaid", "part") is None


def test_every_embedded_file_is_an_associated_file_of_the_document(record):
    data = record.file.read()

    for revision in (first_revision(data), data):
        root = catalog(revision)
        tree = root["/Names"]["/EmbeddedFiles"]["/Names"]
        specs = {tree[n]: tree[n + 1] for n in range(0, len(tree), 2)}
        assert set(specs) == EMBEDDED
        associated = [reference.idnum for reference in root["/AF"]]
        # Each once, and exactly the embedded ones.
        assert sorted(associated) == sorted(spec.idnum for spec in specs.values())
        for name, reference in specs.items():
            spec = reference.get_object()
            assert spec["/AFRelationship"] == "/Data"
            assert spec["/F"] == spec["/UF"] == name
            assert spec["/Desc"]
            stream = spec["/EF"]["/F"].get_object()
            assert stream["/Subtype"] == "/application/json"
            assert "/ModDate" in stream["/Params"]


def test_pdfsig_finds_the_pdfa_record_signature_valid_over_the_whole_document(record_file):
    output = run_tool("pdfsig", str(record_file))

    assert "Signature Validation: Signature is Valid." in output, output
    assert "Total document signed" in output, output
    # Still PDF/A-3b after signing: the update kept the identification and the intent.
    data = record_file.read_bytes()
    assert xmp_property(data, "pdfaid", "part") == "3"
    assert catalog(data)["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"


# --- The evidence inside -------------------------------------------------------------------


def recomputed_hash(event: dict) -> str:
    hashed = {
        key: value
        for key, value in event.items()
        if key not in {"id", "actor", "actor_name", "hash"}
    }
    return hashlib.sha256(
        json.dumps(hashed, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def test_the_audit_trail_inside_hashes_up_to_the_head_the_record_prints(record):
    files = embedded(first_revision(record.file.read()))
    trail = json.loads(files[AUDIT_FILE])
    context = json.loads(files["record-context.json"])

    events = trail["events"]
    assert trail["head"] == {
        "chain": f"deployment:{record.deployment_id}",
        "seq": context["audit"]["seq"],
        "hash": context["audit"]["head"],
    }
    assert [event["seq"] for event in events] == list(range(1, trail["head"]["seq"] + 1))
    previous = "0" * 64
    for event in events:
        assert event["prev_hash"] == previous
        assert recomputed_hash(event) == event["hash"]
        previous = event["hash"]
    assert previous == trail["head"]["hash"]
    # The same events the database holds, up to the record's own record.created.
    stored = AuditEvent.objects.filter(deployment_id=record.deployment_id).order_by("seq")
    assert [event["hash"] for event in events] == [e.hash for e in stored][:-1]
    assert stored.last().action == "record.created"
    signed = next(event for event in events if event["action"] == "signoff.signed")
    assert signed["actor"] and signed["actor_name"]


def test_the_probe_results_inside_hold_every_result_and_finding_of_the_bound_run(record):
    files = embedded(first_revision(record.file.read()))
    results = json.loads(files[PROBE_FILE])
    run = record.deployment.probe_runs.get()

    assert results["run"]["id"] == run.pk
    assert results["run"]["number"] == 1
    (account,) = results["accounts"]
    assert account["account_id"] == run.results.values_list("account_id", flat=True).first()
    assert len(account["results"]) == run.results.count()
    failing = [result for result in account["results"] if result["status"] == "fail"]
    assert failing
    for result in failing:
        # The pages list MAX_FINDINGS_PER_RESULT of them; the file has them all.
        assert len([f for f in result["findings"] if f["status"] == "fail"]) == FINDINGS
        assert {"probe", "region", "status", "findings"} <= set(result)


def test_the_evidence_is_the_same_for_the_same_snapshot_whatever_came_after(approved):
    snapshot = record_snapshot(approved, record_id="r")
    before = record_evidence(snapshot)

    with transaction.atomic():
        audit_record(actor=None, action="test.later", obj=approved, deployment=approved)

    assert record_evidence(snapshot) == before


def test_the_evidence_is_read_in_a_fixed_number_of_queries(approved, django_assert_max_num_queries):
    snapshot = record_snapshot(approved, record_id="r")
    with CaptureQueriesContext(connection) as few:
        record_evidence(snapshot)
    with transaction.atomic():
        for number in range(40):
            audit_record(actor=None, action=f"test.{number}", obj=approved, deployment=approved)
    longer = record_snapshot(approved, record_id="r")

    with django_assert_max_num_queries(len(few)):
        evidence = record_evidence(longer)

    assert len(few) <= 4
    assert len(json.loads(evidence.audit_trail)["events"]) >= 40


# --- verify_record --extract -------------------------------------------------------------------


def test_extract_writes_every_embedded_file_and_says_so(record, record_file, tmp_path):
    folder = tmp_path / "out" / "evidence"

    code, output = verify(record_file, "--extract", str(folder))

    assert code == 0, output
    assert {path.name for path in folder.iterdir()} == EMBEDDED
    for name in EMBEDDED:
        data = (folder / name).read_bytes()
        json.loads(data)
        assert f"wrote {folder / name} ({len(data):,} bytes" in output
    assert "from the revision the signature covers" in output
    snapshot = (folder / "record-snapshot.json").read_bytes()
    assert hashlib.sha256(snapshot).hexdigest() == record.state_digest
    # The head the file states is on the database's chain, just before record.created.
    head = json.loads((folder / AUDIT_FILE).read_bytes())["head"]
    newest = AuditEvent.objects.filter(deployment_id=record.deployment_id).order_by("-seq")[:2]
    assert [head["seq"], head["hash"]] == [newest[1].seq, newest[1].hash]


def test_extract_reports_in_the_json_format_too(record_file, tmp_path):
    code, output = verify(record_file, "--format", "json", "--extract", str(tmp_path / "x"))

    report = json.loads(output)["extracted"]
    assert code == 0
    assert {file["name"] for file in report["written"]} == EMBEDDED
    assert report["refused"] == []


def hostile_pdf(*names: str) -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(200, 200)
    for name in names:
        writer.add_attachment(name, b'{"planted": true}')
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../x", "../../etc/x", "/tmp/x", "sub/x", "..\\x", ".."])
def test_extract_refuses_a_name_that_would_leave_the_folder(name, tmp_path):
    source = tmp_path / "hostile.pdf"
    source.write_bytes(hostile_pdf(name, "fine.json"))
    folder = tmp_path / "a" / "b"

    _, output = verify(source, "--extract", str(folder))

    assert f"refused {name!r}" in output
    assert [path.name for path in folder.iterdir()] == ["fine.json"]
    written = {path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file()}
    assert written == {source.relative_to(tmp_path), folder.relative_to(tmp_path) / "fine.json"}


def test_extract_does_not_follow_a_link_planted_in_the_folder(record_file, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("untouched")
    os.symlink(elsewhere, folder / AUDIT_FILE)

    _, output = verify(record_file, "--extract", str(folder))

    assert elsewhere.read_text() == "untouched"
    assert f"refused {AUDIT_FILE!r}" in output
    assert (folder / PROBE_FILE).is_file()
