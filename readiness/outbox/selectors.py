"""Reads of the outbox: the backlog an operator looks at (`manage.py outbox`)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min

from readiness.outbox.models import OutboxMessage


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest: datetime | None
    failing: int  # pending rows whose last publish was refused


def outbox_pending():
    """Rows not sent yet, oldest first."""
    return OutboxMessage.objects.filter(sent_at__isnull=True).order_by("id")


def outbox_backlog() -> Backlog:
    pending = outbox_pending()
    summary = pending.aggregate(count=Count("id"), oldest=Min("created_at"))
    return Backlog(
        pending=summary["count"],
        oldest=summary["oldest"],
        failing=pending.exclude(last_error="").count(),
    )


def outbox_keys(prefix: str) -> list[str]:
    """The keys of the intents stored under `prefix` (a probe run's tasks: `probe:<run>:`)."""
    return list(OutboxMessage.objects.filter(key__startswith=prefix).values_list("key", flat=True))
