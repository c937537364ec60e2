"""Who is at the keyboard: logins, sessions, identification for signing, failed attempts.

21 CFR Part 11 asks that a signature take both identity components (user ID and password)
at the first signing of a continuous session and at least the password later on
(11.200(a)(1)), and that attempts at unauthorized use be detected and reported (11.300(d)).

- A session ends after SESSION_IDLE_TIMEOUT seconds without a request and
  SESSION_ABSOLUTE_TIMEOUT seconds after its login (`session_expiry`, called by
  signoff.web.sessions.SessionTimeoutMiddleware).
- Signing asks for the username too unless the same user identified for signing in this
  session less than SIGNING_CONTINUOUS_SESSION_IDLE seconds ago (`signer_identify`).
- The user of every logged-in request is read in one SQL statement (`AccountBackend`), as its
  session is (signoff.teams.sessions): the ORM took more CPU to build that read than to run it.
- django-axes counts failed logins and signing passwords per account name and per address
  and locks them out (`LockoutBackend`); signing authenticates through
  django.contrib.auth.authenticate, so a signing failure counts like a login failure.
- Every login, logout (its reason: the user, the idle or the absolute limit), failed login,
  lockout and unlock is an audit event on the installation's chain, written here; the
  receivers in signoff/teams/receivers.py call these functions from Django's and axes'
  signals. A failed signing is audited on its deployment's chain by
  signoff.lifecycle.services.signoff_record, which knows the deployment.
"""

import functools
import time
from contextvars import ContextVar
from dataclasses import dataclass

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone

from readiness.audit.services import audit_record
from readiness.sql import column

