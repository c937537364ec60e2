"""The record tells how each status was reached and why it exists: probe-verified only where
the bound run passed the item, overrides shown as overrides (verdict, reason, who, when) and
counted with waivers, probe runs numbered within their deployment, the superseded record
named with why, and a renewed signature naming the one it replaces.

Read as an auditor reads it: the rendered PDF through poppler's pdftotext, and the record's
HTML (`record_html`) where a table cell must be told apart from its neighbour.
"""

import datetime
import html
import io
import json
import re
import subprocess

import pypdf
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from readiness.checklists import services as readiness_services
from readiness.checklists.models import ChecklistItem, DecisionSource, ItemStatus
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeResult, ProbeRun
from signoff.lifecycle import services
from signoff.records import pdf, signing
from signoff.records import services as records
from signoff.records.content import SNAPSHOT_FILE, read_content
from signoff.records.models import SignedRecord
from signoff.records.snapshot import record_snapshot
from signoff.signatures.selectors import standings
from tests.factories import make_deployment
from tests.signoff_helpers import approve_all, complete_items, sign, signers_for

REGIONS = ("us-east-1", "eu-west-1")


# --- Helpers ------------------------------------------------------------------------------


def finish_run(deployment, *, failing=(), erroring=()) -> ProbeRun:
    """A run with a result per probe and region, closed through the service that applies its
    verdicts to the items (and records which run set them): the items titled in `failing`
    fail, those in `erroring` cannot be read, every other one passes."""
    pairs = probe_runs.probes_for(deployment)
    run = ProbeRun.objects.create(
        deployment=deployment,
        state="running",
        regions=list(REGIONS),
        accounts=[
            {"account_id": "123456789012", "name": "", "role_arn": "", "regions": ["us-east-1"]}
        ],
        total=len(pairs) * len(REGIONS),
        completed=len(pairs) * len(REGIONS),
    )
    now = timezone.now()
    ProbeResult.objects.bulk_create(
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
            status=(
                "fail" if item.title in failing else "error" if item.title in erroring else "pass"
            ),
            summary="2 buckets unencrypted" if item.title in failing else "all compliant",
            findings=(
                [{"id": "arn:aws:s3:::plain-bucket", "status": "fail", "reason": "no SSE"}]
                if item.title in failing
                else []
            ),
            finished_at=now,
        )
        for probe, item in pairs
        for region in REGIONS
    )
    assert probe_runs.probe_run_finish(run_id=run.pk)
    run.refresh_from_db()
    return run


def item(deployment, title: str) -> ChecklistItem:
    return ChecklistItem.objects.select_related("section__deployment").get(
        section__deployment=deployment, title=title
    )


def edit(item_row, signers, *, status=None, note=None, reason=""):
    """Save the item as a holder of its owning role (only they may change it)."""
    return readiness_services.item_update(
        item=item_row,
        user=signers[item_row.owner_role.slug],
        expected_version=item_row.version,
        status=status or item_row.status,
        note=item_row.note if note is None else note,
        evidence_url=item_row.evidence_url,
        na_reason=item_row.na_reason,
        reason=reason,
    )


def pdf_text(data: bytes, tmp_path) -> str:
    """What poppler's pdftotext reads, whitespace collapsed (cells wrap where they like)."""
    source = tmp_path / "record.pdf"
    source.write_bytes(data)
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(source), "-"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode()
    return " ".join(out.split())


def squeezed(text: str) -> str:
    return "".join(text.split())


