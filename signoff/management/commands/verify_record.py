import datetime
import hashlib
import json
import logging
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from signoff.records.content import SignatureLine
from signoff.records.evidence import extractable_files, unsafe_name
from signoff.records.selectors import record_standing
from signoff.records.signing import (
    DATABASE_DIFFERS_TITLE,
    DATABASE_PREDATES,
    DATABASE_UNCHECKED,
    RecordVerification,
    verify_record,
)

# Exit codes: 0 valid; 1 a readable PDF that is not a valid record; 2 the file cannot be
# checked at all (cannot be opened, is not a PDF, is damaged or encrypted) or bad usage;
# 3 a valid record, but today's database differs from what it says.
EXIT_INVALID = 1
EXIT_UNREADABLE = 2
EXIT_DATABASE_DIFFERS = 3


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


class Command(BaseCommand):
    help = (
        "Verify a record PDF: signature valid and trusted, unmodified since signing, matching a "
        "stored record. Prints what the record says (its deployment, state, sign-offs and "
        "audit chain head, read from the file) and, apart, whether today's database still "
        "agrees. Exit code 0 when valid, 1 when not, 2 when the file cannot be read as a PDF, "
        "3 when the record is valid but the database differs from it."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="The PDF to verify.")
        parser.add_argument("--format", choices=("text", "json"), default="text")
        parser.add_argument(
            "--extract",
            type=Path,
            metavar="DIR",
            help="Also write every file the PDF embeds (the record's snapshot, context, audit "
            "trail and probe results) into DIR, made if missing; a name that is not a plain "
            "file name is refused, never written.",
        )

    def handle(self, *args, **options):
        # pyHanko logs every failed check with a traceback; this report states them plainly.
        for name in ("pyhanko.sign.validation", "pyhanko.sign.diff_analysis"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        path: Path = options["file"]
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(
                f"cannot read {path}: {error.strerror}", returncode=EXIT_UNREADABLE
            ) from error
        result = verify_record(data)
        extracted = _extract(data, result, options["extract"]) if options["extract"] else None
        if options["format"] == "json":
            report = {"file": str(path), **result.as_dict()}
            if extracted is not None:
                report["extracted"] = extracted
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self._write_text(path, result)
            if extracted is not None:
                self._write_extracted(extracted)
        if result.valid and result.database_differs:
            raise CommandError(
                f"valid, but the {DATABASE_DIFFERS_TITLE}: "
                + "; ".join(result.database_differences),
                returncode=EXIT_DATABASE_DIFFERS,
            )
        if result.valid:
            return
        code = EXIT_UNREADABLE if result.pdf.bad_input else EXIT_INVALID
        raise CommandError(f"not valid: {result.verdict}", returncode=code)

    def _write_text(self, path: Path, result: RecordVerification) -> None:
        pdf = result.pdf
        out = self.stdout.write
        out(f"File: {path} ({pdf.size_bytes:,} bytes)")
        out(f"SHA-256: {pdf.sha256}")
        if result.valid:
            out(self.style.SUCCESS("Verdict: VALID"))
            out(f"  {result.basis}")
        elif result.indeterminate:
            out(self.style.WARNING(f"Verdict: INDETERMINATE: {result.verdict}"))
        else:
            out(self.style.ERROR(f"Verdict: NOT VALID: {result.verdict}"))
        if result.record:
            standing = record_standing(result.record)
            if standing.latest:
                out(f"Standing: {standing.summary}")
            else:
                caveat = " (still valid as a file, but not the latest)" if result.valid else ""
                out(self.style.WARNING(f"Standing: {standing.summary}{caveat}"))
        if pdf.signed:
            out("Signature (PAdES):")
            out(f"  valid (pyHanko's overall verdict): {_yes(pdf.signature_valid)}")
            out(f"  signer trusted:                    {_yes(pdf.trusted)}")
            out(f"  signed content intact:             {_yes(pdf.intact)}")
            out(f"  nothing added or changed after:    {_yes(pdf.covers_whole_file)}")
            out(f"  signer: {pdf.signer_subject or '—'}")
            if pdf.signing_time:
                out(f"  signed at: {pdf.signing_time:%Y-%m-%d %H:%M:%S %Z} (signer's clock)")
            out(f"  PAdES level: {pdf.pades_level or '—'}")
            if pdf.timestamp_time:
                trust = "valid" if pdf.timestamp_valid else "NOT VALID OR NOT TRUSTED"
                out(
                    f"  timestamp: {_utc(pdf.timestamp_time)} by "
                    f"{pdf.timestamp_authority or '—'} ({trust})"
                )
            if pdf.document_timestamp_time:
                out(f"  document timestamp: {_utc(pdf.document_timestamp_time)}")
            if pdf.judged_at:
                basis = "the timestamp's time" if pdf.judged_at_timestamp else "now: no timestamp"
                out(f"  certificate judged at: {_utc(pdf.judged_at)} ({basis})")
        elif not pdf.bad_input:
            out("Signature: none")
        if result.content:
            self._write_content(result)
        elif not pdf.bad_input:
            out("What the record says: nothing (the file embeds no record content).")
        if not pdf.bad_input:
            self._write_database(result)
        if result.problems:
            out("Problems:")
            for problem in result.problems:
                out(f"  - {problem}")

    def _write_content(self, result: RecordVerification) -> None:
        """The record's content, from the file; from the database only for a record that
        predates embedded content, and then every line says so."""
        content = result.content
        out = self.stdout.write
        if content.from_file:
            out("What the signed record says (read from the file):")
            mark = "  "
        else:
            out(self.style.WARNING(f"What the record says: {result.content_basis}"))
            mark = "  [from the database] "
        if content.from_file:
            out(f"  {result.content_basis}")
        generated = f", generated {_utc(content.generated_at)}" if content.generated_at else ""
        out(f"{mark}record {content.record_id}{generated}")
        deployment = f"#{content.deployment_id}: {content.deployment} (team {content.team})"
        out(f"{mark}deployment {deployment}")
        if content.template or content.owner:
            out(f"{mark}template {content.template or '—'}, owner {content.owner or '—'}")
        out(f"{mark}state {content.state_label}, state digest {content.state_digest}")
        if content.items:
            out(f"{mark}{content.item_summary}")
        out(f"{mark}Sign-offs:")
        for line in content.signatures:
            out(f"{mark}  {_signature(line)}")
            if line.comment:
                out(f"{mark}    comment: {line.comment}")
        if not content.signatures:
            out(f"{mark}  none")
        if content.audit is not None:
            head = content.audit
            where = f"{head.chain}, position {head.seq}, hash {head.head}" if head.seq else "empty"
            out(f"{mark}audit chain head at generation: {where}")

    def _write_extracted(self, extracted: dict) -> None:
        out = self.stdout.write
        if extracted["error"]:
            out(self.style.ERROR(f"Extracted: nothing, {extracted['error']}."))
            return
        count = len(extracted["written"])
        out(f"Extracted {count} embedded file(s) from {extracted['read_from']}:")
        for file in extracted["written"]:
            out(f"  wrote {file['path']} ({file['bytes']:,} bytes, SHA-256 {file['sha256']})")
        for file in extracted["refused"]:
            out(self.style.ERROR(f"  refused {file['name']!r}: {file['reason']}"))

    def _write_database(self, result: RecordVerification) -> None:
        out = self.stdout.write
        out("Today's database:")
        match = result.record or result.claimed_record
        if match:
            label = "stored record" if result.record else "the stored record it names"
            out(
                f"  {label}: {match.record_id}, record {match.number} of {match.deployment} "
                f"(team {match.team}), state {match.deployment_state}, stored "
                f"{match.created_at:%Y-%m-%d %H:%M} UTC"
            )
        else:
            out("  stored record: none matches")
        if result.database_differs:
            out(self.style.ERROR(f"  {DATABASE_DIFFERS_TITLE.capitalize()}:"))
            for difference in result.database_differences:
                out(f"    - {difference}")
        elif result.database_agrees:
            out(self.style.SUCCESS("  Database agrees with the signed record."))
        elif result.database == DATABASE_PREDATES:
            out("  Not compared: the record predates embedded content.")
        elif result.database == DATABASE_UNCHECKED:
            out("  Not compared: nothing vouches for the file's content.")


def _extract(data: bytes, result: RecordVerification, folder: Path) -> dict:
    """Write the PDF's embedded files into `folder`: those of the revision the signature
    covers when it is signed (files added after the signature are not the signer's)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(
            f"cannot create {folder}: {error.strerror}", returncode=EXIT_UNREADABLE
        ) from error
    report = {"folder": str(folder), "read_from": "", "written": [], "refused": [], "error": ""}
    try:
        files, report["read_from"] = extractable_files(data, signed_length=result.pdf.signed_length)
    except ValueError as error:
        report["error"] = str(error)
        return report
    written = set()
    for file in files:
        problem = unsafe_name(file.name)
        if not problem and file.name in written:
            problem = "an embedded file of the same name was written already"
        if problem:
            report["refused"].append({"name": file.name, "reason": problem})
            continue
        target = folder / file.name
        # O_NOFOLLOW: a symbolic link planted in the folder under that name must not send the
        # bytes elsewhere.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = os.open(target, flags, 0o644)
        except OSError as error:
            report["refused"].append({"name": file.name, "reason": error.strerror})
            continue
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(file.data)
        written.add(file.name)
        report["written"].append(
            {
                "name": file.name,
                "path": str(target),
                "bytes": len(file.data),
                "sha256": hashlib.sha256(file.data).hexdigest(),
            }
        )
    return report


def _utc(moment) -> str:
    return f"{moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC"


def _signature(line: SignatureLine) -> str:
    """One role's row of the sign-off table, as the record prints it."""
    if line.sequence is None:
        return f"{line.role}: not signed"
    signed = f"{line.printed_name}, {line.meaning_label}, {_utc(line.signed_at)}"
    turn = f"signature {line.sequence}, digest {line.digest[:16]}…"
    if line.status == "revoked":
        revoked = f" on {_utc(line.revoked_at)}" if line.revoked_at else ""
        return f"{line.role}: REVOKED{revoked} ({signed}, {turn})"
    stale = " (STALE: the state it approved changed since)" if line.status == "stale" else ""
    return f"{line.role}: {signed}, {turn}{stale}"
