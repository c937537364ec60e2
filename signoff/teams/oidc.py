"""Single sign-on through an OpenID provider, and re-authentication there for signing.

Why mozilla-django-oidc rather than django-allauth: it is only an OpenID Connect relying
party (the code flow with state, nonce and PKCE, the ID token's signature checked against
the provider's keys) configured by OIDC_* settings, with a backend and two views meant to be
subclassed; allauth brings its own account model, email confirmation, its own login pages
and templates, and a provider registry kept in the database, all beside the login, session
and lockout rules this app already audits (signoff.teams.authentication).

- The account is found by the provider's `iss` and `sub` (OidcIdentity), never by email or
  name: an address that moves to another person at the IdP does not move an account. A new
  subject gets a new account, named after `preferred_username` when that name is free (an
  existing local account is never taken over) with an unusable password.
- Names and email come from the claims at every login; OIDC_TEAM_CLAIM, when set, makes the
  provider authoritative for team memberships and roles ("team:<team>" and
  "team:<team>:<role>", by slug; unknown teams and roles are ignored, never created). Every
  change is an audit event, by the provider (no actor).
- mozilla-django-oidc checks the ID token's signature and nonce; `OidcBackend.verify_token`
  adds the issuer, the audience and that the userinfo belongs to the same subject.
- Signing (`step_up_identity`): the ID token of a fresh authentication, asked for with
  prompt=login and max_age, must name the signer's own subject and an `auth_time` no
  earlier than the moment the signer asked to sign; only then does
  signoff.lifecycle.services.signoff_record accept the identity in place of a password.
"""

import logging
import re
import threading
import time
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import IntegrityError, transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from readiness.audit.services import audit_record
from readiness.checklists.models import Team
from signoff.teams import authentication
from signoff.teams.models import OidcIdentity, Role, RoleMembership

logger = logging.getLogger(__name__)

BACKEND = "signoff.teams.oidc.OidcBackend"
# Session key: the provider and subject the session logged in as (absent: a local login).
SSO_SESSION = "readiness_oidc"
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
TEAM_ENTRY = re.compile(r"team:(?P<team>[-\w]+)(?::(?P<role>[-\w]+))?")
# Seconds of clock difference tolerated between this server and the provider's.
CLOCK_SKEW = 5

_discovered: dict[str, dict] = {}
_discovery_lock = threading.Lock()


def enabled() -> bool:
    return bool(getattr(settings, "OIDC_ISSUER", ""))


def provider_name() -> str:
    return settings.OIDC_PROVIDER_NAME


def provider_metadata() -> dict:
    """The provider's discovery document, fetched once per process and issuer."""
    issuer = settings.OIDC_ISSUER
    with _discovery_lock:
        if issuer not in _discovered:
            answer = requests.get(
                f"{issuer}/.well-known/openid-configuration", timeout=settings.OIDC_TIMEOUT
            )
            answer.raise_for_status()
            document = answer.json()
            if document.get("issuer", "").rstrip("/") != issuer:
                # OpenID Connect Discovery 1.0 §4.3: a mismatch means a misconfiguration or
                # an impostor; either way its tokens would fail the issuer check.
                raise ImproperlyConfigured(
                    f"OIDC_ISSUER is {issuer!r} but its discovery document names "
                    f"{document.get('issuer')!r}."
                )
            _discovered[issuer] = document
        return _discovered[issuer]


def setting(name: str, *default):
    """mozilla-django-oidc's settings, the provider's endpoints filled from discovery."""
    if name in ENDPOINTS and not getattr(settings, name, ""):
        return provider_metadata()[ENDPOINTS[name]]
    return import_from_settings(name, *default)


def _clean_claims(claims: dict) -> dict:
    return {key: claims[key] for key in ("email", "given_name", "family_name") if key in claims}


