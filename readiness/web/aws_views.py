"""A deployment's AWS target: its accounts (each with its role, external id, regions and
the policies its role needs) and the AWS Organizations source they can be picked from."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from readiness.checklists import selectors, targets
from readiness.checklists.forms import (
    AwsAccountForm,
    AwsOrganizationForm,
    AwsOrganizationPickForm,
)
from readiness.checklists.models import AwsOrganizationSource
from readiness.checklists.services import RecordClosed
from readiness.probe_runs import catalogue

TEMPLATE = "readiness/deployment_aws.html"


def _deployment(request: HttpRequest, pk: int):
    return get_object_or_404(selectors.deployments_visible_to(request.user), pk=pk)


def _page(request, deployment, *, status=200, **forms) -> HttpResponse:
    accounts = list(deployment.aws_accounts.order_by("account_id"))
    for account in accounts:
        policy, account.trust_missing = catalogue.account_trust_policy(account)
        account.trust_policy = catalogue.policy_json(policy) if policy else ""
    source = AwsOrganizationSource.objects.filter(deployment=deployment).first()
    context = {
        "deployment": deployment,
        "accounts": accounts,
        "form": forms.get("form") or AwsAccountForm.for_account(),
        "organization": source,
        "organization_form": forms.get("organization_form")
        or AwsOrganizationForm.for_source(source),
        "pick_form": forms.get("pick_form"),
        "listing_error": forms.get("listing_error", ""),
        "action_count": len(catalogue.declared_actions()),
        "max_accounts": targets.MAX_ACCOUNTS,
    }
    return render(request, TEMPLATE, context, status=status)


def _refused(request, deployment, error: Exception, **forms) -> HttpResponse:
    """A service said no (a closed record, a rule across accounts): say why on the page."""
    status = 409 if isinstance(error, RecordClosed) else 400
    messages.error(request, " ".join(getattr(error, "messages", None) or [str(error)]))
    return _page(request, deployment, status=status, **forms)


@require_http_methods(["GET", "POST"])
def deployment_aws(request: HttpRequest, pk: int) -> HttpResponse:
    """The accounts the probes read; a POST adds one, or changes the one with that id."""
    deployment = _deployment(request, pk)
    if request.method == "GET":
        account = None
        if request.GET.get("account"):
            account = deployment.aws_accounts.filter(account_id=request.GET["account"]).first()
        return _page(request, deployment, form=AwsAccountForm.for_account(account))
    form = AwsAccountForm(request.POST)
    if not form.is_valid():
        return _page(request, deployment, status=400, form=form)
    try:
        targets.aws_account_save(deployment=deployment, user=request.user, spec=form.spec())
    except (ValidationError, RecordClosed) as error:
        return _refused(request, deployment, error, form=form)
    messages.success(
        request, f"Saved account {form.cleaned_data['aws_account_id']}. Probes will read it."
    )
    return redirect("deployment_detail", pk=deployment.pk)


@require_POST
def deployment_aws_account_remove(request: HttpRequest, pk: int, account_id: str) -> HttpResponse:
    deployment = _deployment(request, pk)
    try:
        removed = targets.aws_account_remove(
            deployment=deployment, user=request.user, account_id=account_id
        )
    except RecordClosed as error:
        return _refused(request, deployment, error)
    if not removed:
        raise Http404("No such account in this deployment's target.")
    messages.success(request, f"Removed account {account_id} from the AWS target.")
    return redirect("deployment_aws", pk=deployment.pk)


@require_POST
def deployment_aws_organization(request: HttpRequest, pk: int) -> HttpResponse:
    """Set where accounts are picked from, then list them."""
    deployment = _deployment(request, pk)
    form = AwsOrganizationForm(request.POST)
    if not form.is_valid():
        return _page(request, deployment, status=400, organization_form=form)
    data = form.cleaned_data
    try:
        targets.aws_organization_save(
            deployment=deployment,
            user=request.user,
            role_arn=data["org_role_arn"],
            external_id=data["org_external_id"],
            parent_id=data["org_parent_id"],
            member_role_pattern=data["org_member_role_pattern"],
        )
    except RecordClosed as error:
        return _refused(request, deployment, error, organization_form=form)
    return redirect("deployment_aws_organization_accounts", pk=deployment.pk)


@require_http_methods(["GET", "POST"])
def deployment_aws_organization_accounts(request: HttpRequest, pk: int) -> HttpResponse:
    """The organization's accounts, read through the source's role (GET), and the ones
    picked added to the target (POST; the list is read again, so only accounts the
    organization really holds are added, under the names it gives them)."""
    deployment = _deployment(request, pk)
    try:
        listed = targets.aws_organization_accounts(deployment=deployment, user=request.user)
    except ValidationError as error:
        return _refused(request, deployment, error)
    except targets.OrganizationUnreadable as error:
        # AWS answered no (or not at all): said on the page, a 4xx as any refused request.
        return _page(request, deployment, status=400, listing_error=str(error))
    form = AwsOrganizationPickForm(
        request.POST if request.method == "POST" else None,
        listed=listed,
        initial={"pick_regions": ", ".join(_usual_regions(deployment))},
    )
    if request.method == "GET" or not form.is_valid():
        status = 400 if request.method == "POST" else 200
        return _page(request, deployment, status=status, pick_form=form)
    try:
        added = targets.aws_accounts_add_from_organization(
            deployment=deployment,
            user=request.user,
            accounts=form.picked(),
            regions=form.cleaned_data["pick_regions"],
        )
    except (ValidationError, RecordClosed) as error:
        return _refused(request, deployment, error, pick_form=form)
    messages.success(request, f"Added {len(added)} account(s) from the organization.")
    return redirect("deployment_aws", pk=deployment.pk)


def _usual_regions(deployment) -> list[str]:
    regions = [r for a in deployment.aws_accounts.order_by("account_id") for r in a.regions]
    return list(dict.fromkeys(regions))


@require_GET
def deployment_trust_policy(request: HttpRequest, pk: int, account_id: str) -> HttpResponse:
    """The trust policy of one account's probe role, with that account's external id."""
    deployment = _deployment(request, pk)
    account = get_object_or_404(deployment.aws_accounts, account_id=account_id)
    policy, missing = catalogue.account_trust_policy(account)
    if policy is None:
        return HttpResponse(
            "No trust policy yet: " + "; and ".join(missing) + ".\n",
            status=409,
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(catalogue.policy_json(policy), content_type="application/json")
    filename = f"readiness-deployment-{deployment.pk}-{account.account_id}-trust-policy.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
