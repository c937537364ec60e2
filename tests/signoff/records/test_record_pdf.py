"""The PDF record: what it says (text through pypdf), how it looks (pages rasterised with
pdftoppm), and the snapshot it is rendered from (digest, query count)."""

import datetime
import io
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pypdf
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from readiness.checklists import services as readiness_services
from readiness.checklists.models import ChecklistItem, DecisionSource, ItemStatus
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeResult, ProbeRun
from signoff.lifecycle import services
from signoff.records import pdf
from signoff.records.snapshot import MAX_FINDINGS_PER_RESULT, record_snapshot
from signoff.signatures.models import SignOff
from tests.factories import make_deployment
from tests.signoff_helpers import approve_all, complete_items, give_role, role, sign, signers_for

A4 = (595, 842)
LETTER = (612, 792)
NAMES = {
    "Tech Lead": "Tech-Lead Signer",
    "Security": "Security Signer",
    "DevOps": "Devops Signer",
    "Product": "Product Signer",
}
PGM_HEADER = re.compile(rb"P5\s+(?P<width>\d+)\s+(?P<height>\d+)\s+(?P<maxval>\d+)\s")
DEPLOYED_AT = datetime.datetime(2026, 3, 2, 14, 30, tzinfo=datetime.UTC)


# --- Helpers ------------------------------------------------------------------------------


