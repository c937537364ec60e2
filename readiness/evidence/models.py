"""CI evidence uploaded by pipelines and the verdicts it gives checklist items."""

from django.conf import settings
from django.db import models


class EvidenceKind(models.TextChoices):
    COBERTURA = "cobertura", "Cobertura coverage XML"
    JUNIT = "junit", "JUnit XML test report"
    TRIVY = "trivy", "Trivy JSON report"
    GITLEAKS = "gitleaks", "Gitleaks JSON report"


def evidence_upload_to(evidence: "Evidence", filename: str) -> str:
    return f"evidence/{evidence.deployment_id}/{evidence.sha256}"


class Evidence(models.Model):
    """One uploaded file, kept as uploaded with its SHA-256; never changed after upload."""

    deployment = models.ForeignKey(
        "readiness.Deployment", on_delete=models.PROTECT, related_name="evidence"
    )
    kind = models.CharField(max_length=10, choices=EvidenceKind.choices)
    filename = models.CharField(max_length=255)
    file = models.FileField(upload_to=evidence_upload_to, max_length=300)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    token = models.ForeignKey(
        "api.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField()

    # Came from the api app: the table keeps its name, and the audit trail its object type.
    audit_object_type = "api.evidence"

    class Meta:
        db_table = "api_evidence"
        ordering = ["-uploaded_at", "-pk"]
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.filename} ({self.sha256[:12]})"


class EvidenceVerdict(models.Model):
    """What one upload says about one checklist item, and whether it moved the item."""

    evidence = models.ForeignKey(Evidence, on_delete=models.CASCADE, related_name="verdicts")
    item = models.ForeignKey(
        "readiness.ChecklistItem", on_delete=models.CASCADE, related_name="evidence_verdicts"
    )
    passed = models.BooleanField()
    summary = models.TextField()
    details = models.JSONField(default=list)
    facts = models.JSONField(default=dict)
    applied = models.BooleanField(
        help_text="Whether it set the item; a person's or probe's decision stands."
    )
    conflict = models.TextField(blank=True)

    audit_object_type = "api.evidenceverdict"

    class Meta:
        db_table = "api_evidenceverdict"
        ordering = ["-evidence__uploaded_at", "-pk"]

    def __str__(self) -> str:
        return f"{'pass' if self.passed else 'fail'}: {self.summary}"
