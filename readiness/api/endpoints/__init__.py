"""/api/v1/: what a pipeline needs — deployments, their checklist, probe runs, evidence and
the gate — over personal tokens (Authorization: Bearer rdy_…). OpenAPI at
/api/v1/openapi.json, docs at /api/v1/docs.

Every answer is JSON. Bad input is a 400 with a precise `detail`, never a 5xx; another
team's deployment does not exist (404); a missing or wrong token is a 401, not a login page.
"""

import json

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest
from django.shortcuts import render
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from readiness.api import tokens
from readiness.api.endpoints import (
    aws_accounts,
    checklist,
    deployments,
    evidence,
    gate,
    probe_runs,
)
from readiness.api.models import ApiToken
from readiness.audit.services import current_via
from readiness.checklists.services import RecordClosed
from readiness.probe_runs.services import ProbeRunClosed

API_VERSION = "1"


class TokenAuth(HttpBearer):
    """A personal token; the request then acts as its user, and audit events name it."""

    openapi_description = "A personal API token from your profile page: `Bearer rdy_…`."

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = tokens.token_authenticate(token)
        if found is None:
            return None
        request.user = found.user
        request.api_token = found
        # Reset by signoff.audit.AuditRequestMiddleware at the end of the request.
        current_via.set(tokens.token_label(found))
        return found


# The error answers every operation can give, beside what each declares itself: the
# handlers below turn bad input, a missing token and another team's deployment into these.
COMMON_ERRORS = {"400": "Bad Request", "401": "Unauthorized"}
DEPLOYMENT_ERRORS = {"404": "Not Found"}


class ReadinessApi(NinjaAPI):
    def get_openapi_operation_id(self, operation) -> str:
        # The ids clients were generated with, from when the endpoints were one module
        # `api.endpoints`: the schema must not change because the code moved.
        return f"api_endpoints_{operation.view_func.__name__}"

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, operations in schema["paths"].items():
            errors = {**COMMON_ERRORS, **(DEPLOYMENT_ERRORS if "{deployment_id}" in path else {})}
            for operation in operations.values():
                responses = operation["responses"]
                for status, description in errors.items():
                    # django-ninja keys an operation's own answers by int: a "400" beside
                    # its 400 is one JSON key written twice, which Swagger UI refuses.
                    if status not in responses and int(status) not in responses:
                        responses[status] = {"description": description, "content": error}
        return schema


class BodyParser(Parser):
    """JSON bodies; an empty form (what many HTTP clients send for a POST with no data) is
    an empty object, so an operation whose body is optional (starting a probe run) takes it
    as no body rather than failing to parse it."""

    FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")

    def parse_body(self, request: HttpRequest):
        if request.content_type in self.FORM_TYPES and not request.POST and not request.FILES:
            return {}
        return super().parse_body(request)


class LocalSwagger(Swagger):
    """The docs page from templates/ninja/swagger.html and the app's own static files.

    django-ninja serves them so only when "ninja" is an installed app, and otherwise falls
    back to a page loading swagger-ui from a CDN; it is not installed (settings: it would be
    imported by every worker), so this renders the page as it would then."""

    def render_page(self, request, api, **kwargs):
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        context = {
            "swagger_settings": json.dumps(self.settings, indent=1),
            "api": api,
            # As django-ninja decides: a page whose API authenticates by cookie posts a token.
            "add_csrf": any(getattr(auth, "csrf", False) for auth in api.auth or ()),
        }
        return render(request, self.template, context)


api = ReadinessApi(
    parser=BodyParser(),
    title="Readiness API",
    version=API_VERSION,
    description=(
        "Production-readiness checklists, sign-offs and the deployment gate for pipelines. "
        "Authenticate with a personal token (profile page → API tokens)."
    ),
    urls_namespace="api-v1",
    auth=TokenAuth(),
    docs=LocalSwagger(settings={"deepLinking": False}),
    docs_url="/docs",
    openapi_url="/openapi.json",
)


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    response = api.create_response(
        request,
        {
            "detail": "Missing, unknown or revoked API token: send "
            "`Authorization: Bearer <token>` with a token from your profile page."
        },
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="readiness"'
    return response


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc):
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",))
        errors.setdefault(where or "request", []).append(str(error.get("msg", "invalid")))
    detail = "; ".join(f"{where}: {', '.join(msgs)}" for where, msgs in errors.items())
    return api.create_response(
        request, {"detail": f"Invalid request: {detail}", "errors": errors}, status=400
    )


@api.exception_handler(DjangoValidationError)
def _refused(request, exc):
    errors = exc.message_dict if hasattr(exc, "error_dict") else None
    detail = " ".join(exc.messages)
    return api.create_response(request, {"detail": detail, "errors": errors}, status=400)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Not allowed."}, status=403)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, {"detail": "Not found."}, status=404)


@api.exception_handler(RecordClosed)
@api.exception_handler(ProbeRunClosed)
def _closed(request, exc):
    return api.create_response(request, {"detail": str(exc)}, status=409)


for module in (deployments, aws_accounts, checklist, probe_runs, evidence, gate):
    api.add_router("", module.router)
