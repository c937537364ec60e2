"""Benchmark: the signed record of a full checklist against WeasyPrint's floor.

Builds, in a throwaway SQLite database under a temporary DATA_DIR, a deployment of the seed
checklist (56 items) with evidence on every item (notes, links, n/a reasons, a waiver), a
finished probe run with results and failing findings, and four real sign-offs; then times,
median of N runs each, interleaved:

  record  record_snapshot() + render_record() (+ signing.sign_pdf() when a signer loads)
  floor   render_bare_table(56): WeasyPrint alone on a plain 56-row table
  words   WeasyPrint alone on a plain one-column table of the record's own text, line by
          line as pypdf reads it from the full record: what the words cost without the
          record's structure, styles, fonts and signature

and prints them and their ratios. Targets: the record at most twice the floor (the PDF
issue), and, as PDF/A-3b, tagged, with its audit trail and probe results embedded, at most
1.2 x the words (issue 16). `--trusted-time` adds signing and verifying at PAdES B-B, B-T
and B-LTA against a local certomancer PKI (TSA, OCSP, CRL on loopback). Not run by CI.

    DATA_DIR=$(mktemp -d) .venv/bin/python bench/pdf.py
    .venv/bin/python bench/pdf.py --runs 15 --page-size Letter
    .venv/bin/python bench/pdf.py --out /tmp/record   # also writes record.pdf and draft.pdf
    .venv/bin/python bench/pdf.py --runs 5 --trusted-time

DATA_DIR defaults to a new temporary folder; DATABASE_URL is ignored unless --keep-database-url
is given, so the benchmark never writes into a real database.
"""

import argparse
import datetime
import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench password, not a secret"
REGIONS = ("us-east-1", "eu-west-1")


def write_self_signed_pair(folder: Path) -> None:
    """A throwaway RSA key and certificate where settings look by default (DATA_DIR/signing),
    so the benchmark signs as a deployment with `create_signing_cert` would."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Readiness benchmark")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
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
        .sign(key, hashes.SHA256())
    )
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def build_team():
    """A team with an owner and one signer per role (the seed's four)."""
    from django.contrib.auth import get_user_model

    from readiness.checklists.models import Team
    from signoff.teams.models import Role, RoleMembership

    users = get_user_model().objects
    owner = users.create_user("owner", password=PASSWORD, first_name="Olive", last_name="Owner")
    team = Team.objects.create(name="Payments", slug="payments")
    team.members.add(owner)
    signers = []
    for role in Role.objects.all():
        user = users.create_user(
            role.slug, password=PASSWORD, first_name=role.name.split()[0], last_name="Signer"
        )
        team.members.add(user)
        RoleMembership.objects.create(team=team, user=user, role=role)
        signers.append((role, user))
    return owner, team, signers


def add_evidence(deployment, owner, signers) -> None:
    """What a filled-in checklist carries: a note and a link on every item, n/a reasons, a
    finished probe run (two regions, every fifth probe failing with three resources) and one
    failed item under a waiver."""
    from django.utils import timezone

    from readiness.checklists.models import ChecklistItem, DecisionSource, ItemStatus
    from readiness.probe_runs import services as probe_runs
    from readiness.probe_runs.models import ProbeResult, ProbeRun
    from signoff.lifecycle import services as signoff_services

    now = timezone.now()
    items = list(
        ChecklistItem.objects.filter(section__deployment=deployment).order_by(
            "section__position", "position"
        )
    )
    for index, item in enumerate(items):
        item.status = ItemStatus.DONE
        item.note = (
            f"Checked {item.title.lower()} for payments-api 2.4.0 in production; see the linked "
            "evidence. Reviewed together with the service owner, nothing outstanding."
        )
        item.evidence_url = (
            f"https://wiki.example.com/payments/readiness/2.4.0/{item.pk}?section="
            f"{item.section_id}&check={index}"
        )
        item.updated_by = owner
        item.updated_at = now
        item.source = DecisionSource.PERSON
        if item.qualifier:
            item.status = ItemStatus.NOT_APPLICABLE
            item.na_reason = "The service has no such component in this release."
    ChecklistItem.objects.bulk_update(
        items,
        ["status", "note", "evidence_url", "na_reason", "updated_by", "updated_at", "source"],
    )

    run = ProbeRun.objects.create(
        deployment=deployment,
        requested_by=owner,
        state="succeeded",
        regions=list(REGIONS),
        account_id="123456789012",
        finished_at=now,
    )
    results = []
    for number, (probe, item) in enumerate(probe_runs.probes_for(deployment)):
        failing = number % 5 == 0
        for region in REGIONS:
            findings = [
                {"id": f"arn:aws:iam::123456789012:role/app-{n}", "status": "pass", "reason": "ok"}
                for n in range(3)
            ]
            if failing:
                findings += [
                    {
                        "id": f"arn:aws:s3:::payments-artifacts-{region}-{n}",
                        "status": "fail",
                        "reason": "not compliant with the policy this probe checks",
                    }
                    for n in range(3)
                ]
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
                    actions=list(probe.actions),
                    remediation=probe.remediation,
                    state="done",
                    status="fail" if failing else "pass",
                    summary=f"{len(findings)} resources checked"
                    + (", 3 not compliant" if failing else ", all compliant"),
                    findings=findings,
                    finished_at=now,
                )
            )
    ProbeResult.objects.bulk_create(results)
    run.total = run.completed = len(results)
    run.save(update_fields=["total", "completed"])

    # One failed item, accepted as a risk by its owner so the role can still approve.
    failed = next(item for item in items if item.title == "Disaster Recovery")
    ChecklistItem.objects.filter(pk=failed.pk).update(
        status=ItemStatus.FAILED, note="The restore drill timed out at 41 minutes."
    )
    failed.refresh_from_db()
    granter = next(user for role, user in signers if role.pk == failed.owner_role_id)
    signoff_services.waiver_grant(
        item=failed,
        user=granter,
        reason="Restore drill re-run is booked for next week; risk accepted until then.",
        expires_at=now + datetime.timedelta(days=14),
    )


