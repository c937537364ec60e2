"""Generator of the pre-layers dataset (reference only: kept beside the data it made).

Run against the code of the commit named in README.md, on an empty PostgreSQL database:

    createdb -h 127.0.0.1 -U postgres readiness_fixture
    cd <checkout of that commit>
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/readiness_fixture DATA_DIR=/tmp/old-data \\
        PYTHONPATH=. <venv>/bin/python <this file> <output folder>

It migrates, drives a full flow through the services (users, a team with the four roles, a
template import, an API token, a deployment from the default template, item edits, a waiver,
evidence, sign-offs with a revocation and a stale signature, approval, deployed, verified),
makes the signed records the way `make_record` does, checks them with `verify_audit` and
`verify_record`, and exports every row of the readiness, signoff and api tables (and the
tables they reference) to rows.json, with the record files and the signing pair.
"""

import base64
import datetime
import decimal
import io
import ipaddress
import json
import os
import shutil
import sys
import uuid
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")
django.setup()

from django.apps import apps  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

PASSWORD = "correct horse battery staple"
APPS = ("readiness", "signoff", "api")
SKIPPED = {"django_migrations"}

CUSTOM_TEMPLATE = """# Batch Job Readiness

For nightly batch jobs.

## Operations

- [ ] **Schedule:** Cron expression reviewed
- [ ] **Idempotency:** A rerun changes nothing

## Monitoring

- [ ] **Alerting:** A failed run pages the owner

## Final Sign-Off

| Role | Name | Date | Signature |
| :--- | :--- | :--- | :--- |
| **Tech Lead** | | | |
| **DevOps** | | | |
"""


def flow() -> dict:
    from api import evidence as api_evidence
    from api import tokens
    from readiness import selectors, services
    from readiness.models import ChecklistItem, ChecklistTemplate, ItemStatus, Team
    from signoff import audit, memberships
    from signoff import services as signoff_services
    from signoff.models import Role, SignOff

    User = get_user_model()
    admin = User.objects.create_superuser(
        "admin", "admin@example.com", PASSWORD, first_name="Ada", last_name="Admin"
    )
    people = {
        "tech-lead": ("lead", "Lena", "Lead"),
        "security": ("sec", "Sami", "Secure"),
        "devops": ("ops", "Olu", "Operator"),
        "product": ("prod", "Priya", "Product"),
    }
    users = {
        slug: User.objects.create_user(
            username, f"{username}@example.com", PASSWORD, first_name=first, last_name=last
        )
        for slug, (username, first, last) in people.items()
    }
    team = Team.objects.create(name="Payments", slug="payments")
    for slug, user in users.items():
        memberships.team_member_add(team=team, user=user, actor=admin)
        memberships.membership_add(
            team=team, user=user, role=Role.objects.get(slug=slug), actor=admin
        )

    # Installation-wide events: a template import and an owner change on its item.
    imported = services.template_import(source=CUSTOM_TEMPLATE, user=admin).template
    item = imported.sections.get(position=1).items.get(position=1)
    memberships.template_item_owner_set(
        item=item, role=Role.objects.get(slug="devops"), actor=admin
    )
    token, _raw = tokens.token_create(user=users["devops"], name="GitHub Actions", scope="write")

    lead = users["tech-lead"]
    template = selectors.default_template()
    deployment = services.deployment_create(
        user=lead,
        team=team,
        template=template,
        service="payments-api",
        environment="production",
        version="2.4.0",
        planned_date=datetime.date(2026, 12, 10),
    )
    services.deployment_set_aws_target(
        deployment=deployment,
        user=users["devops"],
        aws_account_id="123456789012",
        aws_regions=["eu-west-1", "us-east-1"],
    )

    def items():
        return ChecklistItem.objects.filter(section__deployment=deployment).select_related(
            "owner_role", "section__deployment"
        )

    def holder(item):
        return users[item.owner_role.slug] if item.owner_role else lead

    def edit(title, status=None, note=None, na_reason="", user=None):
        item = items().get(title=title)
        return services.item_update(
            item=item,
            user=user or holder(item),
            expected_version=item.version,
            status=status or item.status,
            note=item.note if note is None else note,
            evidence_url=item.evidence_url,
            na_reason=na_reason,
        )

    ip = audit.current_ip.set("203.0.113.7")
    edit("MFA", ItemStatus.DONE, "Checked in IAM: every admin has a hardware key.")
    edit("CDN", ItemStatus.NOT_APPLICABLE, na_reason="An API only: no static assets.")
    edit("Load Testing", note="k6 run booked for 2026-11-30; target p99 < 200 ms.")
    edit("Load Testing", ItemStatus.DONE, "k6 run on 2026-11-30: p99 180 ms at 2x peak.")
    audit.current_ip.reset(ip)

    via = audit.current_via.set(tokens.token_label(token))
    api_evidence.evidence_upload(
        deployment=deployment,
        user=users["devops"],
        kind="gitleaks",
        upload=api_evidence.Upload(filename="gitleaks.json", data=b"[]\n"),
        token=token,
    )
    audit.current_via.reset(via)

    pen_test = items().get(title="Penetration Test")
    signoff_services.waiver_grant(
        item=pen_test,
        user=holder(pen_test),
        reason="Annual pen test booked for January; no new external surface in 2.4.0.",
        expires_at=timezone.now() + datetime.timedelta(days=60),
    )
    for item in items().exclude(title="Penetration Test").filter(status=ItemStatus.OPEN):
        edit(item.title, ItemStatus.DONE)

    signoff_services.signoff_request(deployment=deployment, user=lead)

    def sign(slug, meaning="approve", comment=""):
        deployment.refresh_from_db()
        return signoff_services.signoff_record(
            deployment=deployment,
            role=Role.objects.get(slug=slug),
            user=users[slug],
            meaning=meaning,
            comment=comment,
            password=PASSWORD,
            username=users[slug].username,
        )

    ip = audit.current_ip.set("2001:db8::17")
    sign("tech-lead")
    # A change the Tech Lead's signature covers: it turns stale and is signed again.
    edit("Caching", note="Redis read-through cache, 5 min TTL.")
    sign("tech-lead")
    first = sign("security")
    signoff_services.signoff_revoke(
        signoff=first, user=users["security"], reason="Signed before reading the waiver."
    )
    sign("security", "approve_with_conditions", "Pen test in January, before the waiver ends.")
    sign("devops")
    sign("product")
    audit.current_ip.reset(ip)
    deployment.refresh_from_db()
    assert deployment.state == "approved", deployment.state

    out = io.StringIO()
    call_command("make_record", deployment.pk, stdout=out)
    signoff_services.deployment_mark_deployed(
        deployment=deployment, user=users["devops"], deployed_at=timezone.now()
    )
    for check in deployment.post_deployment_checks.order_by("position"):
        signoff_services.post_check_record(
            check=check, user=users["devops"], note=f"Checked: {check.label}"
        )
    deployment.refresh_from_db()
    assert deployment.state == "verified", deployment.state
    call_command("make_record", deployment.pk, stdout=out)
    print(out.getvalue(), end="")
    return {
        "deployment_id": deployment.pk,
        "signoffs": SignOff.objects.count(),
        "templates": ChecklistTemplate.objects.count(),
    }


