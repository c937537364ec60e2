"""The checklist domain: versioned templates, teams, deployments and their items."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Team(models.Model):
    """A group of people who own deployments; only members see a team's deployments."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ChecklistTemplate(models.Model):
    """One version of a checklist imported from Markdown; never edited once deployments use it.

    Importing the same name with different content makes the next version; importing the
    same content again finds the existing one (name + content hash are unique together).
    """

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    introduction = models.TextField(blank=True)
    source = models.TextField(help_text="The Markdown this version was imported from.")
    content_sha256 = models.CharField(max_length=64)
    sign_off_roles = models.JSONField(default=list)
    has_deployment_date = models.BooleanField(default=True)
    post_deployment_items = models.JSONField(default=list)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "-version"]
        permissions = [("import_template", "Can import checklist templates")]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="template_name_version"),
            models.UniqueConstraint(fields=["name", "content_sha256"], name="template_name_hash"),
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_template"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class TemplateSection(models.Model):
    template = models.ForeignKey(
        ChecklistTemplate, on_delete=models.CASCADE, related_name="sections"
    )
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=200)

    class Meta:
        ordering = ["template", "position"]
        constraints = [
            models.UniqueConstraint(fields=["template", "position"], name="template_section_pos"),
            models.UniqueConstraint(fields=["template", "title"], name="template_section_title"),
        ]

    def __str__(self) -> str:
        return self.title


class Qualifier(models.TextChoices):
    NONE = "", "—"
    IF_REQUIRED = "if required", "if required"
    IF_APPLICABLE = "if applicable", "if applicable"
    OPTIONAL = "optional", "optional"


