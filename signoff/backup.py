"""Backups of an installation, and their restore: `manage.py backup` and `manage.py restore`.

An archive is one `.tar.gz` file (mode 0600): a single object to copy, encrypt and keep, whose
permissions are set once, and whose hashes cover every byte restored from it. It holds:

- `database/readiness.dump`: PostgreSQL's `pg_dump --format=custom`, taken under a snapshot
  exported from a REPEATABLE READ transaction, in which the manifest's counts are read too;
  or `database/readiness.sqlite3`: a copy made with SQLite's backup API (consistent while
  the web server and the workers write).
- `storage/…`: the default storage's files (signed records, the audit anchor log), read
  after the database, so every record row has its file; drafts are left out (regenerable).
- `signing/…`: the signing key and certificate (or PKCS#12 bundle) and SIGNING_TRUST_ROOTS.
  The archive therefore holds a private key: store it encrypted and restricted.
- `manifest.json`: app version, applied migrations per app, created_at, the sha256 of every
  other file, counts of records and audit events, and the newest audit checkpoint.

Restoring goes into an empty (freshly created) database: the audit tables refuse DELETE,
UPDATE and TRUNCATE (readiness/audit/append_only.py), and a restore into an empty database
needs none of them. `--force` replaces a non-empty one by dropping and recreating the dumped
objects (`pg_restore --clean`; DROP is not what the append-only triggers refuse).
"""

import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader

from readiness.audit.models import AuditCheckpoint, AuditEvent
from signoff.records.models import SignedRecord
from signoff.records.signing import verify_record
from signoff.signatures.models import SignOff

