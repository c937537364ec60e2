"""`manage.py backup` and `manage.py restore`: a deployment with sign-offs and a signed record
goes into one archive and comes back, in a fresh database and a fresh storage, with its audit
trail and every record verifying; a damaged archive and a non-empty database are refused."""

import gzip
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from readiness.audit.models import AuditEvent
from readiness.audit.services import audit_checkpoint
from signoff.records.models import SignedRecord
from tests.signoff_helpers import approve_all, signers_for

ROOT = Path(__file__).resolve().parents[2]
# pg_dump runs in its own process: the test data must be committed for it to see.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def plain_environment(data_dir: Path, *, embedded: bool = False) -> dict[str, str]:
    """The environment of an installation in `data_dir`, with nothing of this test's own
    signing or storage configuration; `embedded`: no DATABASE_URL or REDIS_URL either."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SIGNING_", "DJANGO_", "MEDIA_ROOT", "STATIC_ROOT"))
    }
    env["DATA_DIR"] = str(data_dir)
    if embedded:
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
    data_dir.mkdir(exist_ok=True)
    return env


@pytest.fixture
def media(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    return tmp_path / "media"


@pytest.fixture
def signing_key(settings, tmp_path):
    settings.SIGNING_KEY_FILE = tmp_path / "signing" / "key.pem"
    settings.SIGNING_CERT_FILE = tmp_path / "signing" / "cert.pem"
    call_command("create_signing_cert", "--common-name", "Readiness test", stdout=io.StringIO())
    return settings.SIGNING_KEY_FILE


@pytest.fixture
def eager_tasks():
    from readiness.project.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def fresh(tmp_path):
    """The environment of a fresh installation to restore into: an empty DATA_DIR (storage,
    signing material) and, on PostgreSQL, a newly created database on the test server,
    dropped afterwards (on SQLite the database is a file in that DATA_DIR)."""
    env = plain_environment(tmp_path / "fresh")
    if connection.vendor != "postgresql":
        env.pop("DATABASE_URL", None)
        yield env
        return
    database = connection.settings_dict
    name = f"readiness_restore_{uuid.uuid4().hex[:12]}"
    server = {
        "host": database["HOST"] or "127.0.0.1",
        "port": database["PORT"] or 5432,
        "user": database["USER"],
        "password": database["PASSWORD"] or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    credentials = quote(server["user"], safe="")
    if server["password"]:
        credentials += ":" + quote(server["password"], safe="")
    env["DATABASE_URL"] = f"postgres://{credentials}@{server['host']}:{server['port']}/{name}"
    try:
        yield env
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def seeded(deployment, team, signing_key, media, eager_tasks):
    """A deployment approved by every role, its signed record stored, and a checkpoint of
    the trail in the anchor log."""
    approve_all(deployment, signers_for(team))
    audit_checkpoint()
    assert SignedRecord.objects.filter(pades_signed=True).count() == 1
    return deployment


def back_up(tmp_path: Path) -> tuple[Path, str]:
    output = io.StringIO()
    call_command("backup", str(tmp_path / "backups"), stdout=output)
    (archive,) = (tmp_path / "backups").glob("readiness-backup-*.tar.gz")
    return archive, output.getvalue()


def manifest_of(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        return json.load(tar.extractfile("manifest.json"))


def test_backup_restores_into_a_fresh_database_and_storage_and_verifies(
    seeded, fresh, media, signing_key, tmp_path
):
    archive, printed = back_up(tmp_path)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert "holds the signing private key" in printed
    manifest = manifest_of(archive)
    record = SignedRecord.objects.get()
    anchor_logs = sorted(p.name for p in (media / "audit-anchors").iterdir())
    assert manifest["counts"]["records"] == 1
    assert manifest["counts"]["audit_events"] == AuditEvent.objects.count()
    assert manifest["latest_checkpoint"]["root"]
    assert manifest["migrations"]["signoff"]
    assert f"storage/{record.file.name}" in manifest["files"]
    assert {entry["setting"] for entry in manifest["signing"]} == {
        "SIGNING_KEY_FILE",
        "SIGNING_CERT_FILE",
    }

    restored = manage("restore", str(archive), env=fresh)

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "audit trail intact" in restored.stdout
    assert "verify_record: 1 of 1 stored records valid" in restored.stdout
    assert "counts match the manifest" in restored.stdout
    fresh_dir = Path(fresh["DATA_DIR"])
    restored_file = fresh_dir / "media" / record.file.name
    assert restored_file.read_bytes() == record.file.open("rb").read()
    assert sorted(p.name for p in (fresh_dir / "media" / "audit-anchors").iterdir()) == (
        anchor_logs
    )
    key = fresh_dir / "signing" / "key.pem"
    assert key.read_bytes() == signing_key.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Checked again by the existing commands alone, against the restored installation.
    audit = manage("verify_audit", env=fresh)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    events = manifest["counts"]["audit_events"]
    assert f"audit trail intact: {events} events" in audit.stdout
    verified = manage("verify_record", str(restored_file), env=fresh)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Verdict: VALID" in verified.stdout
    assert "Database agrees with the signed record." in verified.stdout


def test_restore_refuses_a_non_empty_database_unless_forced(seeded, fresh, tmp_path):
    archive, _ = back_up(tmp_path)
    assert manage("restore", str(archive), env=fresh).returncode == 0

    again = manage("restore", str(archive), env=fresh)

    assert again.returncode == 1
    assert "restore refused: the configured database is not empty" in again.stderr
    assert "--force" in again.stderr
    forced = manage("restore", str(archive), "--force", env=fresh)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "verify_record: 1 of 1 stored records valid" in forced.stdout


def test_restore_refuses_a_tampered_archive_naming_the_file(seeded, fresh, tmp_path):
    archive, _ = back_up(tmp_path)
    dump = manifest_of(archive)["database"]["file"]
    tampered = tmp_path / "tampered.tar.gz"
    with (
        tarfile.open(archive) as source,
        gzip.open(tampered, "wb") as raw,
        tarfile.open(fileobj=raw, mode="w") as target,
    ):
        for member in source:
            data = source.extractfile(member).read()
            if member.name == dump:
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
            target.addfile(member, io.BytesIO(data))

    refused = manage("restore", str(tampered), env=fresh)

    assert refused.returncode == 1
    assert f"{dump} does not match its sha256 in the manifest" in refused.stderr
    # Refused before anything was written.
    assert not (Path(fresh["DATA_DIR"]) / "media").exists()
    assert not (Path(fresh["DATA_DIR"]) / "signing").exists()


def test_restore_refuses_an_archive_of_newer_code(media, fresh, tmp_path):
    archive, _ = back_up(tmp_path)
    newer = tmp_path / "newer.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(newer, "w:gz") as target:
        for member in source:
            data = source.extractfile(member).read()
            if member.name == "manifest.json":
                manifest = json.loads(data)
                manifest["migrations"]["signoff"].append("9999_from_the_future")
                data = json.dumps(manifest).encode()
                member.size = len(data)
            target.addfile(member, io.BytesIO(data))

    refused = manage("restore", str(newer), env=fresh)

    assert refused.returncode == 1
    assert "migration signoff.9999_from_the_future, which this code does not know" in (
        refused.stderr
    )
    assert not (Path(fresh["DATA_DIR"]) / "media").exists()


SEED = """
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("create_signing_cert")

