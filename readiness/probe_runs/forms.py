"""What a person picks when starting a probe run."""

from django import forms

from readiness.checklists.models import Deployment


class ProbeRunForm(forms.Form):
    """The accounts and regions of this run, among the target's (all of them when the form
    has no picker: a target with one account or one region, or a plain "Run probes" button)."""

    # Present only where the page showed the picker: then an empty choice is an error, not
    # "all of them".
    pick_regions = forms.BooleanField(required=False, widget=forms.HiddenInput)
    regions = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": "%(value)s is not a region of this deployment's AWS target."
        },
    )
    pick_accounts = forms.BooleanField(required=False, widget=forms.HiddenInput)
    accounts = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": "%(value)s is not an account of this deployment's AWS target."
        },
    )

    def __init__(self, *args, deployment: Deployment, **kwargs):
        super().__init__(*args, **kwargs)
        accounts = list(deployment.aws_accounts.order_by("account_id"))
        target = list(dict.fromkeys(region for account in accounts for region in account.regions))
        self.fields["regions"].choices = [(region, region) for region in target]
        self.fields["regions"].initial = target
        self.fields["pick_regions"].initial = True
        self.fields["accounts"].choices = [
            (account.account_id, str(account)) for account in accounts
        ]
        self.fields["accounts"].initial = [account.account_id for account in accounts]
        self.fields["pick_accounts"].initial = True

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("pick_regions") and not cleaned.get("regions") and "regions" in cleaned:
            self.add_error("regions", "Pick at least one region to probe.")
        if cleaned.get("pick_accounts") and not cleaned.get("accounts") and "accounts" in cleaned:
            self.add_error("accounts", "Pick at least one account to probe.")
        return cleaned

    def picked_regions(self) -> list[str] | None:
        """The regions picked, or None for the target's all."""
        return self._picked("regions")

    def picked_accounts(self) -> list[str] | None:
        """The account ids picked, or None for the target's all."""
        return self._picked("accounts")

    def _picked(self, name: str) -> list[str] | None:
        if not self.cleaned_data.get(f"pick_{name}"):
            return self.cleaned_data.get(name) or None
        return self.cleaned_data[name]
