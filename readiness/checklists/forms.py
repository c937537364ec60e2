import re
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.core.validators import RegexValidator, URLValidator
from django.utils import timezone

from readiness.checklists.models import ChecklistTemplate, DeploymentState, ItemStatus
from readiness.checklists.selectors import latest_templates, teams_of
from readiness.checklists.targets import AccountSpec
from readiness.probes.base import STATUS_ORDER, STATUS_TITLES
from readiness.probes.session import ACCOUNT_ID_RE, ROLE_ARN_RE, known_regions

ENVIRONMENT_SUGGESTIONS = ("production", "staging", "qa", "development")
# A planned date further than this from today is a slip (0001-01-01, 9999-12-31), not a plan.
PLANNED_DATE_RANGE = timedelta(days=3653)
_NAME_VALIDATOR = RegexValidator(
    re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@+-]*$"),
    "Use letters, digits and . _ / @ + - (no spaces).",
)


class TemplateChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ChecklistTemplate) -> str:
        default = ", default" if obj.is_default else ""
        return f"{obj.name} v{obj.version} ({obj.item_count} items{default})"


class DeploymentCreateForm(forms.Form):
    service = forms.CharField(
        max_length=100,
        validators=[_NAME_VALIDATOR],
        widget=forms.TextInput(attrs={"placeholder": "e.g. payments-api", "autofocus": True}),
    )
    version = forms.CharField(
        max_length=100,
        validators=[_NAME_VALIDATOR],
        widget=forms.TextInput(attrs={"placeholder": "e.g. 2.4.0"}),
    )
    environment = forms.CharField(
        max_length=50,
        validators=[_NAME_VALIDATOR],
        initial="production",
        widget=forms.TextInput(attrs={"list": "environment-suggestions"}),
    )
    planned_date = forms.DateField(
        label="Planned deployment date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    template = TemplateChoiceField(queryset=None, empty_label=None, label="Checklist template")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams_of(user)
        templates = latest_templates()
        self.fields["template"].queryset = ChecklistTemplate.objects.filter(
            pk__in=[t.pk for t in templates]
        )
        # Keep the annotated objects (item counts) for the labels, default first.
        self.fields["template"].choices = [
            (t.pk, self.fields["template"].label_from_instance(t)) for t in templates
        ]

    def clean_planned_date(self):
        planned = self.cleaned_data["planned_date"]
        today = timezone.now().date()
        if planned and not today - PLANNED_DATE_RANGE <= planned <= today + PLANNED_DATE_RANGE:
            raise forms.ValidationError("Enter a planned date within ten years of today.")
        return planned


CHANGE_REASON_LABEL = "Why this changes after sign-off was requested"


EVIDENCE_URL_MESSAGE = "Enter a web link starting with http:// or https://."


class EvidenceUrlField(forms.URLField):
    """A web link: URLField's own validator, limited to http and https, with one message
    (a second validator beside the default one said "Enter a valid URL." twice)."""

    default_validators = [URLValidator(schemes=["http", "https"], message=EVIDENCE_URL_MESSAGE)]
    default_error_messages = {"invalid": EVIDENCE_URL_MESSAGE}


class ItemForm(forms.Form):
    """One checklist item's edit; `version` is the version the page showed.

    `reason` is asked for where a change needs one (the service decides and refuses without
    it): overriding a probe's verdict, and changing a decided item once sign-off was
    requested (`reason_required`, which the page knows from the deployment's state).
    """

    status = forms.ChoiceField(choices=ItemStatus.choices, widget=forms.RadioSelect)
    na_reason = forms.CharField(
        label="Why it does not apply",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    note = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )
    evidence_url = EvidenceUrlField(
        label="Evidence link",
        required=False,
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://…"}),
    )
    reason = forms.CharField(
        label="Why you override the probe",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("status") == ItemStatus.NOT_APPLICABLE
            and not cleaned.get("na_reason", "").strip()
        ):
            self.add_error("na_reason", "Say why this item does not apply.")
        return cleaned

    @classmethod
    def for_item(cls, item, data=None, *, deployment) -> "ItemForm":
        form = cls(
            data,
            prefix=f"item{item.pk}",
            initial={
                "status": item.status,
                "na_reason": item.na_reason,
                "note": item.note,
                "evidence_url": item.evidence_url,
                "version": item.version,
            },
        )
        form.reason_required = item.change_needs_reason(deployment)
        if form.reason_required:
            form.fields["reason"].label = CHANGE_REASON_LABEL
        return form


# The checklist page's filters, in the order its links show them.
ITEM_FILTERS = {
    "open": "Open",
    "failed": "Failed",
    "mine": "Mine",
    "disagrees": "Probe disagrees",
    "overridden": "Overridden",
    "waived": "Waived",
}


class ItemFilterForm(forms.Form):
    """The checklist page's query: which items it lists. Kept in the URL, so a shared link
    lists the same items; a value the form does not know lists every item, as a bare URL
    does."""

    show = forms.ChoiceField(required=False, choices=[("", "All"), *ITEM_FILTERS.items()])
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search items",
        widget=forms.SearchInput(attrs={"placeholder": "Title, description, section, owner"}),
    )
    probe = forms.ChoiceField(
        required=False,
        choices=[("", "Any probe result"), *((str(s), STATUS_TITLES[s]) for s in STATUS_ORDER)],
    )

    @classmethod
    def of(cls, query) -> "ItemFilterForm":
        """The filters of a query string: the valid fields kept, the others emptied."""
        form = cls(query)
        form.is_valid()
        form.filters = {name: form.cleaned_data.get(name) or "" for name in ("show", "q", "probe")}
        return form

    def query(self, **changes) -> str:
        """The query string of these filters with `changes` applied, empty values left out."""
        values = {**self.filters, **changes}
        return urlencode({name: value for name, value in values.items() if value})


