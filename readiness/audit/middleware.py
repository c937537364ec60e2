from readiness.audit.services import current_ip, current_via


class AuditRequestMiddleware:
    """Makes the request's client address available to audit_record."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_ip.set(request.META.get("REMOTE_ADDR") or None)
        via = current_via.set("")
        try:
            return self.get_response(request)
        finally:
            current_via.reset(via)
            current_ip.reset(token)
