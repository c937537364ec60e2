from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from readiness.outbox.selectors import outbox_backlog, outbox_pending
from readiness.outbox.services import outbox_sweep


class Command(BaseCommand):
    help = (
        "Show the outbox backlog: work that commits stored (records, mail, probe dispatch) "
        "and that the broker has not accepted yet. --sweep sends it now, as the beat sweeper "
        "does every 30 s; safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sweep", action="store_true", help="send pending rows now")
        parser.add_argument("--limit", type=int, default=20, help="rows to list (default 20)")

    def handle(self, *args, sweep: bool, limit: int, **options):
        if sweep:
            sent = outbox_sweep(min_age=timedelta(0))
            self.stdout.write(f"sent {sent}")
        backlog = outbox_backlog()
        if not backlog.pending:
            self.stdout.write("outbox: nothing pending")
            return
        now = timezone.now()
        age = int((now - backlog.oldest).total_seconds())
        self.stdout.write(
            f"outbox: {backlog.pending} pending, oldest {age} s, "
            f"{backlog.failing} refused by the broker at their last attempt"
        )
        for message in outbox_pending()[:limit]:
            line = (
                f"#{message.pk} {int((now - message.created_at).total_seconds())} s "
                f"attempts={message.attempts} {message.task_name} {message.key}"
            )
            if message.last_error:
                line += f" last error: {message.last_error[:200]}"
            self.stdout.write(line)