def build_deployment(owner, team, signers, *, version: str, evidence: bool):
    """An approved deployment of the seed checklist: four real sign-offs, and with
    `evidence` everything add_evidence() adds; without, only every item marked done."""
    from readiness.checklists import selectors, services
    from readiness.checklists.models import ChecklistItem, ItemStatus
    from signoff.lifecycle import services as signoff_services

    deployment = services.deployment_create(
        user=owner,
        team=team,
        template=selectors.default_template(),
        service="payments-api",
        environment="production",
        version=version,
        planned_date=datetime.date.today(),
    )
    if evidence:
        add_evidence(deployment, owner, signers)
    else:
        ChecklistItem.objects.filter(section__deployment=deployment).update(status=ItemStatus.DONE)
    signoff_services.signoff_request(deployment=deployment, user=owner)
    for role, user in signers:
        deployment.refresh_from_db()
        signoff_services.signoff_record(
            deployment=deployment,
            role=role,
            user=user,
            meaning="approve",
            comment="",
            password=PASSWORD,
            username=user.username,
        )
    deployment.refresh_from_db()
    return deployment


def sample_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def bare_words_html(data: bytes) -> str:
    """The record's text, one table row per line, no stylesheet: the same words as the
    record for WeasyPrint to lay out, none of its structure."""
    rows = "".join(
        f"<tr><td>{escape(line)}</td></tr>"
        for line in sample_text(data).splitlines()
        if line.strip()
    )
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><table>{rows}</table>"


