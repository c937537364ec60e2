"""What a person picks when starting a probe run."""

from django import forms

from readiness.checklists.models import Deployment


class ProbeRunForm(forms.Form):
    """The regions of this run, among the target's (all of them when the form has no picker:
    a target with one region, or a plain "Run probes" button)."""

    # Present only where the page showed the picker: then an empty choice is an error, not
    # "all regions".
    pick_regions = forms.BooleanField(required=False, widget=forms.HiddenInput)
    regions = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": "%(value)s is not a region of this deployment's AWS target."
        },
    )

    def __init__(self, *args, deployment: Deployment, **kwargs):
        super().__init__(*args, **kwargs)
        target = list(deployment.aws_regions)
        self.fields["regions"].choices = [(region, region) for region in target]
        self.fields["regions"].initial = target
        self.fields["pick_regions"].initial = True

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("pick_regions") and not cleaned.get("regions") and "regions" in cleaned:
            self.add_error("regions", "Pick at least one region to probe.")
        return cleaned

    def picked_regions(self) -> list[str] | None:
        """The regions picked, or None for the target's all."""
        if not self.cleaned_data.get("pick_regions"):
            return self.cleaned_data.get("regions") or None
        return self.cleaned_data["regions"]
