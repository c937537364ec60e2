from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from signoff.backup import KEY_MATERIAL_WARNING, BackupError, archive_sha256, create_backup


class Command(BaseCommand):
    help = (
        "Write a backup archive (.tar.gz, mode 0600): the database (pg_dump --format=custom, "
        "or a consistent SQLite copy), the stored files (records, the audit anchor log; not "
        "drafts), the signing material and a manifest of sha256 hashes, counts and migrations; "
        "then read it back against the manifest. DEST is a folder or the file to create."
    )

    def add_arguments(self, parser):
        parser.add_argument("destination", type=Path, metavar="DEST")

    def handle(self, *args, destination: Path, **options):
        try:
            archive, manifest = create_backup(destination)
        except BackupError as error:
            raise CommandError(str(error)) from error
        counts = manifest["counts"]
        checkpoint = manifest["latest_checkpoint"]
        self.stdout.write(
            f"backup written: {archive} ({archive.stat().st_size:,} bytes, "
            f"{len(manifest['files'])} files, hashes read back and matching)"
        )
        # Kept apart from the archive (a ticket, the backup log), it shows the archive is the
        # one written: the manifest inside can only vouch for the files beside it.
        self.stdout.write(f"  archive sha256 {archive_sha256(archive)}")
        self.stdout.write(
            f"  {counts['records']} records, {counts['audit_events']} audit events, "
            f"{counts['signoffs']} sign-offs; newest checkpoint root "
            f"{checkpoint['root'] if checkpoint else 'none yet'}"
        )
        if manifest["signing"]:
            self.stdout.write(self.style.WARNING(f"WARNING: {KEY_MATERIAL_WARNING}"))