class TemplateItem(models.Model):
    """An item as the template words it; a qualifier marks it as possibly not applicable."""

    section = models.ForeignKey(TemplateSection, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    qualifier = models.CharField(max_length=20, choices=Qualifier.choices, blank=True)
    owner_role = models.ForeignKey(
        "signoff.Role",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="template_items",
        help_text="The role whose members fill in and sign for this item.",
    )

    class Meta:
        ordering = ["section", "position"]
        constraints = [
            models.UniqueConstraint(fields=["section", "position"], name="template_item_pos"),
            models.UniqueConstraint(fields=["section", "title"], name="template_item_title"),
        ]

    def __str__(self) -> str:
        return self.title


class DeploymentState(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    DEPLOYED = "deployed", "Deployed"
    VERIFIED = "verified", "Verified"


# The state groups, each defined once. Only signoff.lifecycle.services writes the state.
# Closed: the record is closed; the checklist, its waivers and its sign-offs no longer change.
CLOSED_STATES = (DeploymentState.DEPLOYED, DeploymentState.VERIFIED)
# Entering one of these makes a signed record of the deployment.
RECORD_STATES = (DeploymentState.APPROVED, DeploymentState.VERIFIED)
# Cleared to go out (the pipeline gate), when every role's approval holds too.
RELEASABLE_STATES = (DeploymentState.APPROVED, DeploymentState.DEPLOYED, DeploymentState.VERIFIED)
# Re-probed on schedule, so that drift after approval shows: approved, and what runs.
WATCHED_STATES = RELEASABLE_STATES
# A role may sign while the deployment is in one of these.
SIGNABLE_STATES = (DeploymentState.IN_REVIEW, DeploymentState.APPROVED)
# Past draft: sign-off was requested, so a change to an item someone decided needs a reason
# (ChecklistItem.change_needs_reason; the closed states refuse item edits anyway).
SIGNOFF_REQUESTED_STATES = (
    DeploymentState.IN_REVIEW,
    DeploymentState.APPROVED,
    DeploymentState.DEPLOYED,
    DeploymentState.VERIFIED,
)


class Deployment(models.Model):
    """One release of one service to one environment, with its own copy of the checklist."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="deployments")
    template = models.ForeignKey(
        ChecklistTemplate, on_delete=models.PROTECT, related_name="deployments"
    )
    service = models.CharField(max_length=100)
    environment = models.CharField(max_length=50)
    version = models.CharField(max_length=100)
    planned_date = models.DateField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_deployments"
    )
    state = models.CharField(
        max_length=20, choices=DeploymentState.choices, default=DeploymentState.DRAFT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The AWS target the probes read is its set of AwsAccount rows (below).
    # Progress kept with the row (readiness.checklists.progress.refresh_progress, in the
    # transaction of every item write), so lists of deployments never aggregate items. A
    # database default too: rows inserted by plain SQL (restores, old exports) still insert,
    # and `manage.py check_progress --fix` recounts them.
    items_total = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    items_done = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    items_not_applicable = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    items_failed = models.PositiveIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["team", "state"]),
            # The dashboard's order: its first page reads 25 index entries instead of
            # sorting every deployment the user may see.
            models.Index(fields=["-created_at", "-id"], name="deployment_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.version} → {self.environment}"

    @property
    def has_aws_target(self) -> bool:
        return self.aws_accounts.exists()

    @property
    def aws_regions(self) -> list[str]:
        """Every region any of its accounts is read in (a run may pick among them)."""
        # Sorted here, not by the query: a page that prefetched the accounts reads no more.
        accounts = sorted(self.aws_accounts.all(), key=lambda account: account.account_id)
        return list(dict.fromkeys(region for account in accounts for region in account.regions))

    @property
    def is_closed(self) -> bool:
        return self.state in CLOSED_STATES


class AwsAccount(models.Model):
    """One AWS account a deployment spans (workload, shared networking, logging, security):
    the probes read it in its regions. Credentials are never stored: the worker uses its own
    (for at most one account of a deployment), or assumes `role_arn` with STS for each run,
    presenting `external_id` (the confused-deputy guard of a cross-account role)."""

    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="aws_accounts"
    )
    account_id = models.CharField("AWS account id", max_length=12)
    name = models.CharField(max_length=100, blank=True)
    regions = models.JSONField("AWS regions", default=list)
    role_arn = models.CharField("role to assume", max_length=2048, blank=True)
    external_id = models.CharField("external id", max_length=1224, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deployment", "account_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "account_id"], name="aws_account_once_per_deployment"
            ),
            # Two accounts read with the worker's own credentials would read the same account.
            models.UniqueConstraint(
                fields=["deployment"],
                condition=Q(role_arn=""),
                name="one_aws_account_without_role",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_id})" if self.name else self.account_id

    def as_target(self) -> dict:
        """What a run reads of this account (no external id: the run looks it up)."""
        return {
            "account_id": self.account_id,
            "name": self.name,
            "role_arn": self.role_arn,
            "regions": list(self.regions),
        }


class OrganizationListingState(models.TextChoices):
    NONE = "", "not listed"
    PENDING = "pending", "listing"
    DONE = "done", "listed"
    FAILED = "failed", "failed"


class AwsOrganizationSource(models.Model):
    """Where a deployment's accounts can be picked from: a role in the organization's
    management (or delegated administrator) account that may call organizations:ListAccounts,
    and the name pattern of the role to assume in each account picked.

    A worker lists the accounts (readiness.checklists.targets.aws_organization_list), never a
    request: each listing asked for is a new `listing_attempt`, and a worker writes the
    accounts (or the reason it could not) only for the attempt it was sent for."""

    deployment = models.OneToOneField(
        Deployment, on_delete=models.CASCADE, related_name="aws_organization"
    )
    role_arn = models.CharField("role that lists the accounts", max_length=2048)
    external_id = models.CharField("external id", max_length=1224, blank=True)
    parent_id = models.CharField("organizational unit or root", max_length=100, blank=True)
    member_role_pattern = models.CharField(max_length=2048)
    updated_at = models.DateTimeField(auto_now=True)
    listing_state = models.CharField(
        max_length=10, choices=OrganizationListingState.choices, blank=True, default=""
    )
    listing_attempt = models.PositiveIntegerField(default=0)
    listing_requested_at = models.DateTimeField(null=True, blank=True)
    listed_at = models.DateTimeField(null=True, blank=True)
    listed_accounts = models.JSONField(
        default=list,
        blank=True,
        help_text="[{account_id, name, email, status}] as AWS listed them.",
    )
    listing_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Organization of {self.deployment} through {self.role_arn}"

    def member_role_arn(self, account_id: str) -> str:
        return self.member_role_pattern.replace("{account}", account_id)


class DeploymentSection(models.Model):
    """A template section copied into a deployment when it was created."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="sections")
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=200)

    class Meta:
        ordering = ["deployment", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "position"], name="deployment_section_pos"
            )
        ]

    def __str__(self) -> str:
        return self.title


class ItemStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    NOT_APPLICABLE = "not_applicable", "Not applicable"
    FAILED = "failed", "Failed"


COMPLETE_STATUSES = (ItemStatus.DONE, ItemStatus.NOT_APPLICABLE)


class DecisionSource(models.TextChoices):
    """Who set an item's current status: nobody yet, a person, a probe run, or evidence a
    pipeline uploaded."""

    NONE = "", "Not set"
    PERSON = "person", "Person"
    PROBE = "probe", "Probe"
    EVIDENCE = "evidence", "CI evidence"


class ChecklistItem(models.Model):
    """A snapshot of a template item inside one deployment, with its current state.

    `version` grows by one on every change; an edit carries the version it was made on and
    is refused if the item moved on since (optimistic locking).
    """

    section = models.ForeignKey(DeploymentSection, on_delete=models.CASCADE, related_name="items")
    template_item = models.ForeignKey(
        TemplateItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    qualifier = models.CharField(max_length=20, choices=Qualifier.choices, blank=True)
    # Copied from the template item like the wording, so a later change of the template's
    # owners leaves deployments already under review alone.
    owner_role = models.ForeignKey(
        "signoff.Role", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=20, choices=ItemStatus.choices, default=ItemStatus.OPEN)
    note = models.TextField(blank=True)
    evidence_url = models.URLField(max_length=2000, blank=True)
    na_reason = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    source = models.CharField(max_length=10, choices=DecisionSource.choices, blank=True)
    status_reason = models.TextField(
        blank=True, help_text="Why the status is what it is: a probe's summary or an override."
    )

    class Meta:
        ordering = ["section", "position"]
        constraints = [
            models.UniqueConstraint(fields=["section", "position"], name="checklist_item_pos"),
            models.CheckConstraint(
                condition=~Q(status="not_applicable") | ~Q(na_reason=""),
                name="not_applicable_needs_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_complete(self) -> bool:
        return self.status in COMPLETE_STATUSES

    @property
    def is_decided(self) -> bool:
        """Someone (a person, a probe run, CI evidence) decided something here: the status is
        not open, or a note, an evidence link or an n/a reason is set. An open item holding
        nothing is undecided, also when it was reopened and emptied (which took a reason)."""
        return self.status != ItemStatus.OPEN or bool(
            self.note or self.evidence_url or self.na_reason
        )

    def change_needs_reason(self, deployment: Deployment) -> bool:
        """Once sign-off was requested, any change to a decided item (status, note, evidence
        link, n/a reason) needs a reason; a first decision on an undecided one does not.
        `deployment` is the item's (passed in, so that a page of items reads it once)."""
        return deployment.state in SIGNOFF_REQUESTED_STATES and self.is_decided


class ItemChange(models.Model):
    """One saved edit of a checklist item: who, when, and the values after the edit.

    Rows are only ever added; the history page and later the audit trail read them.
    """

    item = models.ForeignKey(ChecklistItem, on_delete=models.CASCADE, related_name="changes")
    version = models.PositiveIntegerField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty when a probe run made the change.",
    )
    source = models.CharField(
        max_length=10, choices=DecisionSource.choices, default=DecisionSource.PERSON
    )
    reason = models.TextField(
        blank=True, help_text="A probe's summary, or why a person overrode it."
    )
    probe_run = models.ForeignKey(
        "ProbeRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField()
    previous_status = models.CharField(max_length=20, choices=ItemStatus.choices)
    status = models.CharField(max_length=20, choices=ItemStatus.choices)
    note = models.TextField(blank=True)
    evidence_url = models.URLField(max_length=2000, blank=True)
    na_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["item", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["item", "version"], name="item_change_version")
        ]

    def __str__(self) -> str:
        return f"{self.item} v{self.version}: {self.previous_status} → {self.status}"


class PostDeploymentCheck(models.Model):
    """One of the template's Post-Deployment Notes, ticked after the release went out."""

    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="post_deployment_checks"
    )
    position = models.PositiveIntegerField()
    label = models.CharField(max_length=200)
    checked = models.BooleanField(default=False)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="What the person checked and saw.")

    class Meta:
        ordering = ["deployment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "position"], name="post_check_pos")
        ]

    def __str__(self) -> str:
        return self.label
