from django.core.management.base import BaseCommand, CommandError

from readiness.checklists.progress import repair_progress


class Command(BaseCommand):
    help = (
        "Compare every deployment's progress counters with a fresh count of its items and "
        "list those that drifted; --fix recounts them. Exits 1 on drift left unrepaired. "
        "Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="recount the drifted ones")
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="deployments per batch (default 1000)"
        )

    def handle(self, *args, fix: bool, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        drifted = repair_progress(batch_size=batch_size, fix=fix)
        if not drifted:
            self.stdout.write("progress: every deployment's counters match its items")
            return
        shown = ", ".join(f"#{pk}" for pk in drifted[:20]) + (" …" if len(drifted) > 20 else "")
        if fix:
            self.stdout.write(f"progress: recounted {len(drifted)} deployment(s): {shown}")
            return
        self.stderr.write(f"progress: {len(drifted)} deployment(s) drifted: {shown}")
        raise CommandError("Counters drifted; run check_progress --fix to recount them.")
