import json
import logging
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from signoff.records.signing import RecordVerification, verify_record

# Exit codes: 0 valid; 1 a readable PDF that is not a valid record; 2 the file cannot be
# checked at all (cannot be opened, is not a PDF, is damaged or encrypted) or bad usage.
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


class Command(BaseCommand):
    help = (
        "Verify a record PDF: signature valid and trusted, unmodified since signing, matching a "
        "stored record and its deployment; lists the sign-offs it holds. Exit code 0 when "
        "valid, 1 when not, 2 when the file cannot be read as a PDF."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="The PDF to verify.")
        parser.add_argument("--format", choices=("text", "json"), default="text")

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
        if options["format"] == "json":
            self.stdout.write(json.dumps({"file": str(path), **result.as_dict()}, indent=2))
        else:
            self._write_text(path, result)
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
        else:
            out(self.style.ERROR(f"Verdict: NOT VALID: {result.verdict}"))
        if pdf.signed:
            out("Signature (PAdES):")
            out(f"  valid (pyHanko's overall verdict): {_yes(pdf.signature_valid)}")
            out(f"  signer trusted:                    {_yes(pdf.trusted)}")
            out(f"  signed content intact:             {_yes(pdf.intact)}")
            out(f"  nothing added or changed after:    {_yes(pdf.covers_whole_file)}")
            out(f"  signer: {pdf.signer_subject or '—'}")
            if pdf.signing_time:
                out(f"  signed at: {pdf.signing_time:%Y-%m-%d %H:%M:%S %Z} (signer's clock)")
        elif not pdf.bad_input:
            out("Signature: none")
        record = result.record or result.claimed_record
        if record:
            label = "Stored record" if result.record else "Claimed record (differs from it)"
            out(f"{label}: {record.record_id}")
            out(f"  record {record.number} of {record.deployment} (team {record.team})")
            out(f"  state {record.deployment_state}, stored {record.created_at:%Y-%m-%d %H:%M} UTC")
            out(f"  state digest {record.state_digest}")
            if record.signoffs:
                out("  Sign-offs:")
                for line in record.signoffs:
                    out(
                        f"    {line.role}: {line.printed_name}, {line.meaning}, "
                        f"{line.signed_at:%Y-%m-%d %H:%M} UTC, digest {line.digest[:16]}…"
                    )
        elif not pdf.bad_input:
            out("Stored record: none matches")
        if result.problems:
            out("Problems:")
            for problem in result.problems:
                out(f"  - {problem}")
