from django.core.management.base import BaseCommand, CommandError

from readiness.audit.services import verify_chain


class Command(BaseCommand):
    help = (
        "Walk the audit trail's hash chain and name the first event that was edited, removed "
        "or inserted out of order. Exit code 1 when the chain is broken."
    )

    def handle(self, *args, **options):
        report = verify_chain()
        if not report.ok:
            raise CommandError(f"audit chain broken after {report.events} events: {report.problem}")
        self.stdout.write(f"audit chain intact: {report.events} events, head {report.head[:16]}…")