FORMAT = "readiness-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PG_DUMP = "database/readiness.dump"
SQLITE_COPY = "database/readiness.sqlite3"
# Drafts are re-rendered on request; everything else in storage is kept.
SKIPPED_STORAGE = ("drafts/",)
KEY_MATERIAL_WARNING = (
    "This archive holds the signing private key: keep it encrypted and readable by the "
    "operators who restore only (it is written with mode 0600)."
)


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why and what to do."""


@dataclass
class Summary:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Told each line as it happens: a long restore shows where it is.
    echo: Callable[[str], None] | None = None

    def note(self, line: str) -> None:
        self.lines.append(line)
        if self.echo:
            self.echo(line)

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archive_sha256(archive: Path) -> str:
    return _sha256_file(archive)


def app_version() -> str:
    try:
        return metadata.version("readiness")
    except metadata.PackageNotFoundError:
        return "unknown"


def _vendor() -> str:
    return connection.vendor


def _pg_environment() -> dict[str, str]:
    """libpq's variables for the configured database: the password never reaches a command
    line, where any user of the machine could read it in the process list."""
    database = connection.settings_dict
    environment = {**os.environ}
    for variable, value in (
        ("PGDATABASE", database.get("NAME")),
        ("PGUSER", database.get("USER")),
        ("PGPASSWORD", database.get("PASSWORD")),
        ("PGHOST", database.get("HOST")),
        ("PGPORT", str(database.get("PORT") or "")),
    ):
        if value:
            environment[variable] = str(value)
    options = database.get("OPTIONS") or {}
    for option, variable in (
        ("sslmode", "PGSSLMODE"),
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
    ):
        if options.get(option):
            environment[variable] = str(options[option])
    return environment


def _run(command: list[str], environment: dict[str, str]) -> None:
    try:
        result = subprocess.run(command, env=environment, capture_output=True, text=True)
    except FileNotFoundError as error:
        raise BackupError(
            f"{command[0]} is not installed: install postgresql-client (the same major "
            "version as the server or newer)"
        ) from error
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip() or result.returncode}")


# --- What the database holds ---------------------------------------------------------------


def _state(cursor) -> dict:
    """Counts, the newest checkpoint and the applied migrations, read through a DB-API cursor
    (the snapshot pg_dump uses, or the SQLite copy), so they describe the dump exactly."""
    counts = {}
    for name, model in (
        ("records", SignedRecord),
        ("audit_events", AuditEvent),
        ("signoffs", SignOff),
        ("audit_checkpoints", AuditCheckpoint),
    ):
        cursor.execute(f"SELECT count(*) FROM {model._meta.db_table}")
        counts[name] = cursor.fetchone()[0]
    cursor.execute(
        f"SELECT id, root, hash FROM {AuditCheckpoint._meta.db_table} ORDER BY id DESC LIMIT 1"
    )
    row = cursor.fetchone()
    checkpoint = {"id": row[0], "root": row[1], "hash": row[2]} if row else None
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    migrations: dict[str, list[str]] = {}
    for app, name in cursor.fetchall():
        migrations.setdefault(app, []).append(name)
    return {"counts": counts, "latest_checkpoint": checkpoint, "migrations": migrations}


def _dump_postgresql(target: Path) -> dict:
    environment = _pg_environment()
    # pg_dump reads the snapshot this transaction exported, and the counts are read in it:
    # the manifest describes the dump, however busy the installation is meanwhile.
    with connection.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            state = _state(cursor)
            _run(
                [
                    "pg_dump",
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={target}",
                    "--no-password",
                ],
                environment,
            )
        finally:
            cursor.execute("ROLLBACK")
    return state


def _dump_sqlite(target: Path) -> dict:
    source = sqlite3.connect(connection.settings_dict["NAME"])
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        return _state(copy.cursor())
    finally:
        copy.close()
        source.close()


# --- Files ---------------------------------------------------------------------------------


def _storage_names(folder: str = "") -> Iterator[str]:
    try:
        directories, files = default_storage.listdir(folder)
    except FileNotFoundError:
        # Nothing stored yet: a filesystem storage makes its folder at the first file.
        return
    for name in sorted(files):
        yield f"{folder}{name}"
    for name in sorted(directories):
        path = f"{folder}{name}/"
        if not path.startswith(SKIPPED_STORAGE):
            yield from _storage_names(path)


def _signing_files() -> list[tuple[str, Path]]:
    """(setting, path) of the signing material configured and present."""
    wanted: list[tuple[str, Path]] = []
    if settings.SIGNING_PKCS12_FILE:
        wanted.append(("SIGNING_PKCS12_FILE", Path(settings.SIGNING_PKCS12_FILE)))
    else:
        wanted.append(("SIGNING_KEY_FILE", Path(settings.SIGNING_KEY_FILE)))
        wanted.append(("SIGNING_CERT_FILE", Path(settings.SIGNING_CERT_FILE)))
    wanted += [("SIGNING_TRUST_ROOTS", Path(path)) for path in settings.SIGNING_TRUST_ROOTS]
    return [(setting, path) for setting, path in wanted if path.is_file()]


def _archive_path(destination: Path, now: datetime.datetime) -> Path:
    """DEST ending in .tar.gz is the archive to create; anything else a folder (made if
    missing) that receives a timestamped archive."""
    if destination.name.endswith(".tar.gz"):
        archive = destination
    else:
        destination.mkdir(parents=True, exist_ok=True)
        archive = destination / f"readiness-backup-{now:%Y%m%dT%H%M%SZ}.tar.gz"
    if archive.exists():
        raise BackupError(f"{archive} exists: a backup never overwrites a file")
    return archive


def create_backup(destination: Path) -> tuple[Path, dict]:
    """Write an archive into `destination` (a folder, or the .tar.gz to create); returns its
    path and manifest, after reading it back against the manifest."""
    now = datetime.datetime.now(datetime.UTC)
    archive = _archive_path(destination, now)
    archive.parent.mkdir(parents=True, exist_ok=True)
    # Staged next to the archive, not in /tmp: the key material stays on the filesystem
    # the operator chose for it.
    with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".readiness-backup-") as stage:
        stage_dir = Path(stage)
        os.chmod(stage_dir, 0o700)
        (stage_dir / "database").mkdir()
        vendor = _vendor()
        if vendor == "postgresql":
            database_file = PG_DUMP
            state = _dump_postgresql(stage_dir / PG_DUMP)
        elif vendor == "sqlite":
            database_file = SQLITE_COPY
            state = _dump_sqlite(stage_dir / SQLITE_COPY)
        else:
            raise BackupError(f"no backup for a {vendor} database")
        members = [database_file]
        for name in _storage_names():
            target = stage_dir / "storage" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with default_storage.open(name, "rb") as source, target.open("wb") as copy:
                shutil.copyfileobj(source, copy)
            members.append(f"storage/{name}")
        signing = []
        for index, (setting, path) in enumerate(_signing_files()):
            member = f"signing/{index:02d}-{path.name}"
            (stage_dir / "signing").mkdir(exist_ok=True, mode=0o700)
            shutil.copyfile(path, stage_dir / member)
            signing.append({"setting": setting, "file": member, "source": str(path)})
            members.append(member)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "app_version": app_version(),
            "created_at": now.isoformat(),
            "database": {"vendor": vendor, "file": database_file},
            **state,
            "signing": signing,
            "files": {name: _sha256_file(stage_dir / name) for name in members},
        }
        (stage_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        descriptor = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with (
                os.fdopen(descriptor, "wb") as handle,
                tarfile.open(fileobj=handle, mode="w:gz") as tar,
            ):
                for name in [MANIFEST, *members]:
                    tar.add(stage_dir / name, arcname=name, recursive=False)
        except BaseException:
            archive.unlink(missing_ok=True)
            raise
    os.chmod(archive, 0o600)
    read_archive(archive)
    return archive, manifest


# --- Reading an archive --------------------------------------------------------------------


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and name == str(path)


def read_archive(archive: Path, folder: Path | None = None) -> dict:
    """Extract `archive` into `folder` (None: only read it) and return its manifest, after
    checking every file against it; BackupError names the first file that differs, is
    missing or is unexpected."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            return _read_members(archive, tar, folder)
    except (OSError, EOFError, tarfile.TarError) as error:
        raise BackupError(f"{archive}: not a readable backup archive ({error})") from error