class BulkStatusForm(forms.Form):
    """One status, with one reason, for several items of one deployment."""

    items = forms.TypedMultipleChoiceField(
        coerce=int,
        error_messages={
            "required": "Select the items to change first.",
            "invalid_choice": "An item selected is not on this checklist (reload the page).",
        },
    )
    status = forms.ChoiceField(choices=ItemStatus.choices, label="Set status to")
    reason = forms.CharField(
        max_length=2000,
        label="Reason",
        error_messages={"required": "Say why these items change."},
        help_text="Kept with each item's change, in its history and the audit trail; it is "
        "also the reason for “Not applicable”.",
        widget=forms.TextInput(attrs={"placeholder": "Why these items change"}),
    )

    def __init__(self, *args, item_ids, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["items"].choices = [(pk, pk) for pk in item_ids]

    @property
    def error_messages_flat(self) -> list[str]:
        """Every error, for one line above the form (a template cannot reach
        `errors.items()`: a field is named `items`)."""
        return [message for errors in self.errors.values() for message in errors]


class DashboardFilterForm(forms.Form):
    text = forms.CharField(
        required=False,
        label="Search",
        widget=forms.SearchInput(attrs={"placeholder": "Service, environment or version"}),
    )
    team = forms.ChoiceField(required=False)
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *DeploymentState.choices])

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "All my teams")] + [
            (team.slug, team.name) for team in teams_of(user)
        ]


class TemplateImportForm(forms.Form):
    file = forms.FileField(
        label="Markdown file", help_text="A checklist in the default template's format."
    )
    name = forms.CharField(
        required=False,
        max_length=200,
        help_text="Optional: defaults to the file's '# Title'.",
    )


_EXTERNAL_ID_VALIDATOR = RegexValidator(r"^[\w+=,.@:/-]+$", "Letters, digits and +=,.@:/- only.")


def _regions(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    names = list(dict.fromkeys(name for name in names if name))
    if not names:
        raise forms.ValidationError("Name at least one region.")
    known = set(known_regions())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise forms.ValidationError(f"Unknown region: {', '.join(unknown)}.")
    if len(names) > 20:
        raise forms.ValidationError("At most 20 regions.")
    return names


class AwsAccountForm(forms.Form):
    """One account the probes read (added, or changed when its id is already there). No
    secret is asked for: the worker's own credentials are used, or the role given here is
    assumed with STS (the external id guards against confused deputies when the role lives
    in another account)."""

    aws_account_id = forms.CharField(
        label="AWS account id",
        max_length=12,
        validators=[RegexValidator(ACCOUNT_ID_RE, "An AWS account id is 12 digits.")],
        widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "123456789012"}),
    )
    aws_name = forms.CharField(
        label="Name (optional)",
        required=False,
        max_length=100,
        help_text="What the account is for, e.g. workload, logging, networking.",
    )
    aws_regions = forms.CharField(
        label="Regions",
        help_text="Comma-separated, e.g. eu-west-1, us-east-1.",
        widget=forms.TextInput(attrs={"placeholder": "eu-west-1, us-east-1"}),
    )
    aws_role_arn = forms.CharField(
        label="Role to assume (optional)",
        required=False,
        max_length=2048,
        help_text="Leave empty to use the worker's own credentials (one account at most).",
        widget=forms.TextInput(attrs={"placeholder": "arn:aws:iam::123456789012:role/readiness"}),
    )
    aws_external_id = forms.CharField(
        label="External id (optional)",
        required=False,
        min_length=2,
        max_length=1224,
        validators=[_EXTERNAL_ID_VALIDATOR],
    )

    def clean_aws_regions(self) -> list[str]:
        return _regions(self.cleaned_data["aws_regions"])

    def clean(self):
        cleaned = super().clean()
        role_arn = cleaned.get("aws_role_arn", "").strip()
        if role_arn:
            match = ROLE_ARN_RE.match(role_arn)
            if not match:
                self.add_error(
                    "aws_role_arn", "Expected arn:aws:iam::<12-digit account>:role/<name>."
                )
            elif cleaned.get("aws_account_id") and match["account"] != cleaned["aws_account_id"]:
                self.add_error("aws_role_arn", "The role must be in the account above.")
        elif cleaned.get("aws_external_id"):
            self.add_error("aws_external_id", "An external id is only used with a role.")
        cleaned["aws_role_arn"] = role_arn
        return cleaned

    def spec(self):
        """The account as the services take it (call once valid)."""
        data = self.cleaned_data
        return AccountSpec(
            account_id=data["aws_account_id"],
            name=data["aws_name"].strip(),
            regions=data["aws_regions"],
            role_arn=data["aws_role_arn"],
            external_id=data["aws_external_id"],
        )

    @classmethod
    def for_account(cls, account=None, data=None) -> "AwsAccountForm":
        initial = {}
        if account is not None:
            initial = {
                "aws_account_id": account.account_id,
                "aws_name": account.name,
                "aws_regions": ", ".join(account.regions),
                "aws_role_arn": account.role_arn,
                "aws_external_id": account.external_id,
            }
        return cls(data, initial=initial)


