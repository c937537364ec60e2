"""The probe catalogue and the IAM policies the probes need (see readiness/catalogue.py)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from readiness.checklists import selectors
from readiness.probe_runs import catalogue
from readiness.probe_runs.services import probe_settings


def _json_download(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def probe_catalogue(request: HttpRequest) -> HttpResponse:
    """Every probe with its item, rule, thresholds, actions and remediation, and the items
    no AWS API can prove, for a security reviewer to read what the machine checks."""
    template = selectors.default_template()
    thresholds = probe_settings()
    groups = catalogue.catalogue(template, thresholds)
    policy = catalogue.permissions_policy()
    items = [item for _, section_items in groups for item in section_items]
    context = {
        "template": template,
        "groups": groups,
        "probe_count": len(catalogue.registry()),
        "manual_count": sum(item.manual for item in items),
        "checked_count": sum(not item.manual for item in items),
        "policy": catalogue.policy_json(policy),
        "policy_size": catalogue.compact_size(policy),
        "policy_max": catalogue.MANAGED_POLICY_MAX_CHARS,
        "action_count": len(policy["Statement"][0]["Action"]),
    }
    return render(request, "readiness/probe_catalogue.html", context)


@require_GET
def probe_policy(request: HttpRequest) -> HttpResponse:
    return _json_download(
        catalogue.policy_json(catalogue.permissions_policy()), "readiness-probes-policy.json"
    )
