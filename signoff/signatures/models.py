"""Sign-offs, their revocations and waivers: what each role approved, and when."""

from django.conf import settings
from django.db import models

from signoff.teams.models import Role


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
        indexes = [
            # My sign-offs lists a user's newest signatures: 50 index entries instead of
            # sorting every signature they ever made.
            models.Index(fields=["user", "-signed_at"], name="signoff_by_user_newest"),
        ]
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
