"""Roles and their members; sign-offs, the audit trail and the signed record build on these."""

from django.conf import settings
from django.db import models

# The Final Sign-Off roles of the seed checklist, in its order, and the sections each owns
# by default (Product reads the whole checklist's summary and owns no items).
SEED_ROLES = ("Tech Lead", "Security", "DevOps", "Product")
DEFAULT_SECTION_OWNERS = {
    "Security": "Security",
    "Compliance": "Security",
    "Reliability": "DevOps",
    "Monitoring & Observability": "DevOps",
    "Cost Optimization": "DevOps",
    "Deployment": "DevOps",
    "Performance": "Tech Lead",
    "Testing": "Tech Lead",
    "Operational": "Tech Lead",
}


class Role(models.Model):
    """A sign-off role (Tech Lead, Security, DevOps, Product)."""

    name = models.CharField(max_length=50, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    position = models.PositiveSmallIntegerField(default=0)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class RoleMembership(models.Model):
    """A user holds a role within one team; only members of a role may sign for it there."""

    team = models.ForeignKey("readiness.Team", on_delete=models.CASCADE, related_name="roles")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_memberships"
    )
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "role", "user"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user", "role"], name="one_membership_per_role")
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} in {self.team}"


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
        ordering = ["id"]
        indexes = [models.Index(fields=["deployment", "id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_type}:{self.object_id}"


class Meaning(models.TextChoices):
    """What a signature means, shown with it wherever it appears (21 CFR 11.50)."""

    APPROVE = "approve", "approved"
    APPROVE_WITH_CONDITIONS = "approve_with_conditions", "approved with conditions"
    REJECT = "reject", "rejected"


APPROVING_MEANINGS = (Meaning.APPROVE, Meaning.APPROVE_WITH_CONDITIONS)


class SignOff(models.Model):
    """One signature of one role on one deployment; never edited or deleted.

    `approved_state` is the canonical serialization of what the role approved and `digest`
    its SHA-256: comparing it with the current state tells whether the sign-off is stale and
    what changed. Signatures for a role are numbered; the unique (deployment, role, sequence)
    is what lets only one of two simultaneous requests through. Revoking one adds a
    Revocation; signing again adds the next sequence number.
    """

    deployment = models.ForeignKey(
        "readiness.Deployment", on_delete=models.PROTECT, related_name="signoffs"
    )
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="signoffs")
    sequence = models.PositiveIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    printed_name = models.CharField(max_length=300)
    signed_at = models.DateTimeField()
    meaning = models.CharField(max_length=30, choices=Meaning.choices)
    comment = models.TextField(blank=True, help_text="The conditions, or why it was rejected.")
    digest = models.CharField(max_length=64)
    approved_state = models.JSONField()
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["deployment", "role__position", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "role", "sequence"], name="one_signoff_per_turn"
            ),
            models.CheckConstraint(
                condition=models.Q(meaning="approve") | ~models.Q(comment=""),
                name="conditions_or_reason_written",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} — {self.printed_name} — {self.get_meaning_display()}"

    @property
    def is_approval(self) -> bool:
        return self.meaning in APPROVING_MEANINGS


class Revocation(models.Model):
    """Withdraws one sign-off, with a reason; the sign-off itself stays as it was."""

    signoff = models.OneToOneField(SignOff, on_delete=models.PROTECT, related_name="revocation")
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField()
    reason = models.TextField()
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["revoked_at"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="revocation_has_reason")
        ]

    def __str__(self) -> str:
        return f"Revocation of {self.signoff}"


class Waiver(models.Model):
    """An accepted risk: lets a role approve while this item is open or failed, until expiry.

    Withdrawing one sets the withdrawal fields (audited); nothing else changes after grant.
    """

    item = models.ForeignKey(
        "readiness.ChecklistItem", on_delete=models.PROTECT, related_name="waivers"
    )
    reason = models.TextField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["item", "-granted_at"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="waiver_has_reason"),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("granted_at")),
                name="waiver_expires_after_grant",
            ),
        ]

    def __str__(self) -> str:
        return f"Waiver for {self.item}"

    def is_active(self, now) -> bool:
        return self.withdrawn_at is None and self.expires_at > now


def record_upload_to(record: "SignedRecord", filename: str) -> str:
    return f"records/{record.deployment_id}/{filename}"


class SignedRecord(models.Model):
    """A rendered, optionally PAdES-signed PDF of a deployment at approval (and at
    verification); never changed once written. A new approval makes a new record and the
    old ones stay downloadable."""

    deployment = models.ForeignKey(
        "readiness.Deployment", on_delete=models.PROTECT, related_name="records"
    )
    record_id = models.UUIDField(unique=True, help_text="Printed on every page of the PDF.")
    number = models.PositiveIntegerField(help_text="1, 2, … per deployment.")
    deployment_state = models.CharField(max_length=20)
    state_digest = models.CharField(
        max_length=64, help_text="SHA-256 of what the record holds (see record_snapshot)."
    )
    file = models.FileField(upload_to=record_upload_to, max_length=300)
    sha256 = models.CharField(max_length=64, unique=True, help_text="Of the PDF file's bytes.")
    size_bytes = models.PositiveIntegerField()
    page_size = models.CharField(max_length=10)
    pades_signed = models.BooleanField(default=False)
    certificate_subject = models.CharField(max_length=500, blank=True)
    certificate_sha256 = models.CharField(max_length=64, blank=True)
    signoffs = models.ManyToManyField(SignOff, related_name="records", blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["deployment", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "number"], name="record_number"),
            # The task that renders a record may run twice: the same content is one record.
            models.UniqueConstraint(
                fields=["deployment", "state_digest"], name="one_record_per_state"
            ),
        ]

    def __str__(self) -> str:
        return f"Record {self.number} of {self.deployment}"
