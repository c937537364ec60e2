"""The audit trail's rows: events on per-deployment hash chains, the chains' heads, and the
checkpoints that commit every head into one Merkle root."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class AuditEvent(models.Model):
    """One change, in the same transaction as the change; rows are never updated or deleted.

    Each event stores the hash of the one before it on its chain, so editing, removing or
    inserting an event breaks the chain (`manage.py verify_audit` names where). A chain is
    one deployment's events, or the installation's for changes that belong to no deployment
    (teams, templates, tokens); `seq` is the event's position on it, unique, so two writers
    can never both append after the same head. Events written before chains were split have
    no `seq`: they form the one legacy chain, in id order, verified as it always was.
    PostgreSQL triggers refuse UPDATE and DELETE on this table.
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
    seq = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Position on its chain (1 first); empty on the legacy single chain.",
    )
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        # Came from the signoff app: the table keeps its name and its append-only triggers.
        db_table = "signoff_auditevent"
        ordering = ["id"]
        indexes = [
            models.Index(fields=["deployment", "id"]),
            # "Is this sign-off already recorded stale?" on every edit of a signed deployment,
            # and the trail's row checks: flat in the number of events, not a scan.
            models.Index(fields=["object_type", "object_id", "action"], name="audit_object_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "seq"],
                condition=Q(deployment__isnull=False, seq__isnull=False),
                name="audit_one_event_per_deployment_chain_position",
            ),
            models.UniqueConstraint(
                fields=["seq"],
                condition=Q(deployment__isnull=True, seq__isnull=False),
                name="audit_one_event_per_installation_chain_position",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """The newest event of one chain, kept beside the appends so a checkpoint reads every
    head in one pass. A convenience, never trusted: verification reads the events, and a
    head edited here makes the next checkpoint disagree with its chain, which is reported.
    """

    chain = models.CharField(max_length=40, unique=True)
    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    # What the latest checkpoint committed for this chain: only the checkpoint writes it.
    checkpointed_seq = models.PositiveBigIntegerField(null=True, blank=True)
    checkpointed_hash = models.CharField(max_length=64, blank=True)
    # Where the latest full verification (`audit_verify`) found this chain intact: the audit
    # page walks only the events after it, so its cost stays flat in the chain's length. A
    # shortcut like the one above: `verify_all` never reads it, and a failed verification
    # clears it, so the page walks the whole chain again.
    verified_seq = models.PositiveBigIntegerField(null=True, blank=True)
    verified_hash = models.CharField(max_length=64, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.chain} @{self.seq}"


class AuditCheckpoint(models.Model):
    """A signed-off moment of the whole trail: the Merkle root (RFC 6962) over every chain's
    head, with the heads that changed since the checkpoint before. Checkpoints are hash-
    chained themselves and append-only, so rewriting a chain's past means disagreeing with
    every checkpoint since, and the heads can be replayed from the first checkpoint on."""

    created_at = models.DateTimeField()
    tree_size = models.PositiveIntegerField(help_text="Chains committed by the root.")
    root = models.CharField(max_length=64)
    leaves = models.JSONField(help_text="[chain, seq, head hash] of the chains that changed.")
    events = models.PositiveBigIntegerField(help_text="Events on all chains at the time.")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"checkpoint #{self.pk} {self.root[:12]}"


class AuditVerification(models.Model):
    """The outcome of one verification of the whole trail (`readiness.audit_verify` on the
    beat schedule, or `manage.py verify_audit`), so /metrics and an operator can tell when
    the trail was last proved intact without walking it again. A note, not evidence: the
    trail itself is what verification reads."""

    checked_at = models.DateTimeField()
    source = models.CharField(max_length=20, help_text="schedule or verify_audit")
    ok = models.BooleanField()
    events = models.PositiveBigIntegerField()
    chains = models.PositiveIntegerField()
    checkpoints = models.PositiveIntegerField()
    duration_seconds = models.FloatField()
    problem = models.TextField(blank=True, help_text="The first problem found, if any.")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["checked_at"], name="audit_verification_time_idx")]

    def __str__(self) -> str:
        return f"{self.checked_at:%Y-%m-%d %H:%M} {'intact' if self.ok else 'BROKEN'}"
