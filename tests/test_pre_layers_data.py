"""Data written by the code before the package-layout refactor still verifies.

tests/data/pre_layers/ holds a full flow made by an older commit (see its README.md): every
row of the readiness, signoff and api tables, the stored files and the signing pair. The rows
are inserted with plain SQL by table name, so this test imports none of the project's
modules and keeps working whatever package the models move to, as long as their tables keep
their names. Then `verify_audit` must find the hash chain intact and `verify_record` must
accept the signed records, and both must notice a change.
"""

import base64
import datetime
import decimal
import json
import re
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection

DATA = Path(__file__).parent / "data" / "pre_layers"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
AUDIT_TABLE = "signoff_auditevent"
RECORD_TABLE = "signoff_signedrecord"

pytestmark = pytest.mark.django_db


def dump() -> list[dict]:
    """The exported tables, parents before children: [{"table", "columns", "rows"}], in
    today's schema (upgraded())."""
    return upgraded(json.loads((DATA / "rows.json").read_text()))


def upgraded(tables: list[dict]) -> list[dict]:
    """The rows as the migrations since the export left them: readiness 0018 moved each
    deployment's single AWS target (its aws_* columns) into one readiness_awsaccount row.
    (The exported flow has no probe run, so the run and result columns it changed are not
    filled here.)"""
    moved = ("aws_account_id", "aws_external_id", "aws_regions", "aws_role_arn")
    accounts = []
    for entry in tables:
        if entry["table"] == "readiness_deployment":
            for row in entry["rows"]:
                target = {column: row.pop(column) for column in moved}
                if target["aws_account_id"]:
                    accounts.append(
                        {
                            "id": len(accounts) + 1,
                            "deployment_id": row["id"],
                            "account_id": target["aws_account_id"],
                            "name": "",
                            "regions": target["aws_regions"],
                            "role_arn": target["aws_role_arn"],
                            "external_id": target["aws_external_id"],
                            "created_at": row["created_at"],
                        }
                    )
            entry["columns"] = [column for column in entry["columns"] if column not in moved]
        if entry["table"] in ("readiness_proberun", "readiness_proberesult"):
            assert not entry["rows"], "runs of the export would need their accounts filled"
            entry["columns"] = [c for c in entry["columns"] if c not in ("account_id", "role_arn")]
    at = next(i for i, entry in enumerate(tables) if entry["table"] == "readiness_deployment")
    tables.insert(
        at + 1,
        {
            "table": "readiness_awsaccount",
            "columns": list(accounts[0]) if accounts else [],
            "rows": accounts,
        },
    )
    return tables


def rows(tables: list[dict], name: str) -> list[dict]:
    return next(entry["rows"] for entry in tables if entry["table"] == name)


def decode(value):
    """A value of rows.json as this database's driver takes it (what the ORM would send)."""
    if not isinstance(value, dict):
        return value
    ((kind, raw),) = value.items()
    ops, features = connection.ops, connection.features
    if kind == "$datetime":
        return ops.adapt_datetimefield_value(datetime.datetime.fromisoformat(raw))
    if kind == "$date":
        return ops.adapt_datefield_value(datetime.date.fromisoformat(raw))
    if kind == "$time":
        return ops.adapt_timefield_value(datetime.time.fromisoformat(raw))
    if kind == "$duration_us":
        duration = datetime.timedelta(microseconds=raw)
        return duration if features.has_native_duration_field else raw
    if kind == "$decimal":
        return decimal.Decimal(raw)
    if kind == "$uuid":
        return raw if features.has_native_uuid_field else raw.replace("-", "")
    if kind == "$base64":
        return base64.b64decode(raw)
    if kind == "$json":
        return raw  # the stored text, as PostgreSQL printed it; both databases parse it
    raise ValueError(f"unknown marker {kind}")