# Session keys (seconds since the epoch): when the user logged in, when the session last saw
# a request, and who identified for signing when (a dict: the user's id and the time).
LOGIN_AT = "readiness_login_at"
SEEN_AT = "readiness_seen_at"
SIGNING_IDENTIFIED = "readiness_signing_identified"
# The last request's time is written to the session at most this often (a write per request
# would cost an UPDATE for every page and htmx poll); the idle limit is this much coarser.
SEEN_RESOLUTION = 60
# The `purpose` credential that tells a signing password from a login in the auth signals.
SIGNING = "signing"
# Who is clearing access attempts (the admin sets it; `manage.py axes_reset` has no user).
clearing_actor: ContextVar = ContextVar("clearing_actor", default=None)


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for authentications that come with a request.

    Without a request there is no client to count or hold (a management command, a shell,
    the test client's login): axes' own backend raises there; this one lets the next
    backend decide. Every web path (the login pages, signing) passes its request.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class AccountBackend(ModelBackend):
    """Django's ModelBackend, the user of a session read by `account_by_id`: an inactive
    account, or one no longer there, is no user (the request goes on anonymous)."""

    def get_user(self, user_id):
        user = account_by_id(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


def account_by_id(user_id):
    """The user with this primary key, or None: the read `User.objects.get(pk=…)` makes, as
    an ordinary instance (`Model.from_db`, the ORM's conversions of each column's value), in
    a statement written once per process. Nothing is cached: each call reads the row, so a
    deactivated account or a changed password is seen by the next request in every worker."""
    User = get_user_model()
    sql, attnames, converters = _account_read()
    with connection.cursor() as cursor:
        cursor.execute(sql, [User._meta.pk.get_db_prep_value(user_id, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, expression, functions in converters:
        for convert in functions:
            values[index] = convert(values[index], expression, connection)
    return User.from_db(connection.alias, attnames, values)


@functools.cache
def _account_read():
    """The statement, the fields' attribute names, and per column needing them the
    converters the ORM's compiler applies (SQLite's booleans and datetimes)."""
    meta = get_user_model()._meta
    fields = meta.concrete_fields
    converters = []
    for index, field in enumerate(fields):
        expression = field.get_col(meta.db_table)
        functions = connection.ops.get_db_converters(expression) + expression.get_db_converters(
            connection
        )
        if functions:
            converters.append((index, expression, functions))
    sql = (
        f"SELECT {', '.join(column(meta, field.name) for field in fields)}"
        f" FROM {connection.ops.quote_name(meta.db_table)} WHERE {column(meta, meta.pk.name)} = %s"
    )
    return sql, [field.attname for field in fields], converters


def client_address(request) -> str | None:
    """The address axes counts: the one the audit trail records (AuditRequestMiddleware)."""
    return request.META.get("REMOTE_ADDR") or None


def lockout_message() -> str:
    cooloff = settings.AXES_COOLOFF_TIME
    until = (
        f"for {int(cooloff.total_seconds() // 60)} minutes after the last attempt"
        if cooloff
        else "until an administrator unlocks it"
    )
    return (
        f"Too many failed attempts ({settings.AXES_FAILURE_LIMIT}): logging in and signing "
        f"are locked for this account or address {until}. An administrator can unlock it "
        "sooner."
    )


# Sessions.


def _now() -> float:
    return time.time()


def session_start(session, *, user) -> None:
    """A new login: its clock starts, and its first signature will ask for the username."""
    now = _now()
    session[LOGIN_AT] = now
    session[SEEN_AT] = now
    session.pop(SIGNING_IDENTIFIED, None)


def session_expiry(session) -> str | None:
    """Why an authenticated session has ended ("idle" or "absolute"), or None when it goes
    on: then its last-seen time moves (at most once per SEEN_RESOLUTION seconds)."""
    now = _now()
    login_at = session.get(LOGIN_AT)
    seen_at = session.get(SEEN_AT)
    if login_at is None:
        # A session from before these limits: its clock starts now.
        session[LOGIN_AT] = login_at = now
    if now - login_at > settings.SESSION_ABSOLUTE_TIMEOUT:
        return "absolute"
    if seen_at is not None and now - seen_at > settings.SESSION_IDLE_TIMEOUT:
        return "idle"
    if seen_at is None or now - seen_at >= SEEN_RESOLUTION:
        session[SEEN_AT] = now
    return None


def signing_identification_required(request, user) -> bool:
    """Whether the next signature must take the username as well as the password: the first
    of a session, or the first after SIGNING_CONTINUOUS_SESSION_IDLE seconds without an
    identification for signing. Without a session (code calling the service) always."""
    session = getattr(request, "session", None)
    if session is None:
        return True
    identified = session.get(SIGNING_IDENTIFIED)
    if not isinstance(identified, dict) or identified.get("user") != user.pk:
        return True
    return _now() - identified.get("at", 0) >= settings.SIGNING_CONTINUOUS_SESSION_IDLE


class SigningRefused(Exception):
    """The signer's identity was not confirmed: `failure` says why (wrong_username,
    wrong_password, locked_out), `errors` what the form shows."""

    def __init__(self, failure: str, errors: dict) -> None:
        super().__init__(failure)
        self.failure = failure
        self.errors = errors


def signer_identify(*, request, user, username: str | None, password: str) -> None:
    """Confirm that `user` is signing now: the password always, the username too when
    `signing_identification_required`. A wrong username or password is a failed attempt,
    counted by axes toward the lockout of the account and the address; a locked-out account
    cannot sign even with the right password. Raises ValidationError for a missing
    component (nothing was attempted), SigningRefused for a failed attempt."""
    if signing_identification_required(request, user) and not username:
        raise ValidationError(
            {"username": "Enter your username: the first signature of a session needs both."}
        )
    if not password:
        raise ValidationError({"password": "Enter your password to sign."})
    name = user.get_username()
    if username and username != name:
        # Not tried as another account's credentials: a failure of this signer's. The same
        # signal authenticate() sends, so axes counts it and may lock the account out.
        if request is not None:
            user_login_failed.send(
                sender=__name__,
                credentials={"username": name, "purpose": SIGNING},
                request=request,
            )
        raise _refused(request, "wrong_username")
    if authenticate(request, username=name, password=password, purpose=SIGNING) != user:
        raise _refused(request, "wrong_password")
    session = getattr(request, "session", None)
    if session is not None:
        session[SIGNING_IDENTIFIED] = {"user": user.pk, "at": _now()}


def _refused(request, failure: str) -> SigningRefused:
    if getattr(request, "axes_locked_out", False):
        return SigningRefused(
            "locked_out", {"__all__": [lockout_message() + " Nothing was signed."]}
        )
    if failure == "wrong_username":
        return SigningRefused(
            failure, {"username": ["That is not your username. Nothing was signed."]}
        )
    return SigningRefused(failure, {"password": ["That is not your password. Nothing was signed."]})


# Audit events of the installation's chain.


@dataclass(frozen=True)
class UnknownAccount:
    """What a failed login names when no account has that name (the name is in `after`)."""

    pk: str = "unknown"


def _account(username: str | None):
    if not username:
        return None
    return get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()


def _attempt_state(request) -> dict:
    failures = getattr(request, "axes_failures_since_start", None)
    return {
        "failures": failures,
        "limit": settings.AXES_FAILURE_LIMIT,
        "locked_out": bool(getattr(request, "axes_locked_out", False)),
    }


@transaction.atomic
def login_record(*, request, user) -> None:
    """A login: audited, and the session's clocks start."""
    if request is not None and hasattr(request, "session"):
        session_start(request.session, user=user)
    audit_record(actor=user, action="user.logged_in", obj=user, after={"user": user.get_username()})


@transaction.atomic
def logout_record(*, request, user) -> None:
    """A logout: by the user, or the end of a session at its idle or absolute limit (the
    middleware sets `request.session_end_reason`)."""
    if user is None or not getattr(user, "pk", None):
        return
    reason = getattr(request, "session_end_reason", "") or "logout"
    audit_record(
        actor=user,
        action="user.logged_out",
        obj=user,
        after={"user": user.get_username(), "reason": reason},
    )


@transaction.atomic
def login_failed_record(*, request, credentials: dict) -> None:
    """A failed login (a wrong password, an unknown name, an inactive or locked-out
    account). Signing failures are audited on their deployment's chain instead."""
    if credentials.get("purpose") == SIGNING:
        return
    username = str(credentials.get(get_user_model().USERNAME_FIELD) or "")[:150]
    account = _account(username)
    audit_record(
        actor=None,
        action="user.login_failed",
        obj=account or UnknownAccount(),
        after={"username": username, **(_attempt_state(request) if request else {})},
    )


@transaction.atomic
def lockout_record(*, request, username: str | None, ip_address: str | None):
    """A lockout by axes; returns its audit event, or None when the account or address was
    locked already (axes reports a lockout again at every refused attempt): one event and
    one notification per lockout."""
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is not None and failures != settings.AXES_FAILURE_LIMIT:
        return None
    if failures is None and getattr(request, "axes_locked_out", False):
        return None  # refused while locked (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT off)
    account = _account(username)
    cooloff = settings.AXES_COOLOFF_TIME
    return audit_record(
        actor=None,
        action="user.locked_out",
        obj=account or UnknownAccount(),
        after={
            "username": username or "",
            "ip_address": ip_address,
            "failures": failures,
            "limit": settings.AXES_FAILURE_LIMIT,
            "cooloff_minutes": int(cooloff.total_seconds() // 60) if cooloff else None,
        },
    )


@transaction.atomic
def access_attempt_cleared(*, attempt) -> None:
    """An administrator cleared failed attempts (`manage.py axes_reset…`, the admin), which
    unlocks the name and address if they were locked. Attempts that axes drops because their
    cool-off ran out are not audited: nothing was decided."""
    cooloff = settings.AXES_COOLOFF_TIME
    if cooloff is not None and attempt.attempt_time <= timezone.now() - cooloff:
        return
    actor = clearing_actor.get()
    account = _account(attempt.username)
    audit_record(
        actor=actor,
        action="user.unlocked",
        obj=account or UnknownAccount(),
        after={
            "username": attempt.username or "",
            "ip_address": attempt.ip_address,
            "failures": attempt.failures_since_start,
            "limit": settings.AXES_FAILURE_LIMIT,
            "by": "the admin" if actor is not None else "manage.py axes_reset (or a shell)",
        },
    )


@transaction.atomic
def access_attempts_clear(*, attempts, actor) -> int:
    """An administrator clears failed attempts (unlocking their name and address): each one
    deleted is an audit event naming the administrator. Returns how many were cleared."""
    if not (
        getattr(actor, "is_authenticated", False) and actor.has_perm("axes.delete_accessattempt")
    ):
        raise PermissionDenied("Clearing failed attempts needs “axes.delete_accessattempt”.")
    token = clearing_actor.set(actor)
    try:
        count = 0
        for attempt in attempts:
            attempt.delete()
            count += 1
    finally:
        clearing_actor.reset(token)
    return count
