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
LISTING_POLL_SECONDS = 2


def _deployment(request: HttpRequest, pk: int):
    return get_object_or_404(selectors.deployments_visible_to(request.user), pk=pk)


def _listing_context(deployment, source, pick_form=None) -> dict:
    """The organization's listing panel: where the worker's listing is, and the accounts to
    pick once it is done."""
    listing = targets.aws_organization_listing(source) if source else None
    if pick_form is None and listing is not None and listing.done:
        pick_form = AwsOrganizationPickForm(
            listed=listing.accounts,
            initial={"pick_regions": ", ".join(_usual_regions(deployment))},
        )
    return {
        "deployment": deployment,
        "organization": source,
        "listing": listing,
        "pick_form": pick_form,
        "poll_seconds": LISTING_POLL_SECONDS,
    }


def _page(request, deployment, *, status=200, **forms) -> HttpResponse:
    accounts = list(deployment.aws_accounts.order_by("account_id"))
    for account in accounts:
        policy, account.trust_missing = catalogue.account_trust_policy(account)
        account.trust_policy = catalogue.policy_json(policy) if policy else ""
    source = AwsOrganizationSource.objects.filter(deployment=deployment).first()
    context = {
        **_listing_context(deployment, source, forms.get("pick_form")),
        "accounts": accounts,
        "form": forms.get("form") or AwsAccountForm.for_account(),
        "organization_form": forms.get("organization_form")
        or AwsOrganizationForm.for_source(source),
        "action_count": len(catalogue.declared_actions()),
        "max_accounts": targets.MAX_ACCOUNTS,
    }
    return render(request, TEMPLATE, context, status=status)


def _listing_panel(request, deployment, *, status=200) -> HttpResponse:
    """Only the listing panel: what htmx polls every few seconds (no trust policies, no
    catalogue), never cached."""
    source = AwsOrganizationSource.objects.filter(deployment=deployment).first()
    context = _listing_context(deployment, source)
    response = render(request, f"{TEMPLATE}#organization-listing", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


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
            list_accounts=True,
        )
    except RecordClosed as error:
        return _refused(request, deployment, error, organization_form=form)
    return redirect("deployment_aws_organization_accounts", pk=deployment.pk)


@require_POST
def deployment_aws_organization_list(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask a worker to list the organization's accounts (again)."""
    deployment = _deployment(request, pk)
    try:
        targets.aws_organization_listing_request(deployment=deployment, user=request.user)
    except (ValidationError, RecordClosed) as error:
        return _refused(request, deployment, error)
    if request.htmx:
        return _listing_panel(request, deployment)
    return redirect("deployment_aws_organization_accounts", pk=deployment.pk)


@require_http_methods(["GET", "POST"])
def deployment_aws_organization_accounts(request: HttpRequest, pk: int) -> HttpResponse:
    """The organization's accounts as a worker listed them (GET: the page, or its listing
    panel for htmx, which polls it while the worker lists), and the ones picked added to
    the target (POST; only accounts the organization listed can be picked, under the names
    it gives them)."""
    deployment = _deployment(request, pk)
    source = AwsOrganizationSource.objects.filter(deployment=deployment).first()
    if source is None:
        return _refused(request, deployment, ValidationError("Set the Organizations source first."))
    if request.method == "GET":
        if request.htmx:
            return _listing_panel(request, deployment)
        return _page(request, deployment)
    listing = targets.aws_organization_listing(source)
    if not listing.done:
        messages.error(
            request,
            "The organization's accounts are not listed yet: wait for the list, then pick.",
        )
        return _page(request, deployment, status=409)
    form = AwsOrganizationPickForm(request.POST, listed=listing.accounts)
    if not form.is_valid():
        return _page(request, deployment, status=400, pick_form=form)
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