def page_texts(data: bytes) -> list[str]:
    """Each page's text with whitespace collapsed (table cells wrap where they like)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [" ".join((page.extract_text() or "").split()) for page in reader.pages]


def text_of(data: bytes) -> str:
    return " ".join(page_texts(data))


def squeezed(text: str) -> str:
    """Without any whitespace: a long word wrapped anywhere comes back in pieces."""
    return "".join(text.split())


@dataclass(frozen=True)
class GreyPage:
    width: int
    height: int
    pixels: bytes = field(repr=False)


def grey_pages(data: bytes, tmp_path: Path, dpi: int = 40) -> list[GreyPage]:
    """Rasterise with poppler's pdftoppm into 8-bit PGM: (width, height, pixels) per page."""
    source = tmp_path / "record.pdf"
    source.write_bytes(data)
    subprocess.run(
        ["pdftoppm", "-gray", "-r", str(dpi), str(source), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    pages = []
    for path in sorted(tmp_path.glob("page-*.pgm")):
        raw = path.read_bytes()
        # "P5 <width> <height> 255" and one whitespace byte, then a byte per pixel.
        header = PGM_HEADER.match(raw)
        assert header and header["maxval"] == b"255"
        width, height = int(header["width"]), int(header["height"])
        pixels = raw[header.end() :]
        assert len(pixels) == width * height
        pages.append(GreyPage(width, height, pixels))
    return pages


def dark_pixels(page: GreyPage, *, below: int = 128, columns: range | None = None) -> int:
    width, pixels = page.width, page.pixels
    columns = columns or range(width)
    return sum(1 for y in range(page.height) for x in columns if pixels[y * width + x] < below)


def horizontal_rules(page: GreyPage, *, below: int = 170, share: float = 0.5) -> int:
    """Pixel rows with a dark run at least `share` of the page wide: table rules."""
    width, pixels = page.width, page.pixels
    rules = 0
    for y in range(page.height):
        row = pixels[y * width : (y + 1) * width]
        run = longest = 0
        for value in row:
            run = run + 1 if value < below else 0
            longest = max(longest, run)
        if longest >= share * width:
            rules += 1
    return rules


def add_probe_run(deployment, *, failing_findings: int = 3) -> ProbeRun:
    """A finished run with a result per (probe, region): Encryption's probes fail with
    findings, every other probe passes."""
    now = timezone.now()
    run = ProbeRun.objects.create(
        deployment=deployment,
        state="succeeded",
        regions=["us-east-1", "eu-west-1"],
        accounts=[
            {"account_id": "123456789012", "name": "", "role_arn": "", "regions": ["us-east-1"]}
        ],
        finished_at=now,
    )
    results = []
    for probe, item in probe_runs.probes_for(deployment):
        failing = item.title == "Encryption"
        findings = [{"id": "arn:aws:kms:::key/compliant", "status": "pass", "reason": "rotated"}]
        if failing:
            findings += [
                {
                    "id": f"arn:aws:s3:::unencrypted-bucket-{n}",
                    "status": "fail",
                    "reason": "default encryption is off",
                }
                for n in range(failing_findings)
            ]
        for region in ("us-east-1", "eu-west-1"):
            results.append(
                ProbeResult(
                    run=run,
                    item=item,
                    probe_key=probe.key,
                    region=region,
                    section_title=probe.section,
                    item_title=probe.item,
                    title=probe.title,
                    severity=str(probe.severity),
                    remediation=probe.remediation,
                    state="done",
                    status="fail" if failing else "pass",
                    summary="3 buckets unencrypted" if failing else "all compliant",
                    findings=findings,
                    finished_at=now,
                )
            )
    ProbeResult.objects.bulk_create(results)
    run.total = run.completed = len(results)
    run.save(update_fields=["total", "completed"])
    return run


def verified(deployment, member):
    """Approved by four real signatures, deployed, and every post-deployment check ticked."""
    signers = signers_for(deployment.team)
    approve_all(deployment, signers)
    services.deployment_mark_deployed(deployment=deployment, user=member, deployed_at=DEPLOYED_AT)
    for check in deployment.post_deployment_checks.order_by("position"):
        services.post_check_record(
            check=check, user=member, note=f"Looked at {check.label.lower()} on the dashboard"
        )
    deployment.refresh_from_db()
    return deployment


def render(deployment, *, draft=False, page_size="A4", record_id=None) -> tuple[bytes, object]:
    snapshot = record_snapshot(deployment, record_id=record_id or str(uuid.uuid4()))
    return pdf.render_record(snapshot, draft=draft, page_size=page_size), snapshot


# --- What the record says -------------------------------------------------------------------


def test_record_lists_every_item_the_four_signatures_and_the_deployment(deployment, member):
    add_probe_run(deployment)
    deployment = verified(deployment, member)
    record_id = str(uuid.uuid4())

    data, snapshot = render(deployment, record_id=record_id)
    text = text_of(data)

    titles = list(
        ChecklistItem.objects.filter(section__deployment=deployment).values_list("title", flat=True)
    )
    assert len(titles) == 56
    assert [title for title in titles if title not in text] == []
    signoffs = SignOff.objects.filter(deployment=deployment).select_related("role")
    assert signoffs.count() == 4
    for signoff in signoffs:
        assert NAMES[signoff.role.name] == signoff.printed_name
        date = signoff.signed_at.astimezone(datetime.UTC).strftime("%Y-%m-%d")
        # The row as the seed lays it out: Role, Name, Date, then the signature.
        assert f"{signoff.role.name} {signoff.printed_name} {date} Signed electronically" in text
        assert signoff.digest[:16] in text
    assert text.count("Meaning: approved") == 4
    assert "Final Sign-Off ROLE NAME DATE SIGNATURE" in text
    assert record_id in text
    assert f"Record {record_id}" in page_texts(data)[-1]
    assert "Deployment Date: 2026-03-02 14:30 UTC" in text
    assert "Post-Deployment Notes" in text
    for label in ("Smoke tests passed", "Monitoring confirmed working", "No critical alarms"):
        assert f"{label} Checked Lee Tran" in text
        assert f"Looked at {label.lower()} on the dashboard" in text
    assert snapshot.state == "verified" and "Verified" in text
    assert snapshot.state_digest in text


def test_record_shows_evidence_waivers_probe_findings_and_manual_items(deployment, member):
    signers = signers_for(deployment.team)
    add_probe_run(deployment, failing_findings=MAX_FINDINGS_PER_RESULT + 5)
    items = ChecklistItem.objects.filter(section__deployment=deployment)
    items.filter(title="IAM Policies").update(
        status=ItemStatus.DONE,
        note="Access Analyzer shows no unused permissions",
        evidence_url="https://wiki.example.com/iam-review",
        updated_by=member,
        updated_at=timezone.now(),
        source=DecisionSource.PERSON,
    )
    items.filter(title="CloudTrail").update(
        status=ItemStatus.DONE, source=DecisionSource.PROBE, updated_at=timezone.now()
    )
    items.filter(title="Penetration Test").update(
        status=ItemStatus.NOT_APPLICABLE, na_reason="Internal service, no public endpoint"
    )
    encryption = items.get(title="Encryption")
    services.waiver_grant(
        item=encryption,
        user=signers["security"],
        reason="Legacy bucket is emptied next sprint",
        expires_at=timezone.now() + datetime.timedelta(days=10),
    )

    data, snapshot = render(deployment, draft=True)
    text = text_of(data)

    assert "Note: Access Analyzer shows no unused permissions" in text
    assert "Evidence: https://wiki.example.com/iam-review" in text
    assert "Lee Tran" in text
    assert "Not applicable: Internal service, no public endpoint" in text
    assert "Waiver: Legacy bucket is emptied next sprint Granted by Security Signer" in text
    assert "WAIVED" in text
    assert "FAIL encryption." in text
    assert "arn:aws:s3:::unencrypted-bucket-0: fail, default encryption is off" in text
    assert "and 5 more in probe run" in text
    assert "Remediation (encryption." in text
    assert "arn:aws:kms:::key/compliant" not in text  # passing resources are not listed
    lines = {line.title: line for section in snapshot.sections for line in section.items}
    assert lines["CloudTrail"].updated_by == "probe run"
    assert lines["Runbook"].manual and not lines["Encryption"].manual
    assert "manual check" in text and "probe-verified" in text
    security = next(section for section in snapshot.sections if section.title == "Security")
    assert security.probes_failed > 0 and security.probes_passed > 0
    assert security.not_applicable == 1


def test_revoked_and_stale_signatures_are_marked_and_unsigned_roles_left_blank(deployment, member):
    signers = signers_for(deployment.team)
    complete_items(deployment)
    services.signoff_request(deployment=deployment, user=member)
    security = sign(deployment, signers["security"], "security")
    sign(deployment, signers["devops"], "devops")
    services.signoff_revoke(signoff=security, user=signers["security"], reason="Pen test found")
    item = ChecklistItem.objects.get(section__deployment=deployment, title="Multi-AZ")
    give_role(member, deployment.team, "devops")  # Multi-AZ is DevOps's
    readiness_services.item_update(
        item=item,
        user=member,
        expected_version=item.version,
        status=ItemStatus.FAILED,
        note="Replica is in the same AZ",
        evidence_url="",
        na_reason="",
        reason="The replica moved during maintenance",
    )

    data, snapshot = render(deployment, draft=True)
    text = text_of(data)

    rows = {row.role: row for row in snapshot.signatures}
    assert [row.role for row in snapshot.signatures] == [
        "Tech Lead",
        "Security",
        "DevOps",
        "Product",
    ]
    assert rows["Security"].status == "revoked" and not rows["Security"].signed
    assert rows["DevOps"].status == "stale" and rows["DevOps"].signed
    assert rows["Tech Lead"].status == "missing"
    assert "REVOKED" in text and "Pen test found" in text
    assert "STALE" in text
    assert text.count("Not signed") == 2


# --- Draft, final, paper --------------------------------------------------------------------


def test_draft_is_watermarked_on_every_page_and_final_is_not(deployment, member):
    approve_all(deployment, signers_for(deployment.team))

    draft, _ = render(deployment, draft=True)
    final, _ = render(deployment, draft=False)

    draft_pages, final_pages = page_texts(draft), page_texts(final)
    assert len(draft_pages) > 1
    # The rotated watermark and the running header each say so on every page.
    assert all(page.count("DRAFT") >= 2 for page in draft_pages)
    assert "DRAFT — not a signed record" in draft_pages[0]
    assert not any("DRAFT" in page for page in final_pages)
    assert pypdf.PdfReader(io.BytesIO(draft)).metadata["/readinessdraft"] == "true"
    assert pypdf.PdfReader(io.BytesIO(final)).metadata["/readinessdraft"] == "false"


def test_record_carries_its_id_and_state_digest_in_the_pdf_metadata(deployment):
    data, snapshot = render(deployment, record_id="2c1e1a52-5a55-4a0e-9b7e-3c1d8f7f0b0e")

    metadata = pypdf.PdfReader(io.BytesIO(data)).metadata
    assert metadata["/readinessrecordid"] == "2c1e1a52-5a55-4a0e-9b7e-3c1d8f7f0b0e"
    assert metadata["/readinessstatedigest"] == snapshot.state_digest
    assert metadata["/readinessdeploymentid"] == str(deployment.pk)


@pytest.mark.parametrize(("page_size", "expected"), [("A4", A4), ("Letter", LETTER)])
def test_record_is_printed_on_the_chosen_paper(deployment, page_size, expected):
    data, _ = render(deployment, page_size=page_size)

    reader = pypdf.PdfReader(io.BytesIO(data))
    sizes = {(round(page.mediabox.width), round(page.mediabox.height)) for page in reader.pages}
    assert sizes == {expected}


def test_page_size_follows_the_setting_and_refuses_others(deployment, settings):
    settings.RECORD_PAGE_SIZE = "Letter"
    snapshot = record_snapshot(deployment, record_id="x")

    assert pdf.page_size_css(None) == "letter"
    with pytest.raises(ValueError, match="A4 or Letter"):
        pdf.render_record(snapshot, draft=True, page_size="A3")


def test_every_page_has_the_footer_with_page_numbers_record_id_and_digest(deployment):
    data, snapshot = render(deployment, record_id="rec-123")

    pages = page_texts(data)
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        assert "Record rec-123" in page
        assert f"State digest {snapshot.state_digest[:16]}" in page


# --- Layout ------------------------------------------------------------------------------------


def test_rendered_pages_have_ink_and_the_sign_off_page_has_table_rules(
    deployment, member, tmp_path
):
    add_probe_run(deployment)
    deployment = verified(deployment, member)
    data, _ = render(deployment)

    pages = grey_pages(data, tmp_path)
    texts = page_texts(data)

    assert len(pages) == len(texts) > 1
    for number, page in enumerate(pages, start=1):
        assert dark_pixels(page) > 0.004 * page.width * page.height, f"page {number} is blank"
    sign_off_page = next(i for i, text in enumerate(texts) if "Final Sign-Off" in text)
    # Header rule and top, the four rows' rules: a table that lost its borders or rows fails.
    assert horizontal_rules(pages[sign_off_page]) >= 5
    assert horizontal_rules(pages[1]) >= 2  # the first checklist page's table header


def test_long_notes_and_urls_wrap_inside_the_page(deployment, tmp_path):
    unbroken = "".join(f"{n:04d}" for n in range(100))  # 400 characters without a break
    sentences = "".join(
        f"Restore drill step {n} passed on the second attempt. " for n in range(200)
    )
    note = unbroken + " " + sentences[: 5000 - len(unbroken) - 1]
    url = "https://evidence.example.com/" + "a" * (2000 - len("https://evidence.example.com/"))
    assert len(note) == 5000 and len(url) == 2000
    ChecklistItem.objects.filter(section__deployment=deployment, title="Backup Strategy").update(
        note=note, evidence_url=url
    )

    data, _ = render(deployment)
    pages = grey_pages(data, tmp_path)

    flat = squeezed(text_of(data))
    # A row this long may break across pages, where the footer and the next page's header
    # come between two pieces; every piece must still be printed.
    pieces = [squeezed(note)[i : i + 40] for i in range(0, len(squeezed(note)), 40)]
    missing = [piece for piece in pieces if piece not in flat]
    assert len(missing) <= 2, missing
    assert squeezed(unbroken) in flat
    assert "Evidence:https://evidence.example.com/aaaa" in flat
    assert flat.count("a" * 40) >= 1900 // 40 - 2
    assert len(pages) < 20
    for number, page in enumerate(pages, start=1):
        width = page.width
        # The right margin is 16 mm (25 px at 40 dpi): nothing may be printed in its outer 20 px.
        margin = range(width - 20, width)
        assert dark_pixels(page, below=200, columns=margin) == 0, f"ink in margin, page {number}"


def test_bare_table_is_a_plain_56_row_table():
    data = pdf.render_bare_table(56)

    text = text_of(data)
    assert "Item number 1 " in text and "Item number 56" in text
    assert len(pypdf.PdfReader(io.BytesIO(data)).pages) <= 3


# --- The snapshot -----------------------------------------------------------------------------


def test_state_digest_is_stable_for_unchanged_data(deployment):
    approve_all(deployment, signers_for(deployment.team))
    later = timezone.now() + datetime.timedelta(minutes=5)

    first = record_snapshot(deployment, record_id="a")
    second = record_snapshot(deployment, record_id="b", now=later)

    assert first.state_digest == second.state_digest
    assert first.generated_at != second.generated_at


def test_state_digest_changes_with_an_item_or_a_new_signature(deployment, member):
    signers = signers_for(deployment.team)
    before = record_snapshot(deployment, record_id="r").state_digest
    item = ChecklistItem.objects.get(section__deployment=deployment, title="Runbook")
    give_role(member, deployment.team, "tech-lead")  # the Runbook is the Tech Lead's
    readiness_services.item_update(
        item=item,
        user=member,
        expected_version=item.version,
        status=ItemStatus.DONE,
        note="docs/runbook.md reviewed",
        evidence_url="",
        na_reason="",
    )
    after_item = record_snapshot(deployment, record_id="r").state_digest
    complete_items(deployment)
    services.signoff_request(deployment=deployment, user=member)
    before_signature = record_snapshot(deployment, record_id="r").state_digest
    sign(deployment, signers["product"], "product")
    after_signature = record_snapshot(deployment, record_id="r").state_digest

    assert before != after_item
    assert before_signature != after_signature


def test_snapshot_reads_in_a_fixed_number_of_queries(member, team, django_assert_max_num_queries):
    signers = signers_for(team)
    small = make_deployment(user=member, team=team, version="1.0.0")
    add_probe_run(small)
    keep = list(
        ChecklistItem.objects.filter(section__deployment=small)
        .order_by("section__position", "position")
        .values_list("pk", flat=True)[:10]
    )
    ChecklistItem.objects.filter(section__deployment=small).exclude(pk__in=keep).delete()
    complete_items(small)
    services.signoff_request(deployment=small, user=member)
    sign(small, signers["security"], "security")
    large = make_deployment(user=member, team=team, version="2.0.0")
    add_probe_run(large)
    approve_all(large, signers)
    assert ChecklistItem.objects.filter(section__deployment=small).count() == 10
    assert SignOff.objects.filter(deployment=small).count() == 1
    assert SignOff.objects.filter(deployment=large, role=role("product")).exists()

    with CaptureQueriesContext(connection) as baseline:
        record_snapshot(small, record_id="small")
    with django_assert_max_num_queries(len(baseline)):
        snapshot = record_snapshot(large, record_id="large")

    # 16 reads, and the newest CI evidence for the digests and for the item lines (+2); the
    # deployment's own run numbering, its two newest records and the audit events saying why
    # a record was superseded or a signature replaced (+3); the AWS accounts, for the digests
    # and for the record's list of them (+2).
    assert len(baseline) <= 23
    assert snapshot.totals.total == 56 and len(snapshot.signoff_ids) == 4