from readiness.audit.services import audit_checkpoint
from readiness.project.celery import app
from tests.factories import TeamFactory, UserFactory, make_deployment
from tests.signoff_helpers import approve_all, signers_for

app.conf.task_always_eager = True
member = UserFactory(username="lee")
team = TeamFactory(name="Payments", slug="payments", members=[member])
deployment = make_deployment(user=member, team=team)
approve_all(deployment, signers_for(team))
print(audit_checkpoint())
"""


def test_embedded_sqlite_round_trip(tmp_path):
    """The embedded mode (no DATABASE_URL, no REDIS_URL): what a first-run install backs up
    restores into another DATA_DIR and verifies."""
    original = plain_environment(tmp_path / "original", embedded=True)
    # One process migrates, makes the key and seeds: each start of Django costs seconds here.
    for step in (
        ("shell", "-c", SEED),
        ("backup", str(tmp_path / "embedded.tar.gz")),
    ):
        done = manage(*step, env=original)
        assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"
    assert "holds the signing private key" in done.stdout
    manifest = manifest_of(tmp_path / "embedded.tar.gz")
    assert manifest["database"] == {"vendor": "sqlite", "file": "database/readiness.sqlite3"}
    assert manifest["counts"]["records"] == 1

    target = plain_environment(tmp_path / "restored", embedded=True)
    restored = manage("restore", str(tmp_path / "embedded.tar.gz"), env=target)

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "audit trail intact" in restored.stdout
    assert "verify_record: 1 of 1 stored records valid" in restored.stdout
    (record_file,) = (tmp_path / "restored" / "media" / "records").rglob("*.pdf")
    verified = manage("verify_record", str(record_file), env=target)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert list((tmp_path / "restored" / "media" / "audit-anchors").glob("checkpoint-*.json"))