def plain(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def item_row(page: str, title: str) -> str:
    """The text of the item's row (and its probe details row) in the record's HTML."""
    rows = page.split("<tr")
    start = next(i for i, row in enumerate(rows) if f"<b>{html.escape(title)}</b>" in row)
    shown = rows[start]
    if start + 1 < len(rows) and rows[start + 1].startswith(' class="details"'):
        shown += rows[start + 1]
    return plain(shown)


def status_cell(page: str, title: str) -> str:
    """The item's "Status, recorded by" cell alone: its row's last cell."""
    rows = page.split("<tr")
    row = next(row for row in rows if f"<b>{html.escape(title)}</b>" in row)
    return plain(row.rsplit("<td>", 1)[1])


def summary_row(page: str, label: str) -> dict[str, str]:
    """{column heading: value} of one row of the cover's Summary table."""
    table = page.split('<table class="summary">', 1)[1].split("</table>", 1)[0]
    headings = [plain(cell) for cell in re.findall(r"<th[^>]*>(.*?)</th>", table)]
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S):
        cells = [plain(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        if cells and cells[0].endswith(label):
            return dict(zip(headings, cells, strict=True))
    raise AssertionError(f"no summary row for {label}")


def lines_of(snapshot) -> dict:
    return {line.title: line for section in snapshot.sections for line in section.items}


def minute(moment: datetime.datetime) -> str:
    return f"{moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC"


def draft(deployment):
    snapshot = record_snapshot(deployment, record_id="DRAFT")
    return snapshot, pdf.record_html(snapshot, draft=True)


# --- How each status was reached --------------------------------------------------------------


def test_without_a_probe_run_no_item_says_probe_verified(deployment, tmp_path):
    snapshot = record_snapshot(deployment, record_id="r")
    page = pdf.record_html(snapshot, draft=False)
    text = pdf_text(pdf.render_record(snapshot, draft=False), tmp_path)

    assert snapshot.probe_run is None
    lines = lines_of(snapshot)
    assert {line.verification for line in lines.values()} == {"no-probe-result", "manual"}
    covered = [title for title, line in lines.items() if line.verification == "no-probe-result"]
    assert len(covered) > 30 and lines["Runbook"].manual
    assert "probe-verified" not in text and "probe-verified" not in page
    assert "none: this deployment has no finished probe run" in text
    assert status_cell(page, "Encryption") == "Open Not decided yet no probe result"
    assert status_cell(page, "Runbook") == "Open Not decided yet manual check"
    assert text.count("no probe result") == len(covered)


def test_probe_verified_only_where_the_bound_run_passed_the_item(deployment):
    finish_run(deployment, failing={"Encryption"}, erroring={"CloudTrail"})

    snapshot, page = draft(deployment)

    lines = lines_of(snapshot)
    assert lines["Encryption"].verification == "probe-failed"
    assert lines["CloudTrail"].verification == "probe-inconclusive"
    assert lines["IAM Policies"].verification == "probe-verified"
    assert lines["Runbook"].verification == "manual"
    assert "probe-verified" not in status_cell(page, "Encryption")
    assert status_cell(page, "Encryption").endswith("probe failed, run 1: fail")
    assert status_cell(page, "CloudTrail").endswith("probe inconclusive, run 1: error")
    assert status_cell(page, "IAM Policies").startswith("Done By probe run 1: pass")
    assert status_cell(page, "IAM Policies").endswith("probe-verified, run 1")


def test_a_person_overriding_a_failing_probe_shows_its_verdict_the_reason_who_and_when(
    deployment, tmp_path
):
    signers = signers_for(deployment.team)
    finish_run(deployment, failing={"Encryption"})
    encryption = item(deployment, "Encryption")
    assert encryption.status == ItemStatus.FAILED and encryption.source == DecisionSource.PROBE
    reason = "The plain bucket holds public assets only; accepted in review SEC-88"
    edit(encryption, signers, status=ItemStatus.DONE, reason=reason)
    encryption.refresh_from_db()

    snapshot = record_snapshot(deployment, record_id="r")
    page = pdf.record_html(snapshot, draft=False)
    text = squeezed(pdf_text(pdf.render_record(snapshot, draft=False), tmp_path))

    line = lines_of(snapshot)["Encryption"]
    results = line.probe_results
    assert line.decision == "override" and line.overridden
    assert line.probe_verdict == "fail" and line.probe_failures == results > 0
    when = minute(encryption.updated_at)
    cell = status_cell(page, "Encryption")
    assert cell == (
        f"Done OVERRIDE of probe run 1: FAIL ({results} of {results} results fail) "
        f"by Security Signer, {when} Reason: {reason} probe failed, run 1: fail"
    )
    assert "probe-verified" not in item_row(page, "Encryption")
    for shown in (f"OVERRIDE of probe run 1: FAIL ({results} of {results}", reason, when):
        assert squeezed(shown) in text
    assert summary_row(page, "Security")["Overrides"] == "1"
    assert summary_row(page, "All sections")["Overrides"] == "1"
    assert snapshot.totals.overridden == 1


def test_a_person_agreeing_with_the_probe_is_no_override(deployment):
    signers = signers_for(deployment.team)
    finish_run(deployment, failing={"Encryption"})
    edit(item(deployment, "Encryption"), signers, note="Seen the plain bucket", reason="noted")
    runbook = item(deployment, "Runbook")
    edit(runbook, signers, status=ItemStatus.DONE)
    runbook.refresh_from_db()

    snapshot, page = draft(deployment)

    lines = lines_of(snapshot)
    # A note leaves the probe's status in place: still the probe's decision.
    assert lines["Encryption"].decision == "probe"
    assert lines["Runbook"].decision == "person"
    assert status_cell(page, "Runbook") == (
        f"Done By Tech-Lead Signer, {minute(runbook.updated_at)} manual check"
    )
    assert snapshot.totals.overridden == 0


def test_a_waiver_is_counted_in_the_section_summary(deployment):
    signers = signers_for(deployment.team)
    services.waiver_grant(
        item=item(deployment, "Encryption"),
        user=signers["security"],
        reason="The legacy bucket is emptied next sprint",
        expires_at=timezone.now() + datetime.timedelta(days=10),
    )

    snapshot, page = draft(deployment)

    security = next(section for section in snapshot.sections if section.title == "Security")
    assert security.waived == 1 and snapshot.totals.waived == 1
    assert summary_row(page, "Security")["Waived"] == "1"
    assert summary_row(page, "All sections")["Waived"] == "1"
    assert summary_row(page, "Reliability")["Waived"] == "0"


def test_probe_runs_are_numbered_within_their_deployment(member, team, deployment, tmp_path):
    elsewhere = make_deployment(user=member, team=team, version="0.9.0")
    for _ in range(3):
        finish_run(elsewhere)
    finish_run(deployment, failing={"Encryption"})
    second = finish_run(deployment, erroring={"Encryption"})
    assert second.pk > 2  # the server's id is not the deployment's number

    snapshot = record_snapshot(deployment, record_id="r")
    page = pdf.record_html(snapshot, draft=False)
    text = pdf_text(pdf.render_record(snapshot, draft=False), tmp_path)

    assert snapshot.probe_run.number == 2 and snapshot.probe_run.id == second.pk
    assert "Probe run bound Run 2 of this deployment, finished" in text
    assert f"(server run id {second.pk})" in text
    assert f"#{second.pk}" not in text
    lines = lines_of(snapshot)
    # The error of run 2 left the failure run 1 found in force: the record says which run.
    assert lines["Encryption"].decided_by_run == 1
    assert status_cell(page, "Encryption").startswith("Failed By probe run 1: fail")
    assert status_cell(page, "Encryption").endswith("probe inconclusive, run 2: error")
    assert status_cell(page, "IAM Policies").endswith("probe-verified, run 2")
    canonical = json.loads(snapshot.canonical_json)
    assert canonical["probe_run_number"] == 2
    entry = next(entry for entry in canonical["items"] if entry["title"] == "Encryption")
    assert (entry["decision"], entry["decided_by_run"]) == ("probe", 1)
    assert entry["verification"] == "probe-inconclusive"


# --- Superseded records and renewed signatures ----------------------------------------------


def renew_after_note(deployment, signers, note: str, reason: str):
    """Change Multi-AZ's note (its owner's approval turns stale, the deployment goes back to
    review) and sign again for every role that no longer approves."""
    edit(item(deployment, "Multi-AZ"), signers, note=note, reason=reason)
    deployment.refresh_from_db()
    assert deployment.state == "in_review"
    stale = [s.role for s in standings([deployment])[deployment.pk] if not s.approving]
    for role in stale:
        sign(deployment, signers[role.slug], role.slug)
    deployment.refresh_from_db()
    assert deployment.state == "approved"
    return stale


def test_a_superseding_record_names_the_record_it_supersedes_and_why(deployment, media, tmp_path):
    signers = signers_for(deployment.team)
    approve_all(deployment, signers)
    first = records.record_generate(deployment_id=deployment.pk)
    assert first.number == 1
    stale = renew_after_note(
        deployment, signers, "Replica moved to eu-west-1b", "Replica moved in maintenance"
    )
    assert [role.name for role in stale] == ["DevOps"]

    second = records.record_generate(deployment_id=deployment.pk)
    data = second.file.read()
    text = pdf_text(data, tmp_path)

    assert second.number == 2
    assert f"Supersedes Record 1 of {minute(first.created_at)} {first.record_id}" in text
    assert "Why this record supersedes record 1" in text
    assert "Approved → In review: DevOps stale" in text
    assert "DevOps signature 1 (Devops Signer) went stale" in text
    assert squeezed(
        "Multi-AZ: note changed: (none) → “Replica moved to eu-west-1b” — Devops Signer"
    ) in squeezed(text)
    assert squeezed("“Replica moved in maintenance”") in squeezed(text)
    # What the record supersedes is part of what it holds, and of the digest.
    embedded = pypdf.PdfReader(io.BytesIO(data)).attachments[SNAPSHOT_FILE][0]
    assert json.loads(embedded)["supersedes"] == {
        "number": 1,
        "record_id": str(first.record_id),
        "created_at": first.created_at.astimezone(datetime.UTC).isoformat(),
    }
    content = read_content(data).content
    assert content.supersedes.number == 1 and content.supersedes.record_id == str(first.record_id)
    assert signing.verify_record(data).verdict == "valid"
    # Storing record 2 leaves the digest of its state alone: made again, it is the same record,
    # and a draft of the state says what record 2 says.
    assert records.record_generate(deployment_id=deployment.pk).pk == second.pk
    assert SignedRecord.objects.filter(deployment=deployment).count() == 2
    again = record_snapshot(deployment, record_id="DRAFT")
    assert again.state_digest == second.state_digest
    assert again.supersedes.number == 1


def test_the_first_record_supersedes_nothing(deployment, media, tmp_path):
    approve_all(deployment, signers_for(deployment.team))
    first = records.record_generate(deployment_id=deployment.pk)

    text = pdf_text(first.file.read(), tmp_path)

    assert "Supersedes" not in text and "supersedes record" not in text
    assert record_snapshot(deployment, record_id="DRAFT").supersedes is None


def test_a_renewed_signature_names_the_stale_one_it_replaces(deployment, tmp_path):
    signers = signers_for(deployment.team)
    approve_all(deployment, signers)
    renew_after_note(deployment, signers, "Replica moved", "Replica moved in maintenance")

    snapshot = record_snapshot(deployment, record_id="r")
    text = pdf_text(pdf.render_record(snapshot, draft=False), tmp_path)

    rows = {row.role: row for row in snapshot.signatures}
    devops = rows["DevOps"]
    assert devops.sequence == 2 and devops.replaces.sequence == 1
    assert devops.replaces.why == "stale"
    assert rows["Security"].replaces is None
    first = devops.replaces
    assert squeezed(
        f"signature 2 of this role Digest {devops.digest_prefix} Replaces signature 1 by "
        f"Devops Signer of {minute(first.signed_at)} (approved), stale: it went stale"
    ) in squeezed(text)
    assert squeezed(
        "on Multi-AZ: note changed: (none) → “Replica moved” — Devops Signer"
    ) in squeezed(text)
    canonical = json.loads(snapshot.canonical_json)
    entry = next(row for row in canonical["signoffs"] if row["role"] == "DevOps")
    assert entry["replaces"]["sequence"] == 1 and entry["replaces"]["why"] == "stale"


def test_a_renewed_signature_names_the_revoked_one_it_replaces(deployment, member, tmp_path):
    signers = signers_for(deployment.team)
    complete_items(deployment)
    services.signoff_request(deployment=deployment, user=member)
    revoked = sign(deployment, signers["security"], "security")
    services.signoff_revoke(
        signoff=revoked, user=signers["security"], reason="Pen test found an open port"
    )
    sign(deployment, signers["security"], "security")
    revoked.refresh_from_db()

    snapshot = record_snapshot(deployment, record_id="r")
    text = pdf_text(pdf.render_record(snapshot, draft=False), tmp_path)

    security = next(row for row in snapshot.signatures if row.role == "Security")
    assert security.sequence == 2 and security.replaces.why == "revoked"
    assert squeezed(
        f"Replaces signature 1 by Security Signer of {minute(revoked.signed_at)} (approved), "
        f"revoked by Security Signer {minute(revoked.revocation.revoked_at)}: "
        "Pen test found an open port."
    ) in squeezed(text)


# --- Reads --------------------------------------------------------------------------------------


def test_snapshot_reads_superseded_records_and_renewals_in_the_same_queries(
    member, team, media, django_assert_max_num_queries
):
    signers = signers_for(team)
    fresh = make_deployment(user=member, team=team, version="1.0.0")
    finish_run(fresh)
    busy = make_deployment(user=member, team=team, version="2.0.0")
    for _ in range(3):
        finish_run(busy, failing={"Encryption"})
    edit(item(busy, "Encryption"), signers, status=ItemStatus.DONE, reason="accepted")
    approve_all(busy, signers)
    records.record_generate(deployment_id=busy.pk)
    renew_after_note(busy, signers, "Replica moved", "Replica moved in maintenance")
    records.record_generate(deployment_id=busy.pk)
    renew_after_note(busy, signers, "Replica moved back", "Back after maintenance")

    with CaptureQueriesContext(connection) as baseline:
        record_snapshot(fresh, record_id="fresh")
    with django_assert_max_num_queries(len(baseline)):
        snapshot = record_snapshot(busy, record_id="busy")

    assert snapshot.supersedes.number == 2 and len(snapshot.supersedes.reasons) >= 2
    assert snapshot.probe_run.number == 3 and snapshot.totals.overridden == 1
    assert {row.role: row.sequence for row in snapshot.signatures}["DevOps"] == 3
