from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from readiness.api import token_views
from readiness.api.endpoints import api


# Exempt: it changes nothing, and a pipeline's POST to a wrong address (no CSRF cookie, as
# every API call) must learn that the address is wrong, not get the site's CSRF page.
@csrf_exempt
@login_not_required
def api_not_found(request, rest: str = ""):
    """Any other address under /api/ is a JSON 404, not the site's HTML page."""
    return JsonResponse(
        {"detail": "No such API endpoint; see /api/v1/docs for the list."}, status=404
    )


# The API answers 401 in JSON itself: the site's login redirect must not reach it.
api_patterns, api_app, api_namespace = api.urls
for pattern in api_patterns:
    login_not_required(pattern.callback)
    # The schema and its docs page only read: a write to them is a JSON 405 (through
    # ApiMethodNotAllowedMiddleware) like any API address, not the site's HTML CSRF page.
    # Being read-only, they have nothing for CSRF to protect.
    if pattern.name in ("openapi-json", "openapi-view"):
        pattern.callback = login_not_required(csrf_exempt(require_safe(pattern.callback)))
# /api/v1/ itself is django-ninja's root, an HTML 404 by default: JSON like the rest. The
# name stays, since ninja reverses it for the schema's paths.
api_patterns = [
    path("", api_not_found, name="api-root") if pattern.name == "api-root" else pattern
    for pattern in api_patterns
]


urlpatterns = [
    path("api/v1/", (api_patterns, api_app, api_namespace)),
    # /api itself too: a JSON 404, not a redirect to /api/.
    re_path(r"^api(?:/(?P<rest>.*))?$", api_not_found),
    path("profile/tokens/", token_views.token_list, name="token_list"),
    path("profile/tokens/<int:pk>/revoke/", token_views.token_revoke, name="token_revoke"),
]
