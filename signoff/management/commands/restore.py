import io
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from signoff.backup import BackupError, restore_backup


class Command(BaseCommand):
    help = (
        "Restore a backup archive into the configured database (empty, unless --force), "
        "storage and signing paths, after checking every file against its manifest; migrate "
        "when this code is newer; then verify the audit trail and every stored record. Exit "
        "code 1 when the archive is refused or anything fails to verify."
    )

    def add_arguments(self, parser):
        parser.add_argument("archive", type=Path, metavar="ARCHIVE")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace a non-empty database, and stored or signing files that differ.",
        )

    def handle(self, *args, archive: Path, force: bool = False, **options):
        try:
            summary = restore_backup(
                archive,
                force=force,
                migrate=self._migrate,
                verify_audit=self._verify_audit,
                echo=lambda line: self.stdout.write(f"  {line}"),
            )
        except BackupError as error:
            raise CommandError(f"restore refused: {error}") from error
        if not summary.ok:
            problems = "\n".join(f"  {problem}" for problem in summary.problems)
            raise CommandError(f"restore done, but verification FAILED:\n{problems}")
        self.stdout.write(self.style.SUCCESS("restore verified: audit trail and records valid"))

    def _migrate(self) -> None:
        call_command("migrate", interactive=False, verbosity=0)

    def _verify_audit(self) -> str:
        """Empty when verify_audit passes, else its report."""
        output = io.StringIO()
        try:
            call_command("verify_audit", stdout=output)
        except CommandError as error:
            return str(error)
        self.stdout.write(f"  {output.getvalue().strip()}")
        return ""