class OidcBackend(OIDCAuthenticationBackend):
    """Logs in the account of the ID token's subject, provisioning it at its first login."""

    get_settings = staticmethod(setting)

    def __init__(self, *args, **kwargs):
        # Not the parent's __init__: it reads the provider's endpoints, and Django makes a
        # backend for every request of a logged-in user (get_user), so a provider that is
        # down at a web process's start would fail every page of every SSO user. The
        # endpoints are looked up (discovery) only when a login or a signing needs them.
        self.UserModel = get_user_model()

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: setting("OIDC_OP_TOKEN_ENDPOINT"))
    OIDC_OP_USER_ENDPOINT = property(lambda self: setting("OIDC_OP_USER_ENDPOINT"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: setting("OIDC_OP_JWKS_ENDPOINT"))
    OIDC_RP_CLIENT_ID = property(lambda self: settings.OIDC_RP_CLIENT_ID)
    OIDC_RP_CLIENT_SECRET = property(lambda self: settings.OIDC_RP_CLIENT_SECRET)
    OIDC_RP_SIGN_ALGO = property(lambda self: settings.OIDC_RP_SIGN_ALGO)
    # The provider's keys come from its JWKS endpoint, never from a configured key.
    OIDC_RP_IDP_SIGN_KEY = None

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        id_token_check(payload)
        return payload

    def get_user(self, user_id):
        """The user of an SSO session, read as AccountBackend reads a local one (one SQL
        statement, no ORM query to build on every request). An inactive account is no user,
        as for ModelBackend: mozilla-django-oidc's get_user left a deactivated account's SSO
        sessions logged in until they expired."""
        user = authentication.account_by_id(user_id)
        return user if user is not None and user.is_active else None

    def get_userinfo(self, access_token, id_token, payload):
        claims = super().get_userinfo(access_token, id_token, payload)
        # OpenID Connect Core §5.3.2: userinfo for another subject must not be used.
        if claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo's subject is not the ID token's.")
        return {**payload, **claims, "iss": payload["iss"]}

    def verify_claims(self, claims):
        return bool(claims.get("sub"))

    def describe_user_by_claims(self, claims):
        return f"subject {claims.get('sub')} at {claims.get('iss')}"

    def filter_users_by_claims(self, claims):
        return get_user_model().objects.filter(
            oidc_identities__issuer=claims["iss"], oidc_identities__subject=claims["sub"]
        )

    def create_user(self, claims):
        return account_provision(claims=claims)

    def update_user(self, user, claims):
        account_update(user=user, claims=claims)
        return user

    def authenticate(self, request, **kwargs):
        try:
            user = super().authenticate(request, **kwargs)
        except (SuspiciousOperation, requests.RequestException) as error:
            # A failed login like a wrong password (audited, counted by axes), not a crash.
            logger.warning("OIDC login refused: %s", error)
            return None
        if user is not None and not user.is_active:
            # As ModelBackend: Django then reports a failed login (audited, counted by axes).
            return None
        if user is not None and request is not None:
            # The callback view marks the session after login() has cycled it.
            request.oidc_identity = {
                "issuer": settings.OIDC_ISSUER,
                "sub": user.oidc_identities.get(issuer=settings.OIDC_ISSUER).subject,
                "name": provider_name(),
            }
        return user


def id_token_check(payload: dict) -> None:
    """What mozilla-django-oidc leaves to the relying party (OpenID Connect Core §3.1.3.7):
    the issuer is ours, the token is for us, and it names a subject."""
    if str(payload.get("iss", "")).rstrip("/") != settings.OIDC_ISSUER:
        raise SuspiciousOperation("The ID token comes from another issuer.")
    audience = payload.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if settings.OIDC_RP_CLIENT_ID not in audiences:
        raise SuspiciousOperation("The ID token is not meant for this client.")
    if len(audiences) > 1 and payload.get("azp") != settings.OIDC_RP_CLIENT_ID:
        raise SuspiciousOperation("The ID token was issued to another party.")
    if not payload.get("sub"):
        raise SuspiciousOperation("The ID token names no subject.")
    # PyJWT checks exp and iat only when present; an ID token must carry both.
    if not isinstance(payload.get("exp"), int | float) or not isinstance(
        payload.get("iat"), int | float
    ):
        raise SuspiciousOperation("The ID token has no expiry or issue time.")


def _free_username(claims: dict) -> str:
    User = get_user_model()
    length = User._meta.get_field(User.USERNAME_FIELD).max_length
    wanted = (
        claims.get("preferred_username")
        or str(claims.get("email", "")).split("@")[0]
        or f"sso-{claims['sub']}"
    )
    wanted = re.sub(r"[^\w.@+-]", "-", str(wanted))[: length - 9] or "sso"
    candidate, counter = wanted, 1
    while User.objects.filter(**{User.USERNAME_FIELD: candidate}).exists():
        counter += 1
        candidate = f"{wanted}-{counter}"
    return candidate


@transaction.atomic
def account_provision(*, claims: dict):
    """The first login of a subject: its account, audited like an administrator's
    user_create, and its memberships from the team claim."""
    User = get_user_model()
    profile = _clean_claims(claims)
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                _free_username(claims),
                email=profile.get("email", ""),
                first_name=profile.get("given_name", "")[:150],
                last_name=profile.get("family_name", "")[:150],
            )
            OidcIdentity.objects.create(issuer=claims["iss"], subject=claims["sub"], user=user)
    except IntegrityError as error:
        # The same subject's first login in two tabs at once: one account wins.
        raise SuspiciousOperation("This subject's account was created at the same time.") from error
    audit_record(
        actor=None,
        action="user.created",
        obj=user,
        after={
            "username": user.get_username(),
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "is_active": user.is_active,
            "usable_password": False,
            "by": "single sign-on",
            "issuer": claims["iss"],
            "sub": claims["sub"],
        },
    )
    memberships_sync(user=user, claims=claims)
    return user