MEMBER_ROLE_PATTERN_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::\{account\}:role/[\w+=,.@/-]{1,512}$")
# An organizational unit (ou-xxxx-yyyyyyyy) or the root (r-xxxx).
PARENT_ID_RE = re.compile(r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[0-9a-z]{8,32})$")


class AwsOrganizationForm(forms.Form):
    """Where accounts are picked from: a role in the management or delegated-administrator
    account that may call organizations:ListAccounts (and ListAccountsForParent)."""

    org_role_arn = forms.CharField(
        label="Role that lists the accounts",
        max_length=2048,
        help_text="In the management or delegated-administrator account.",
        widget=forms.TextInput(
            attrs={"placeholder": "arn:aws:iam::111111111111:role/ReadinessOrganizations"}
        ),
    )
    org_external_id = forms.CharField(
        label="External id (optional)",
        required=False,
        min_length=2,
        max_length=1224,
        validators=[_EXTERNAL_ID_VALIDATOR],
        help_text="Presented to that role, and to the role assumed in each account picked.",
    )
    org_parent_id = forms.CharField(
        label="Organizational unit (optional)",
        required=False,
        max_length=100,
        validators=[RegexValidator(PARENT_ID_RE, "Expected ou-… or r-… as AWS writes them.")],
        help_text="Only the accounts directly under this OU or root; all accounts if empty.",
    )
    org_member_role_pattern = forms.CharField(
        label="Role to assume in each account",
        max_length=2048,
        initial="arn:aws:iam::{account}:role/ReadinessProbe",
        help_text="{account} stands for each account's id.",
    )

    def clean_org_role_arn(self) -> str:
        value = self.cleaned_data["org_role_arn"].strip()
        if not ROLE_ARN_RE.match(value):
            raise forms.ValidationError("Expected arn:aws:iam::<12-digit account>:role/<name>.")
        return value

    def clean_org_member_role_pattern(self) -> str:
        value = self.cleaned_data["org_member_role_pattern"].strip()
        if not MEMBER_ROLE_PATTERN_RE.match(value):
            raise forms.ValidationError(
                "Expected arn:aws:iam::{account}:role/<name>, with {account} in place of the id."
            )
        return value

    @classmethod
    def for_source(cls, source=None, data=None) -> "AwsOrganizationForm":
        initial = {}
        if source is not None:
            initial = {
                "org_role_arn": source.role_arn,
                "org_external_id": source.external_id,
                "org_parent_id": source.parent_id,
                "org_member_role_pattern": source.member_role_pattern,
            }
        return cls(data, initial=initial)


class AwsOrganizationPickForm(forms.Form):
    """Which of the accounts the organization listed to add, and the regions to read."""

    accounts = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    pick_regions = forms.CharField(
        label="Regions",
        help_text="Comma-separated; each account picked is read in these.",
        widget=forms.TextInput(attrs={"placeholder": "eu-west-1, us-east-1"}),
    )

    def __init__(self, data=None, *, listed=(), **kwargs):
        super().__init__(data, **kwargs)
        self.listed = {account.account_id: account for account in listed}
        self.fields["accounts"].choices = [
            (account.account_id, f"{account.name} ({account.account_id})")
            for account in listed
            if account.active
        ]

    def clean_pick_regions(self) -> list[str]:
        return _regions(self.cleaned_data["pick_regions"])

    def picked(self) -> list:
        return [self.listed[account_id] for account_id in self.cleaned_data["accounts"]]
