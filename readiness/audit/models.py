"""The audit trail's rows."""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One change, in the same transaction as the change; rows are never updated or deleted.

    Each event stores the hash of the one before it, so editing, removing or inserting an
    event breaks the chain (`manage.py verify_audit` names where). In PostgreSQL a trigger
    refuses UPDATE and DELETE on this table.
    """

    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty for the system (a probe run, a migration).",
    )
    action = models.CharField(max_length=50)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=50)
    deployment = models.ForeignKey(
        "readiness.Deployment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
    )
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        # Came from the signoff app: the table keeps its name and its append-only triggers.
        db_table = "signoff_auditevent"
        ordering = ["id"]
        indexes = [models.Index(fields=["deployment", "id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_type}:{self.object_id}"