@transaction.atomic
def account_update(*, user, claims: dict) -> None:
    """A later login: names and email follow the provider (they print on signatures, so a
    change is audited), and so do memberships when the team claim is configured."""
    profile = _clean_claims(claims)
    wanted = {
        "email": profile.get("email", user.email),
        "first_name": profile.get("given_name", user.first_name)[:150],
        "last_name": profile.get("family_name", user.last_name)[:150],
    }
    changed = {name: value for name, value in wanted.items() if getattr(user, name) != value}
    if changed:
        before = {name: getattr(user, name) for name in changed}
        for name, value in changed.items():
            setattr(user, name, value)
        user.save(update_fields=list(changed))
        audit_record(
            actor=None,
            action="user.changed",
            obj=user,
            before={"user": user.get_username(), **before},
            after={"user": user.get_username(), **changed, "by": "single sign-on"},
        )
    memberships_sync(user=user, claims=claims)


def _claimed(claims: dict) -> tuple[set[str], set[tuple[str, str]]]:
    values = claims.get(settings.OIDC_TEAM_CLAIM) or []
    if isinstance(values, str):
        values = values.split()
    teams, roles = set(), set()
    for value in values:
        match = TEAM_ENTRY.fullmatch(str(value))
        if match is None:
            continue
        teams.add(match["team"])
        if match["role"]:
            roles.add((match["team"], match["role"]))
    return teams, roles


