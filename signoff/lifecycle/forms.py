from datetime import UTC, datetime, time, timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from signoff.signatures.models import Meaning

DEPLOYED_AT_MAX_AGE = timedelta(days=3653)
MEANING_HELP = {
    Meaning.APPROVE: "The items are ready as they stand.",
    Meaning.APPROVE_WITH_CONDITIONS: "Ready, under the conditions you write below.",
    Meaning.REJECT: "Not ready; say why below.",
}


class SignForm(forms.Form):
    meaning = forms.ChoiceField(
        choices=[
            (Meaning.APPROVE, "Approve"),
            (Meaning.APPROVE_WITH_CONDITIONS, "Approve with conditions"),
            (Meaning.REJECT, "Reject"),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose what your signature means."},
    )
    comment = forms.CharField(
        label="Conditions or reason",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    username = forms.CharField(
        label="Your username",
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
        help_text="The first signature of a session takes your username and password; the "
        "next ones, while you keep signing, your password.",
        error_messages={
            "required": "Enter your username: the first signature of a session needs both."
        },
    )
    password = forms.CharField(
        label="Your password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Signing needs your password again, now.",
        error_messages={"required": "Enter your password to sign."},
    )

    def __init__(self, *args, identification_required: bool = True, **kwargs):
        # 21 CFR 11.200(a)(1): both identity components at the first signing of a session
        # (signoff.teams.authentication.signing_identification_required decides), the
        # password alone after it.
        super().__init__(*args, **kwargs)
        if not identification_required:
            del self.fields["username"]


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Give a reason."},
    )


class WaiverForm(forms.Form):
    reason = forms.CharField(
        label="Why the risk is accepted",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the risk is accepted."},
    )
    expires_on = forms.DateField(
        label="Expires at the end of (UTC)",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"required": "Choose when the waiver expires.", "invalid": "Enter a date."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        today = timezone.now().date()
        self.fields["expires_on"].widget.attrs.update(
            min=(today + timedelta(days=1)).isoformat(),
            max=(today + timedelta(days=settings.WAIVER_MAX_DAYS)).isoformat(),
        )
        self.fields["expires_on"].initial = today + timedelta(days=30)

    @property
    def expires_at(self) -> datetime:
        day = self.cleaned_data["expires_on"]
        return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


class UTCDateTimeField(forms.DateTimeField):
    """A date and time typed as text, 24-hour, read as UTC (settings.TIME_ZONE).

    Not the browser's datetime-local control: it shows a 12-hour clock in en-US browsers and
    the local zone's conventions, where every time in this app is UTC. A trailing " UTC" or
    "Z", as the pages print times, is accepted."""

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().removesuffix("UTC").removesuffix("Z").strip()
        return super().to_python(value)


class DeployedForm(forms.Form):
    deployed_at = UTCDateTimeField(
        label="Deployed at (UTC)",
        help_text="24-hour clock, UTC: YYYY-MM-DD HH:MM",
        widget=forms.DateTimeInput(
            format="%Y-%m-%d %H:%M",
            attrs={
                "pattern": (
                    r"\s*\d{4}-\d{2}-\d{2}[ T]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?\s*(UTC|Z)?\s*"
                ),
                "title": "YYYY-MM-DD HH:MM, 24-hour clock, UTC",
                "placeholder": "YYYY-MM-DD HH:MM",
                "aria-describedby": "deployed-at-help",
                "autocomplete": "off",
                "spellcheck": "false",
            },
        ),
        input_formats=[
            "%Y-%m-%d %H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H:%M:%S",
        ],
        error_messages={
            "required": "Enter when it was deployed.",
            "invalid": "Enter a date and a 24-hour UTC time as YYYY-MM-DD HH:MM.",
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["deployed_at"].initial = timezone.now().replace(second=0, microsecond=0)

    def clean_deployed_at(self) -> datetime:
        # The future is refused by the service; this bounds the past: 0001-01-01 is a slip.
        deployed_at = self.cleaned_data["deployed_at"]
        if deployed_at < timezone.now() - DEPLOYED_AT_MAX_AGE:
            raise forms.ValidationError("Enter a deployment date within the last ten years.")
        return deployed_at


class PostCheckForm(forms.Form):
    note = forms.CharField(
        label="What you checked and saw",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say what you checked and what you saw."},
    )