def _read_members(archive: Path, tar: tarfile.TarFile, folder: Path | None) -> dict:
    try:
        manifest = json.load(tar.extractfile(tar.getmember(MANIFEST)))
    except (KeyError, ValueError) as error:
        raise BackupError(f"{archive}: no readable {MANIFEST} ({error})") from error
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{archive}: not a {FORMAT} archive of version {FORMAT_VERSION}")
    expected: dict[str, str] = manifest["files"]
    seen = set()
    for member in tar:
        if member.name == MANIFEST:
            continue
        if member.name not in expected or not member.isfile():
            raise BackupError(f"{archive}: {member.name} is not in the manifest")
        if not _safe_member(member.name):
            raise BackupError(f"{archive}: unsafe member name {member.name!r}")
        digest = hashlib.sha256()
        source = tar.extractfile(member)
        if folder is None:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
        else:
            target = folder / member.name
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(target, "wb", opener=_private) as copy:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    copy.write(chunk)
        if digest.hexdigest() != expected[member.name]:
            raise BackupError(
                f"{archive}: {member.name} does not match its sha256 in the manifest "
                "(damaged or tampered))"
            )
        seen.add(member.name)
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(f"{archive}: {missing[0]} is missing from the archive")
    return manifest


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


# --- Restore -------------------------------------------------------------------------------


def _code_migrations() -> set[tuple[str, str]]:
    return set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)