def memberships_sync(*, user, claims: dict) -> None:
    """Team memberships and roles as the team claim lists them (nothing without the
    setting): added and withdrawn, each change an audit event naming the provider."""
    if not settings.OIDC_TEAM_CLAIM:
        return
    team_slugs, role_pairs = _claimed(claims)
    name = user.get_username()
    by = {"by": "single sign-on", "issuer": claims["iss"]}
    teams = {team.slug: team for team in Team.objects.filter(slug__in=team_slugs)}
    roles = {role.slug: role for role in Role.objects.filter(slug__in={r for _, r in role_pairs})}
    unknown = (team_slugs - set(teams)) | {r for _, r in role_pairs} - set(roles)
    if unknown:
        logger.warning("OIDC team claim names unknown teams or roles: %s", sorted(unknown))
    held = {
        (m.team.slug, m.role.slug): m
        for m in RoleMembership.objects.filter(user=user).select_related("team", "role")
    }
    wanted_roles = {pair for pair in role_pairs if pair[0] in teams and pair[1] in roles}
    for pair in sorted(set(held) - wanted_roles):
        membership = held[pair]
        audit_record(
            actor=None,
            action="membership.removed",
            obj=membership,
            before={"team": pair[0], "user": name, "role": membership.role.name},
            after=by,
        )
        membership.delete()
    member_of = {team.slug: team for team in user.teams.all()}
    for slug in sorted(set(member_of) - set(teams)):
        member_of[slug].members.remove(user)
        audit_record(
            actor=None,
            action="team.member_removed",
            obj=member_of[slug],
            before={"team": slug, "member": name},
            after=by,
        )
    for slug in sorted(set(teams) - set(member_of)):
        teams[slug].members.add(user)
        audit_record(
            actor=None,
            action="team.member_added",
            obj=teams[slug],
            after={"team": slug, "member": name, **by},
        )
    for team_slug, role_slug in sorted(wanted_roles - set(held)):
        membership = RoleMembership.objects.create(
            team=teams[team_slug], user=user, role=roles[role_slug]
        )
        audit_record(
            actor=None,
            action="membership.added",
            obj=membership,
            after={"team": team_slug, "user": name, "role": roles[role_slug].name, **by},
        )


def session_mark(session, identity: dict) -> None:
    session[SSO_SESSION] = identity


def session_identity(request) -> dict | None:
    """The provider and subject this session logged in as; None for a local login or
    when SSO is off."""
    session = getattr(request, "session", None)
    if not enabled() or session is None:
        return None
    identity = session.get(SSO_SESSION)
    if not isinstance(identity, dict) or identity.get("issuer") != settings.OIDC_ISSUER:
        return None
    return identity


# Signing: re-authentication at the provider.

_STEP_UP = object()


class StepUpRefused(Exception):
    """The re-authentication does not identify the signer now; `failure` names why."""

    def __init__(self, failure: str, message: str) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message


@dataclass(frozen=True)
class VerifiedIdentity:
    """A signer identified by the provider for this signature: made only by
    `step_up_identity`, after the checks, so the signing service can trust it."""

    issuer: str
    subject: str
    auth_time: int
    _proof: object = field(repr=False, compare=False, default=None)

    @property
    def genuine(self) -> bool:
        return self._proof is _STEP_UP

    def facts(self) -> dict:
        return {
            "method": "oidc",
            "issuer": self.issuer,
            "sub": self.subject,
            "auth_time": self.auth_time,
        }


def step_up_identity(*, payload: dict, user, started_at: float) -> VerifiedIdentity:
    """The identity a verified ID token (signature, nonce, issuer, audience already
    checked) gives for a signature asked for at `started_at`: the signer's own subject,
    authenticated at the provider after that moment and within OIDC_SIGNING_MAX_AGE."""
    identity = OidcIdentity.objects.filter(
        issuer=settings.OIDC_ISSUER, subject=str(payload.get("sub", "")), user=user
    ).first()
    if identity is None:
        raise StepUpRefused(
            "wrong_subject",
            f"{provider_name()} identified someone else, not you: nothing was signed. "
            "Sign in there as yourself to sign.",
        )
    auth_time = payload.get("auth_time")
    if not isinstance(auth_time, int | float):
        raise StepUpRefused(
            "no_auth_time",
            f"{provider_name()} did not say when you authenticated: nothing was signed.",
        )
    now = time.time()
    # auth_time has whole seconds: a login in the second the signing began counts. No
    # tolerance before that second: a provider clock behind ours refuses (try again), it
    # never lets an earlier sign-in pass.
    fresh = int(auth_time) >= int(started_at) and (
        now - auth_time <= settings.OIDC_SIGNING_MAX_AGE + CLOCK_SKEW
    )
    if not fresh or auth_time > now + CLOCK_SKEW:
        raise StepUpRefused(
            "stale_authentication",
            f"{provider_name()} did not ask for your password again (it reused a sign-in "
            f"from {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(auth_time))}): "
            "nothing was signed. Try again and enter your credentials there.",
        )
    return VerifiedIdentity(
        issuer=identity.issuer, subject=identity.subject, auth_time=int(auth_time), _proof=_STEP_UP
    )