def trusted_time_figures(record: bytes, *, runs: int) -> None:
    """Signing (and verifying) the record at each PAdES level against a real local PKI:
    what a TSA and validation data add to making a record, reported beside the render."""
    sys.path.insert(0, str(ROOT / "tests" / "signoff" / "records"))
    from django.conf import settings
    from pki import start_pki

    from signoff.records import signing

    # The first revision is the rendered record: sign that, not the benchmark's signed copy.
    unsigned = _first_revision(record)
    pki = start_pki(Path(tempfile.mkdtemp(prefix="readiness-bench-pki-")))
    try:
        settings.SIGNING_KEY_FILE = pki.key_path("signer")
        settings.SIGNING_CERT_FILE = pki.certificate_path("signer")
        settings.SIGNING_PKCS12_FILE = None
        settings.SIGNING_KEY_PASSWORD = ""
        settings.SIGNING_TRUST_ROOTS = [str(pki.root_path)]
        signer = signing.load_signer()
        print(f"signing the full record against a local PKI (median of {runs}, wall s):")
        for level, time_source in (
            ("B-B", signing.TrustedTime()),
            ("B-T", signing.TrustedTime(tsa_url=pki.tsa_url())),
            ("B-LTA", signing.TrustedTime(tsa_url=pki.tsa_url(), ltv=True)),
        ):
            signed = signing.sign_pdf(unsigned, reason="benchmark", signer=signer, time=time_source)
            sign_times, verify_times = [], []
            for _ in range(runs):
                started = time.perf_counter()
                signed = signing.sign_pdf(
                    unsigned, reason="benchmark", signer=signer, time=time_source
                )
                sign_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                verdict = signing.verify_pdf(signed.data)
                verify_times.append(time.perf_counter() - started)
            print(
                f"  {level:6s} sign {statistics.median(sign_times):.3f}  verify "
                f"{statistics.median(verify_times):.3f}  ({len(signed.data) // 1024} KB, "
                f"level read back: {verdict.pades_level})"
            )
    finally:
        pki.stop()