def _applied(migrations: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {(app, name) for app, names in migrations.items() for name in names}


def database_tables() -> list[str]:
    with connection.cursor() as cursor:
        return connection.introspection.table_names(cursor)


def _restore_postgresql(dump: Path, *, force: bool) -> None:
    command = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--no-password"]
    # Into an empty database nothing needs dropping; --force drops the dumped objects first
    # (DROP is allowed; the append-only triggers refuse DELETE, UPDATE and TRUNCATE only).
    if force:
        command += ["--clean", "--if-exists"]
    command += ["--single-transaction", f"--dbname={connection.settings_dict['NAME']}"]
    connections.close_all()
    _run([*command, str(dump)], _pg_environment())


def _restore_sqlite(copy: Path) -> None:
    connections.close_all()
    source = sqlite3.connect(copy)
    target = sqlite3.connect(connection.settings_dict["NAME"])
    try:
        # The backup API replaces the target's pages under its own lock, WAL included.
        source.backup(target)
    finally:
        target.close()
        source.close()


def _signing_target(entry: dict, trust_roots: list[Path]) -> Path:
    setting = entry["setting"]
    if setting == "SIGNING_TRUST_ROOTS":
        name = Path(entry["source"]).name
        for path in trust_roots:
            if path.name == name:
                return path
        return Path(settings.DATA_DIR) / "signing" / "trust-roots" / name
    if setting == "SIGNING_PKCS12_FILE" and settings.SIGNING_PKCS12_FILE:
        return Path(settings.SIGNING_PKCS12_FILE)
    if setting == "SIGNING_PKCS12_FILE":
        return Path(settings.DATA_DIR) / "signing" / Path(entry["source"]).name
    return Path(getattr(settings, setting))


def _differs(path: Path, sha256: str) -> bool:
    return path.exists() and _sha256_file(path) != sha256


def restore_backup(
    archive: Path,
    *,
    force: bool,
    migrate: Callable[[], None],
    verify_audit: Callable[[], str],
    echo: Callable[[str], None] | None = None,
) -> Summary:
    """Restore `archive` into the configured database, storage and signing paths, then verify.
    `migrate` and `verify_audit` run those commands (edges call edges by name only);
    `verify_audit` returns its report of problems, empty when the trail is intact."""
    summary = Summary(echo=echo)
    with tempfile.TemporaryDirectory(prefix="readiness-restore-") as folder:
        extracted = Path(folder)
        manifest = read_archive(archive, extracted)
        files = manifest["files"]
        summary.note(
            f"archive {archive}: made {manifest['created_at']} by Readiness "
            f"{manifest['app_version']}; {len(files)} files match the manifest"
        )
        vendor = manifest["database"]["vendor"]
        if vendor != _vendor():
            raise BackupError(
                f"the archive holds a {vendor} database; the configured one is {_vendor()}"
            )
        unknown = sorted(_applied(manifest["migrations"]) - _code_migrations())
        if unknown:
            app, name = unknown[0]
            raise BackupError(
                f"the archive's database has migration {app}.{name}, which this code does not "
                f"know: restore with Readiness {manifest['app_version']} or newer"
            )
        tables = database_tables()
        if tables and not force:
            raise BackupError(
                f"the configured database is not empty ({len(tables)} tables): restore into a "
                "freshly created database, or pass --force to replace this one"
            )
        storage_files = {
            name.removeprefix("storage/"): sha
            for name, sha in files.items()
            if name.startswith("storage/")
        }
        trust_roots = [Path(path) for path in settings.SIGNING_TRUST_ROOTS]
        signing = [(entry, _signing_target(entry, trust_roots)) for entry in manifest["signing"]]
        if not force:
            for name, sha in storage_files.items():
                if default_storage.exists(name):
                    with default_storage.open(name, "rb") as handle:
                        if hashlib.sha256(handle.read()).hexdigest() != sha:
                            raise BackupError(
                                f"storage already holds a different {name}: restore into an "
                                "empty storage, or pass --force"
                            )
            for entry, target in signing:
                if _differs(target, files[entry["file"]]):
                    raise BackupError(
                        f"{target} ({entry['setting']}) exists and differs from the archive's: "
                        "move it away, or pass --force"
                    )

        if vendor == "postgresql":
            _restore_postgresql(extracted / PG_DUMP, force=force)
        else:
            _restore_sqlite(extracted / SQLITE_COPY)
        summary.note(f"database restored ({vendor})")

        for name in storage_files:
            if default_storage.exists(name):
                default_storage.delete(name)
            saved = default_storage.save(
                name, ContentFile((extracted / "storage" / name).read_bytes())
            )
            if saved != name:
                summary.problems.append(f"storage saved {name} as {saved}")
        summary.note(f"storage restored: {len(storage_files)} files")
        for entry, target in signing:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = target.with_name(f".{target.name}.restore")
            shutil.copyfile(extracted / entry["file"], temporary)
            os.chmod(temporary, 0o644 if entry["setting"] == "SIGNING_CERT_FILE" else 0o600)
            os.replace(temporary, target)
            summary.note(f"signing material restored: {entry['setting']} -> {target}")
            if entry["setting"] == "SIGNING_TRUST_ROOTS" and target not in trust_roots:
                summary.problems.append(
                    f"{target} is not in SIGNING_TRUST_ROOTS: add it there, then run "
                    "verify_record again"
                )

    pending = _code_migrations() - _applied(_state_now()["migrations"])
    if pending:
        summary.note(f"migrating: this code has {len(pending)} newer migrations")
        migrate()
    _verify(manifest, summary, verify_audit)
    return summary


def _state_now() -> dict:
    with connection.cursor() as cursor:
        return _state(cursor)


def _verify(manifest: dict, summary: Summary, verify_audit) -> None:
    state = _state_now()
    for name, count in manifest["counts"].items():
        if state["counts"][name] != count:
            summary.problems.append(
                f"{name}: {state['counts'][name]} in the database, {count} in the manifest"
            )
    if state["latest_checkpoint"] != manifest["latest_checkpoint"]:
        summary.problems.append(
            f"newest audit checkpoint {state['latest_checkpoint']} differs from the "
            f"manifest's {manifest['latest_checkpoint']}"
        )
    counts = ", ".join(f"{count} {name}" for name, count in state["counts"].items())
    summary.note(f"counts match the manifest: {counts}" if summary.ok else counts)
    problem = verify_audit()
    if problem:
        summary.problems.append(f"verify_audit: {problem}")
    else:
        summary.note("verify_audit: audit trail intact")
    valid = 0
    for record in SignedRecord.objects.order_by("id"):
        try:
            with record.file.open("rb") as handle:
                data = handle.read()
        except OSError as error:
            summary.problems.append(f"record {record.record_id}: file missing ({error})")
            continue
        result = verify_record(data)
        if not result.valid:
            summary.problems.append(f"record {record.record_id}: not valid: {result.verdict}")
        elif result.database_differs:
            summary.problems.append(
                f"record {record.record_id}: valid, but the database differs: "
                + "; ".join(result.database_differences)
            )
        else:
            valid += 1
    total = state["counts"]["records"]
    summary.note(f"verify_record: {valid} of {total} stored records valid")
