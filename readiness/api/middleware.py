"""Every API request made with a token is an event in the audit trail: who, which token,
what was asked and what was answered. And every API answer is JSON, errors included."""

from django.db import transaction
from django.http import JsonResponse

from readiness.audit.services import audit_record
from readiness.checklists.models import Deployment


class ApiAuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        token = getattr(request, "api_token", None)
        if token is not None:
            match = request.resolver_match
            deployment_id = match.kwargs.get("deployment_id") if match else None
            # Another team's deployment answered 404: the event does not point at it.
            deployment = (
                Deployment.objects.filter(pk=deployment_id, team__members=token.user).first()
                if deployment_id and response.status_code != 404
                else None
            )
            with transaction.atomic():
                audit_record(
                    actor=token.user,
                    action="api.request",
                    obj=token,
                    deployment=deployment,
                    after={
                        "method": request.method,
                        "path": request.path[:300],
                        "status": response.status_code,
                    },
                )
        return response


class ApiMethodNotAllowedMiddleware:
    """django-ninja answers a wrong method on a known address with Django's plain-text 405:
    a pipeline gets JSON like every other API answer, with the Allow header kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 405
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            allowed = response.get("Allow", "")
            answer = JsonResponse(
                {"detail": f"{request.method} is not allowed here; allowed: {allowed}."},
                status=405,
            )
            answer["Allow"] = allowed
            return answer
        return response
