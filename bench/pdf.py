"""Benchmark: the signed record of a full checklist against WeasyPrint's floor.

Builds, in a throwaway SQLite database under a temporary DATA_DIR, a deployment of the seed
checklist (56 items) with evidence on every item (notes, links, n/a reasons, a waiver), a
finished probe run with results and failing findings, and four real sign-offs; then times,
median of N runs each, interleaved:

  record  record_snapshot() + render_record() (+ signing.sign_pdf() when a signer loads)
  floor   render_bare_table(56): WeasyPrint alone on a plain 56-row table

and prints both and their ratio (target: record ≤ 2 × floor). Not run by CI.

    DATA_DIR=$(mktemp -d) .venv/bin/python bench/pdf.py
    .venv/bin/python bench/pdf.py --runs 15 --page-size Letter
    .venv/bin/python bench/pdf.py --out /tmp/record   # also writes record.pdf and draft.pdf

DATA_DIR defaults to a new temporary folder; DATABASE_URL is ignored unless --keep-database-url
is given, so the benchmark never writes into a real database.
"""

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
import uuid
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


def build_deployment():
    """An approved deployment of the seed checklist with evidence everywhere."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from readiness import probe_runs, selectors, services
    from readiness.models import (
        ChecklistItem,
        DecisionSource,
        ItemStatus,
        ProbeResult,
        ProbeRun,
        Team,
    )
    from signoff import services as signoff_services
    from signoff.models import Role, RoleMembership

    users = get_user_model().objects
    owner = users.create_user("owner", password=PASSWORD, first_name="Olive", last_name="Owner")
    team = Team.objects.create(name="Payments", slug="payments")
    team.members.add(owner)
    signers = {}
    for role in Role.objects.all():
        user = users.create_user(
            role.slug, password=PASSWORD, first_name=role.name.split()[0], last_name="Signer"
        )
        team.members.add(user)
        RoleMembership.objects.create(team=team, user=user, role=role)
        signers[role.slug] = (role, user)
    deployment = services.deployment_create(
        user=owner,
        team=team,
        template=selectors.default_template(),
        service="payments-api",
        environment="production",
        version="2.4.0",
        planned_date=datetime.date.today(),
    )
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
        for region in REGIONS:
            failing = number % 5 == 0
            findings = [
                {"id": f"arn:aws:iam::123456789012:role/service-{n}", "status": "pass", "reason": "ok"}
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
    failed = next(item for item in items if item.owner_role_id and not item.qualifier)
    ChecklistItem.objects.filter(pk=failed.pk).update(
        status=ItemStatus.FAILED, note="The restore drill timed out at 41 minutes."
    )
    granter = next(user for role, user in signers.values() if role.pk == failed.owner_role_id)
    failed.refresh_from_db()
    signoff_services.waiver_grant(
        item=failed,
        user=granter,
        reason="Restore drill re-run is booked for next week; risk accepted until then.",
        expires_at=now + datetime.timedelta(days=14),
    )

    signoff_services.signoff_request(deployment=deployment, user=owner)
    for role, user in signers.values():
        deployment.refresh_from_db()
        signoff_services.signoff_record(
            deployment=deployment,
            role=role,
            user=user,
            meaning="approve",
            comment="",
            password=PASSWORD,
        )
    deployment.refresh_from_db()
    return deployment


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--page-size", default="A4", choices=["A4", "Letter"])
    parser.add_argument("--no-sign", action="store_true", help="time rendering only")
    parser.add_argument("--out", type=Path, help="write record.pdf and draft.pdf here")
    parser.add_argument("--keep-database-url", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="readiness-bench-pdf-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")
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
    from signoff import pdf
    from signoff.record_snapshot import record_snapshot

    try:
        from signoff import signing
    except ImportError:
        signing = None
    signer = None
    if signing is not None and not args.no_sign and signing.signer_configured():
        signer = signing.load_signer()

    started = time.monotonic()
    deployment = build_deployment()
    print(
        f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} in {data_dir}; "
        f"built {deployment} ({deployment.get_state_display()}) in "
        f"{time.monotonic() - started:.1f} s"
    )

    def record_once() -> tuple[bytes, dict]:
        times = {}
        clock = time.perf_counter()
        snapshot = record_snapshot(deployment, record_id=str(uuid.uuid4()))
        times["snapshot"] = time.perf_counter() - clock
        clock = time.perf_counter()
        data = pdf.render_record(snapshot, draft=False, page_size=args.page_size)
        times["render"] = time.perf_counter() - clock
        if signer is not None:
            clock = time.perf_counter()
            data = signing.sign_pdf(data, reason="benchmark", signer=signer).data
            times["sign"] = time.perf_counter() - clock
        times["total"] = sum(times.values())
        return data, times

    def floor_once() -> float:
        clock = time.perf_counter()
        pdf.render_bare_table(56)
        return time.perf_counter() - clock

    # Warm-up: fonts, the parsed stylesheet and template loading are per-process costs.
    sample, _ = record_once()
    floor_once()
    record_times: list[dict] = []
    floor_times: list[float] = []
    for _ in range(args.runs):
        record_times.append(record_once()[1])
        floor_times.append(floor_once())

    import io

    from pypdf import PdfReader

    pages = len(PdfReader(io.BytesIO(sample)).pages)
    floor = statistics.median(floor_times)
    record = statistics.median(t["total"] for t in record_times)
    parts = ", ".join(
        f"{name} {statistics.median(t[name] for t in record_times):.3f} s"
        for name in record_times[0]
        if name != "total"
    )
    what = "snapshot + render + PAdES sign" if signer else "snapshot + render (not signed)"
    if signer is None:
        reason = "--no-sign" if args.no_sign else "no signer (signoff.signing missing or no key)"
        print(f"signing not measured: {reason}")
    print(f"record ({what}), {pages} pages {args.page_size}, {len(sample) // 1024} KB:")
    print(
        f"  median {record:.3f} s (min {min(t['total'] for t in record_times):.3f}, "
        f"max {max(t['total'] for t in record_times):.3f}) over {args.runs} runs: {parts}"
    )
    print(
        f"floor (bare 56-row table): median {floor:.3f} s (min {min(floor_times):.3f}, "
        f"max {max(floor_times):.3f})"
    )
    print(f"ratio record / floor: {record / floor:.2f} (target ≤ 2.00)")

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "record.pdf").write_bytes(sample)
        draft = pdf.render_record(
            record_snapshot(deployment, record_id="DRAFT"), draft=True, page_size=args.page_size
        )
        (args.out / "draft.pdf").write_bytes(draft)
        print(f"wrote {args.out / 'record.pdf'} and {args.out / 'draft.pdf'}")


if __name__ == "__main__":
    main()