def load(tables: list[dict]) -> None:
    """Replace what the migrations seeded in these tables by the exported rows."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for entry in reversed(tables):  # children first
            cursor.execute(f"SELECT 1 FROM {quote(entry['table'])}")
            if cursor.fetchone():  # the append-only tables (empty here) refuse DELETE
                cursor.execute(f"DELETE FROM {quote(entry['table'])}")
        for entry in tables:
            if not entry["rows"]:
                continue
            columns = entry["columns"]
            cursor.executemany(
                f"INSERT INTO {quote(entry['table'])} ({', '.join(map(quote, columns))}) "
                f"VALUES ({', '.join(['%s'] * len(columns))})",
                [[decode(row[column]) for column in columns] for row in entry["rows"]],
            )
        if connection.vendor == "postgresql":  # SQLite's AUTOINCREMENT follows by itself
            for entry in tables:
                for sequence in connection.introspection.get_sequences(cursor, entry["table"]):
                    column = quote(sequence["column"])
                    cursor.execute(
                        f"SELECT setval(%s, COALESCE(MAX({column}), 1), MAX({column}) IS NOT NULL)"
                        f" FROM {quote(entry['table'])}",
                        [sequence["name"]],
                    )


@pytest.fixture
def configured(settings, tmp_path):
    """The stored files under a fresh MEDIA_ROOT, and the signing settings of the old run."""
    shutil.copytree(DATA / "media", tmp_path / "media")
    shutil.copytree(DATA / "signing", tmp_path / "signing")
    old = MANIFEST["settings"]
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / old["MEDIA_ROOT"]
    settings.SIGNING_CERT_FILE = tmp_path / old["SIGNING_CERT_FILE"]
    settings.SIGNING_KEY_FILE = tmp_path / old["SIGNING_KEY_FILE"]
    settings.SIGNING_KEY_PASSWORD = old["SIGNING_KEY_PASSWORD"]
    settings.SIGNING_PKCS12_FILE = old["SIGNING_PKCS12_FILE"]
    settings.SIGNING_TRUST_ROOTS = old["SIGNING_TRUST_ROOTS"]
    return tmp_path


def verify_record(path: Path) -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("verify_record", str(path), "--format", "json", stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, json.loads(out.getvalue())
    return 0, json.loads(out.getvalue())


def changed_byte(data: bytes) -> bytes:
    """One bit flipped in the middle of the first range the signature covers."""
    found = re.search(rb"/ByteRange\s*\[\s*\d+\s+(\d+)", data)
    changed = bytearray(data)
    changed[int(found.group(1)) // 2] ^= 0x01
    return bytes(changed)


def test_the_dataset_holds_a_whole_flow():
    tables = dump()
    events = rows(tables, AUDIT_TABLE)
    assert len(events) == MANIFEST["audit_events"] > 0
    assert {e["action"] for e in events} >= {
        "template.imported",
        "deployment.created",
        "item.updated",
        "waiver.granted",
        "signoff.signed",
        "signoff.revoked",
        "signoff.stale",
        "record.created",
    }
    assert any(e["deployment_id"] is None for e in events)  # installation-wide events
    records = rows(tables, RECORD_TABLE)
    assert [r["deployment_state"] for r in records] == ["approved", "verified"]
    assert all(r["pades_signed"] for r in records)


def test_the_old_audit_chain_is_intact(configured):
    tables = dump()
    load(tables)
    events = rows(tables, AUDIT_TABLE)
    out = StringIO()

    call_command("verify_audit", "--heads", stdout=out)

    # Written before chains were split per deployment: the one legacy chain, in id order.
    assert f"legacy\t{len(events)}\t{events[-1]['hash']}\tok\n" in out.getvalue()
    assert f"audit trail intact: {len(events)} events on 1 chains" in out.getvalue()


@pytest.mark.parametrize("record", MANIFEST["records"], ids=lambda r: f"record-{r['number']}")
def test_an_old_signed_record_is_valid(configured, record):
    load(dump())
    assert default_storage.exists(record["file"])  # where the storage expects it
    path = configured / "media" / record["file"]

    code, report = verify_record(path)

    assert code == 0, report["verdict"]
    assert report["valid"] is True
    assert report["pdf"]["signed"] and report["pdf"]["trusted"] and report["pdf"]["intact"]
    assert report["pdf"]["sha256"] == record["sha256"]
    assert report["record"]["record_id"] == record["record_id"]
    assert report["record"]["number"] == record["number"]
    assert report["record"]["deployment_state"] == record["state"]
    # Made before records embedded their content: shown from the database, and said so.
    content = report["content"]
    assert content["source"] == "database"
    assert report["content_basis"].startswith("This record predates embedded content")
    assert report["database"]["status"] == "predates"
    assert report["database"]["differences"] == []
    assert content["record_id"] == record["record_id"]
    assert [line["role"] for line in content["signatures"]] == [
        "Tech Lead",
        "Security",
        "DevOps",
        "Product",
    ]


def test_an_old_record_is_reported_as_predating_embedded_content(configured):
    load(dump())
    path = configured / "media" / MANIFEST["records"][0]["file"]
    out = StringIO()

    call_command("verify_record", str(path), stdout=out)

    text = out.getvalue()
    assert "Verdict: VALID" in text
    assert "This record predates embedded content: its content is shown from the database" in text
    assert "[from the database]   Tech Lead: " in text
    assert "Not compared: the record predates embedded content." in text
    assert "differs" not in text


@pytest.mark.parametrize("column", ["reason", "after"])
def test_an_old_audit_event_edited_before_loading_breaks_the_chain(configured, column):
    tables = dump()
    events = rows(tables, AUDIT_TABLE)
    target = next(e for e in events if e["action"] == "signoff.signed")
    if column == "reason":
        target["reason"] = "nothing to see"
    else:
        after = json.loads(target["after"]["$json"])
        after["printed_name"] = "Somebody Else"
        target["after"] = {"$json": json.dumps(after)}
    load(tables)

    with pytest.raises(CommandError, match=rf"event #{target['id']} .* was edited"):
        call_command("verify_audit", stdout=StringIO())


def test_an_old_record_with_a_changed_byte_is_not_valid(configured, tmp_path):
    load(dump())
    record = MANIFEST["records"][0]
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(changed_byte((configured / "media" / record["file"]).read_bytes()))

    code, report = verify_record(changed)

    assert code == 1
    assert report["valid"] is False
    assert report["record"] is None
    assert report["claimed_record_id"] == record["record_id"]
    assert "differs from the stored copy" in report["verdict"]