def _first_revision(data: bytes) -> bytes:
    """The bytes up to the first %%EOF: the PDF as rendered, before any signature."""
    end = data.find(b"%%EOF")
    return data if end < 0 else data[: end + 5] + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--page-size", default="A4", choices=["A4", "Letter"])
    parser.add_argument("--no-sign", action="store_true", help="time rendering only")
    parser.add_argument("--out", type=Path, help="write record.pdf and draft.pdf here")
    parser.add_argument("--keep-database-url", action="store_true")
    parser.add_argument(
        "--trusted-time",
        action="store_true",
        help="also time signing at B-B, B-T and B-LTA against a local certomancer PKI "
        "(TSA, OCSP, CRL on loopback; needs the test extra)",
    )
    args = parser.parse_args()

    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="readiness-bench-pdf-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.project.settings")
    if not args.keep_database_url:
        os.environ.pop("DATABASE_URL", None)
    # Approval enqueues the record task; with no broker that only logs, and a filesystem-free
    # in-memory broker keeps the benchmark from leaving queue files behind.
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    data_dir = Path(os.environ["DATA_DIR"])
    if not args.no_sign and not (data_dir / "signing" / "key.pem").exists():
        write_self_signed_pair(data_dir / "signing")

    import django

    django.setup()
    import logging

    # WeasyPrint narrates every layout step at INFO, which would drown the figures.
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from pypdf import PdfReader
    from weasyprint import HTML

    from signoff.records import pdf
    from signoff.records.evidence import record_evidence
    from signoff.records.snapshot import record_snapshot

    try:
        from signoff.records import signing
    except ImportError:
        signing = None
    signer = None
    if signing is not None and not args.no_sign and signing.signer_configured():
        signer = signing.load_signer()

    started = time.monotonic()
    owner, team, signers = build_team()
    full = build_deployment(owner, team, signers, version="2.4.0", evidence=True)
    lean = build_deployment(owner, team, signers, version="2.4.1", evidence=False)
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(
        f"{engine} database in {data_dir}; built two approved deployments of the 56-item "
        f"checklist with four sign-offs in {time.monotonic() - started:.1f} s"
    )

    def timed(function, *args, **kwargs):
        """(result, wall seconds, CPU seconds): the machine may be shared, and CPU time is
        what a render costs whatever else runs."""
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        return result, time.perf_counter() - wall, time.process_time() - cpu

    def record_once(deployment) -> tuple[bytes, dict]:
        times = {}
        snapshot, *times["snapshot"] = timed(
            record_snapshot, deployment, record_id=str(uuid.uuid4())
        )
        # The record as record_generate makes it: with its audit trail and probe results.
        data, *times["render"] = timed(
            pdf.render_record,
            snapshot,
            draft=False,
            page_size=args.page_size,
            evidence=record_evidence(snapshot),
        )
        if signer is not None:
            signed, *times["sign"] = timed(
                signing.sign_pdf, data, reason="benchmark", signer=signer
            )
            data = signed.data
        times["total"] = [sum(part[i] for part in times.values()) for i in (0, 1)]
        return data, times

    # Warm-up: fonts, the parsed stylesheet and the template are loaded once per process.
    sample, _ = record_once(full)
    lean_sample, _ = record_once(lean)
    pdf.render_bare_table(56)
    words = bare_words_html(sample)
    render_words = HTML(string=words).write_pdf
    render_words()
    runs: dict[str, list[dict]] = {"full": [], "lean": [], "floor": [], "words": []}
    for _ in range(args.runs):
        runs["full"].append(record_once(full)[1])
        runs["floor"].append({"total": timed(pdf.render_bare_table, 56)[1:]})
        runs["words"].append({"total": timed(render_words)[1:]})
        runs["lean"].append(record_once(lean)[1])

    def median(name: str, part: str, clock: int) -> float:
        return statistics.median(run[part][clock] for run in runs[name])

    def pages(data: bytes) -> int:
        return len(PdfReader(io.BytesIO(data)).pages)

    what = "snapshot + render + PAdES sign" if signer else "snapshot + render, NOT signed"
    if signer is None:
        why = "--no-sign" if args.no_sign else "signoff.signing missing or no key loaded"
        print(f"signing not measured: {why}")
    print(f"median of {args.runs} runs, wall s / CPU s ({what}; {args.page_size}):")
    floor_wall, floor_cpu = median("floor", "total", 0), median("floor", "total", 1)
    for name, label, data in (
        ("full", "record, full evidence", sample),
        ("lean", "record, statuses only", lean_sample),
    ):
        wall, cpu = median(name, "total", 0), median(name, "total", 1)
        parts = ", ".join(
            f"{part} {median(name, part, 0):.3f}/{median(name, part, 1):.3f}"
            for part in runs[name][0]
            if part != "total"
        )
        print(
            f"  {label:24s} {wall:.3f} / {cpu:.3f}  ({pages(data)} pages, "
            f"{len(data) // 1024} KB; {parts})  ratio {wall / floor_wall:.2f} wall, "
            f"{cpu / floor_cpu:.2f} CPU"
        )
    print(
        f"  {'floor: bare 56-row table':24s} {floor_wall:.3f} / {floor_cpu:.3f}  "
        f"({pages(pdf.render_bare_table(56))} pages)"
    )
    words_wall, words_cpu = median("words", "total", 0), median("words", "total", 1)
    full_wall, full_cpu = median("full", "total", 0), median("full", "total", 1)
    print(
        f"  {'words: the record text bare':24s} {words_wall:.3f} / {words_cpu:.3f}  "
        f"({pages(render_words())} pages, {words.count('<tr>')} lines, "
        f"{len(sample_text(sample))} characters)  ratio {words_wall / floor_wall:.2f} x floor; "
        f"record {full_wall / words_wall:.2f} x words wall, {full_cpu / words_cpu:.2f} CPU"
    )
    print("targets: full-evidence record at most 2.00 x the floor and 1.20 x the words")

    if args.trusted_time:
        trusted_time_figures(sample, runs=args.runs)

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "record.pdf").write_bytes(sample)
        draft = pdf.render_record(
            record_snapshot(full, record_id="DRAFT"), draft=True, page_size=args.page_size
        )
        (args.out / "draft.pdf").write_bytes(draft)
        print(f"wrote {args.out / 'record.pdf'} (signed if a signer loaded) and draft.pdf")


if __name__ == "__main__":
    main()
