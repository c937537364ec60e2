"""The signed record of a deployment."""

from django.db import models

from signoff.signatures.models import SignOff


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