# --- Export -------------------------------------------------------------------------------


def encode(value, data_type: str):
    if value is None:
        return None
    if data_type in ("json", "jsonb"):
        return {"$json": value if isinstance(value, str) else json.dumps(value)}
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime):
        assert value.tzinfo is not None, value
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"$time": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {"$duration_us": value // datetime.timedelta(microseconds=1)}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, bytes | memoryview | bytearray):
        return {"$base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} ({data_type})")


def tables_to_dump(cursor) -> tuple[list[str], dict[str, set[str]]]:
    wanted = set()
    for label in APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            wanted.add(model._meta.db_table)
    depends: dict[str, set[str]] = {}
    pending = sorted(wanted)
    while pending:  # our tables and, transitively, every table they reference
        table = pending.pop()
        relations = connection.introspection.get_relations(cursor, table)
        depends[table] = {other for _column, (_other_column, other) in relations.items()}
        depends[table].discard(table)
        for other in depends[table]:
            if other not in depends and other not in pending:
                pending.append(other)
    order: list[str] = []
    while len(order) < len(depends):  # parents first
        ready = sorted(
            t for t, parents in depends.items() if t not in order and parents <= set(order)
        )
        assert ready, f"a foreign key cycle among {set(depends) - set(order)}"
        order.extend(ready)
    return [t for t in order if t not in SKIPPED], depends


def export(out: Path) -> list[dict]:
    dump = []
    with connection.cursor() as cursor:
        order, depends = tables_to_dump(cursor)
        for table in order:
            cursor.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s",
                [table],
            )
            types = dict(cursor.fetchall())
            order_by = "id" if "id" in types else "1"
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)} ORDER BY {order_by}")
            columns = [c.name for c in cursor.description]
            rows = [
                {c: encode(v, types[c]) for c, v in zip(columns, row, strict=True)}
                for row in cursor.fetchall()
            ]
            dump.append(
                {
                    "table": table,
                    "references": sorted(depends[table]),
                    "columns": columns,
                    "rows": rows,
                }
            )
    (out / "rows.json").write_text(json.dumps(dump, indent=1, ensure_ascii=False) + "\n")
    return dump


def main(out: Path) -> None:
    assert connection.vendor == "postgresql", "run this on PostgreSQL"
    out.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    # Valid for 100 years, so the dataset's signatures stay verifiable.
    call_command("create_signing_cert", "--days", "36500", "--if-missing")
    facts = flow()

    verified = io.StringIO()
    call_command("verify_audit", stdout=verified)
    from signoff.models import AuditEvent, SignedRecord

    records = list(SignedRecord.objects.order_by("id"))
    for record in records:
        call_command("verify_record", record.file.path, stdout=verified)
    print(verified.getvalue(), end="")

    dump = export(out)
    # Every stored file (the records, the uploaded evidence), at its storage name.
    shutil.copytree(settings.MEDIA_ROOT, out / "media", dirs_exist_ok=True)
    (out / "signing").mkdir(exist_ok=True)
    shutil.copyfile(settings.SIGNING_CERT_FILE, out / "signing" / "cert.pem")
    shutil.copyfile(settings.SIGNING_KEY_FILE, out / "signing" / "key.pem")
    manifest = {
        "settings": {
            "SIGNING_CERT_FILE": "signing/cert.pem",
            "SIGNING_KEY_FILE": "signing/key.pem",
            "SIGNING_KEY_PASSWORD": "",
            "SIGNING_PKCS12_FILE": None,
            "SIGNING_TRUST_ROOTS": [],
            "MEDIA_ROOT": "media",
            "RECORD_PAGE_SIZE": settings.RECORD_PAGE_SIZE,
            "SITE_URL": settings.SITE_URL,
        },
        "records": [
            {
                "record_id": str(r.record_id),
                "number": r.number,
                "state": r.deployment_state,
                "file": r.file.name,
                "sha256": r.sha256,
            }
            for r in records
        ],
        "audit_events": AuditEvent.objects.count(),
        "deployment_id": facts["deployment_id"],
        "tables": {entry["table"]: len(entry["rows"]) for entry in dump},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
