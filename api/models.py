"""Personal API tokens and the CI evidence pipelines upload with them."""

from django.conf import settings
from django.db import models


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class ApiToken(models.Model):
    """A personal token: shown once, stored as its SHA-256; every use acts as its user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The token's first characters, kept to tell tokens apart on the page and in the audit
    # trail; far too short to guess the rest from.
    prefix = models.CharField(max_length=16, db_index=True)
    token_sha256 = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=5, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def can_write(self) -> bool:
        return self.scope == TokenScope.WRITE


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
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField()

    class Meta:
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

    class Meta:
        ordering = ["-evidence__uploaded_at", "-pk"]

    def __str__(self) -> str:
        return f"{'pass' if self.passed else 'fail'}: {self.summary}"
