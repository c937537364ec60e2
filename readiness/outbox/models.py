"""The outbox: work a commit triggers, stored in the same transaction as the change."""

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """One Celery task to send, written in the transaction of the change that causes it.

    The broker is never the only copy of an intent: the row is sent right after the commit
    when the broker answers, otherwise by the `readiness.outbox_sweep` beat task.

    Sending: a sender leases the row (`sending_since`, a conditional UPDATE), publishes,
    then sets `sent_at`; a refused publish releases the lease and leaves the row pending,
    with `last_error` (prefixed with its time) saying why. Publishing and marking cannot
    be one atomic step, so a message may reach the broker twice (a crash between the two).
    Consuming: a task whose work must not repeat (a mail) leases `claimed_at` and sets
    `done_at` when its work is done, so a second delivery does nothing.
    """

    key = models.CharField(
        max_length=200,
        unique=True,
        help_text="What this intent is; enqueuing a key again adds nothing.",
    )
    task_name = models.CharField(max_length=100)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    sending_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set by a consumer that marks its work done (a mail sent).",
    )
    request_id = models.CharField(
        max_length=128,
        blank=True,
        help_text="The request that caused it (its X-Request-ID), for the task's log lines.",
    )

    class Meta:
        ordering = ["id"]
        indexes = [
            # The sweeper's scan: pending rows, oldest first.
            models.Index(
                fields=["id"],
                name="outbox_pending_idx",
                condition=models.Q(sent_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "pending"
        return f"#{self.pk} {self.task_name} {self.key} ({state})"
