"""Probe runs and their results: what the AWS probes found for one deployment."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from readiness.checklists.models import ChecklistItem, Deployment
from readiness.probes.base import ATTENTION_STATUSES, Status


class ProbeRunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Finished"
    FAILED = "failed", "Failed"
    # Stopped by a person: what finished is kept, nothing is applied to the checklist.
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_RUN_STATES = (ProbeRunState.QUEUED, ProbeRunState.RUNNING)
# Runs that judged the whole plan (a timed-out run judges its unfinished checks as errors):
# the newest of these is what the checklist shows and what signatures and records bind.
JUDGED_RUN_STATES = (ProbeRunState.SUCCEEDED, ProbeRunState.FAILED)


class ProbeRunTrigger(models.TextChoices):
    PERSON = "person", "Requested by a person"
    SCHEDULE = "schedule", "Scheduled re-probe"
    API = "api", "Requested through the API"


class ProbeRun(models.Model):
    """One click of "Run probes" or one scheduled re-probe: a task per (account, probe)
    carrying its regions, progress kept as done/total."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="probe_runs")
    trigger = models.CharField(
        max_length=10, choices=ProbeRunTrigger.choices, default=ProbeRunTrigger.PERSON
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(
        max_length=10, choices=ProbeRunState.choices, default=ProbeRunState.QUEUED
    )
    # The union of the accounts' regions; `accounts` is the target as the run read it:
    # [{account_id, name, role_arn, regions}] (AwsAccount.as_target), so later changes of
    # the target never change what a run says it read.
    regions = models.JSONField(default=list)
    accounts = models.JSONField(default=list)
    # Read only some of the target's accounts or regions (picked for this run): its failures
    # fail items, but it never marks one done nor stands for the checklist's probe state,
    # since it says nothing of what it did not read.
    partial = models.BooleanField(default=False)
    thresholds = models.JSONField(default=dict)
    total = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # A second click while a run is active joins it instead of starting another.
            models.UniqueConstraint(
                fields=["deployment"],
                condition=Q(state__in=["queued", "running"]),
                name="one_active_probe_run",
            )
        ]

    def __str__(self) -> str:
        # As the pages name it (selectors.run_name) when read with its number (numbered).
        number = getattr(self, "number", None)
        if number is None:
            return f"Probe run #{self.pk} of {self.deployment}"
        return f"Probe run {number} (#{self.pk} on this server) of {self.deployment}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_RUN_STATES

    @property
    def percent(self) -> int:
        return round(100 * self.completed / self.total) if self.total else 100

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at and self.created_at:
            return (self.finished_at - self.created_at).total_seconds()
        return None


class ProbeOutcome(models.TextChoices):
    """A stored result's verdict: the probes' own Status, as database choices."""

    PASS = Status.PASS.value, "Pass"
    FAIL = Status.FAIL.value, "Fail"
    WARN = Status.WARN.value, "Warning"
    ERROR = Status.ERROR.value, "Error"
    NOT_APPLICABLE = Status.NOT_APPLICABLE.value, "Not applicable"


class ProbeResultState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Not run: cancelled"


class ProbeResult(models.Model):
    """What one probe read in one account and region during one run: verdict, evidence,
    remediation."""

    run = models.ForeignKey(ProbeRun, on_delete=models.CASCADE, related_name="results")
    item = models.ForeignKey(
        ChecklistItem,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="probe_results",
    )
    account_id = models.CharField("AWS account id", max_length=12, blank=True)
    probe_key = models.CharField(max_length=100)
    region = models.CharField(max_length=30)
    section_title = models.CharField(max_length=200)
    item_title = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    severity = models.CharField(max_length=10)
    actions = models.JSONField(default=list)
    remediation = models.TextField(blank=True)
    state = models.CharField(
        max_length=10, choices=ProbeResultState.choices, default=ProbeResultState.PENDING
    )
    status = models.CharField(max_length=20, choices=ProbeOutcome.choices, blank=True)
    summary = models.TextField(blank=True)
    findings = models.JSONField(default=list)
    facts = models.JSONField(default=dict)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "section_title", "item_title", "probe_key", "account_id", "region"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "account_id", "probe_key", "region"],
                name="probe_result_per_account_region",
            )
        ]

    def __str__(self) -> str:
        return f"{self.probe_key} @ {self.account_id}/{self.region}: {self.status or self.state}"

    @property
    def failing_findings(self) -> list:
        return [f for f in self.findings if f.get("status") in ATTENTION_STATUSES]
