"""The profile page's API tokens: create (shown once), list, revoke."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from readiness.api import tokens
from readiness.api.models import ApiToken, TokenScope


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. GitHub Actions — payments-api"}),
    )
    scope = forms.ChoiceField(
        choices=TokenScope.choices,
        initial=TokenScope.READ,
        widget=forms.RadioSelect,
        help_text="Read: list deployments, read checklists, call the gate. "
        "Write: also create deployments, start probe runs and upload evidence.",
    )


@never_cache
@require_http_methods(["GET", "POST"])
def token_list(request):
    form = TokenForm(request.POST or None)
    created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                token, raw = tokens.token_create(user=request.user, **form.cleaned_data)
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    for message in errors:
                        form.add_error(field if field in form.fields else None, message)
                status = 400
            else:
                # The raw token exists only in this response: it is stored hashed.
                created = {"token": token, "raw": raw}
                form = TokenForm()
        else:
            status = 400
    context = {
        "form": form,
        "created": created,
        "tokens": ApiToken.objects.filter(user=request.user).order_by("revoked_at", "-created_at"),
    }
    return render(request, "api/tokens.html", context, status=status)


@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    tokens.token_revoke(token=token, user=request.user)
    messages.success(request, f"Revoked {token}. Pipelines using it now get 401.")
    return redirect("token_list")
