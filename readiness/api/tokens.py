"""Personal API tokens: made, shown once, stored hashed, revoked; and who a request is."""

import hashlib
import secrets
from contextvars import ContextVar

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from readiness.api.models import ApiToken, TokenScope
from readiness.audit.services import audit_record

TOKEN_PREFIX = "rdy_"
MAX_ACTIVE_TOKENS = 20
# The token of the API request being served: audit events of the request name it.
current_token: ContextVar[ApiToken | None] = ContextVar("current_token", default=None)


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def token_create(*, user, name: str, scope: str) -> tuple[ApiToken, str]:
    """A new token for `user`: (the row, the raw token to show once and never again)."""
    name = " ".join(name.split())
    errors = {}
    if not name:
        errors["name"] = "Name the token after where it is used, e.g. “GitHub Actions deploy”."
    elif len(name) > 100:
        errors["name"] = "At most 100 characters."
    if scope not in TokenScope.values:
        errors["scope"] = f"Scope must be one of {', '.join(TokenScope.values)}."
    active = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if active.filter(name=name).exists():
        errors["name"] = "You already have an active token with this name."
    elif active.count() >= MAX_ACTIVE_TOKENS:
        errors["name"] = f"At most {MAX_ACTIVE_TOKENS} active tokens; revoke one first."
    if errors:
        raise ValidationError(errors)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=raw[: len(TOKEN_PREFIX) + 8],
        token_sha256=token_digest(raw),
        scope=scope,
        created_at=timezone.now(),
    )
    audit_record(
        actor=user, action="api_token.created", obj=token, after={"name": name, "scope": scope}
    )
    return token, raw


@transaction.atomic
def token_revoke(*, token: ApiToken, user) -> ApiToken:
    if token.user_id != user.pk:
        raise PermissionDenied("Only the token's owner may revoke it.")
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=user,
            action="api_token.revoked",
            obj=token,
            before={"revoked": False},
            after={"revoked": True, "name": token.name},
        )
    return token


def token_authenticate(raw: str) -> ApiToken | None:
    """The active token `raw` is, with its active user, or None."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_sha256=token_digest(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    # At most one write a minute per token: the time is for people, not a request log.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_label(token: ApiToken) -> str:
    return f"API token “{token.name}” ({token.prefix}…)"
