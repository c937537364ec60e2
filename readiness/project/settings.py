"""Readiness settings: everything comes from the environment (see .env.example).

With no environment at all the app runs on embedded defaults: a SQLite database and a
SQLite-backed Celery broker under DATA_DIR, and a secret key generated once and kept there.
"""

import importlib.util
import ipaddress
import os
import re
import secrets
import warnings
from datetime import timedelta
from pathlib import Path

import limits
from cryptography.utils import CryptographyDeprecationWarning
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from environs import Env, validate

# pyHanko imports cryptography's DSA key type at import time, which warns on every command,
# worker and server start; no key here is DSA (signing keys are RSA or EC), so it says nothing.
warnings.filterwarnings(
    "ignore", message="DSA is deprecated", category=CryptographyDeprecationWarning
)

BASE_DIR = Path(__file__).resolve().parents[2]

# Only the process environment is read: docker-compose hands `.env` to the containers, and
# a host checkout must not pick up production values from a `.env` lying beside it.
env = Env()


def _data_dir() -> Path:
    path = env.path("DATA_DIR", BASE_DIR / "data").resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"DATA_DIR: cannot create {path}: {exc.strerror}") from exc
    return path


def crontab_of(name: str, value: str):
    """A five-field crontab setting as Celery's schedule, or a clear error at start-up."""
    from celery.schedules import crontab

    fields = value.split()
    if len(fields) != 5:
        raise ImproperlyConfigured(
            f"{name} must have five fields (minute hour day-of-month month day-of-week), "
            f"e.g. '0 4 * * *'; got {value!r}"
        )
    try:
        return crontab(*fields)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name}: {value!r} is not a valid crontab: {exc}") from exc


def _secret_key(data_dir: Path) -> str:
    """An explicit SECRET_KEY wins; otherwise one is generated once and kept in DATA_DIR.

    Several processes may start at once on an empty DATA_DIR (gunicorn workers, the worker):
    the key is written to a private temporary file and hard-linked into place, which fails if
    another process got there first; every process then reads the one file that won.
    """
    key_file = data_dir / "secret_key"
    if not key_file.exists():
        temporary = data_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(temporary, key_file)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return key_file.read_text().strip()


DATA_DIR = _data_dir()
DEBUG = env.bool("DEBUG", False)
SECRET_KEY = env.str("SECRET_KEY", "") or _secret_key(DATA_DIR)
if not DEBUG and SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("SECRET_KEY: replace the placeholder from .env.example")
# Health checks inside the containers call /healthz on localhost; the public names come
# from ALLOWED_HOSTS.
ALLOWED_HOSTS = [*env.list("ALLOWED_HOSTS", []), "localhost", "127.0.0.1"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    # Not "ninja": an installed app is imported by every process that sets Django up, and
    # django-ninja brings pydantic, ~12 MB in each Celery worker, which serves no API. The API
    # imports it where it is routed; its docs page's files are found below instead.
    "csp",
    "django_prometheus",
    # Before signoff: axes counts a failed attempt before signoff's receivers audit it.
    "axes",
    "readiness",
    "signoff",
    "readiness.api",
]

MIDDLEWARE = [
    # First, as django-prometheus asks: it times the whole request.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "readiness.audit.middleware.AuditRequestMiddleware",
    # Inside the audit middleware: the request's address and token are still known.
    "readiness.api.middleware.ApiAuditMiddleware",
    "readiness.api.middleware.ApiMethodNotAllowedMiddleware",
    # Inside the audit middleware: a session it ends is audited with the request's address.
    "signoff.web.sessions.SessionTimeoutMiddleware",
    # django-prometheus asks to be last, and so does axes: axes only rewrites the response
    # of a locked-out login on its way out, so inside this one the metrics count the
    # lockout page that was sent, not the login page it replaced.
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "readiness.project.urls"
WSGI_APPLICATION = "readiness.project.wsgi.application"

# django-ninja is not an installed app (INSTALLED_APPS): its docs page's templates and
# swagger-ui files (`ninja/…`) are found here, located without importing the package.
NINJA_DIR = Path(importlib.util.find_spec("ninja").origin).parent
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates", NINJA_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.dj_db_url(
        "DATABASE_URL", f"sqlite:///{DATA_DIR / 'readiness.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write to the same file: WAL and immediate transactions
    # turn "database is locked" errors into short waits.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Tests that run a real worker share the database across threads: an in-memory SQLite
    # database (shared cache) locks whole tables, a file in WAL mode does not.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-readiness.sqlite3")}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# django-prometheus's wrappers of the same backends count queries, errors and connections
# for /metrics (django_db_*).
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends.", 1
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Sessions (21 CFR 11.200, 11.300): a session ends after SESSION_IDLE_TIMEOUT seconds without
# a request and SESSION_ABSOLUTE_TIMEOUT seconds after its login, whatever the activity
# (signoff.web.sessions.SessionTimeoutMiddleware, which audits the end and answers htmx
# with HX-Redirect). The stored session and its cookie never outlive the absolute limit.
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", 30 * 60, validate=validate.Range(min=60))
SESSION_ABSOLUTE_TIMEOUT = env.int(
    "SESSION_ABSOLUTE_TIMEOUT", 12 * 3600, validate=validate.Range(min=SESSION_IDLE_TIMEOUT)
)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT
# Django's database sessions, read in one SQL statement instead of through the ORM: every
# request reads its session (signoff/teams/sessions.py says why not a cached engine).
SESSION_ENGINE = "signoff.teams.sessions"
# Signing (11.200(a)(1)): the first signature of a continuous period asks for the username
# and the password, later ones the password only, while each comes within this many seconds
# of the last identification for signing; 0 asks for both every time.
SIGNING_CONTINUOUS_SESSION_IDLE = env.int(
    "SIGNING_CONTINUOUS_SESSION_IDLE",
    SESSION_IDLE_TIMEOUT,
    validate=validate.Range(min=0, max=SESSION_IDLE_TIMEOUT),
)

# Failed logins and signing passwords (django-axes): AXES_FAILURE_LIMIT failures within
# AXES_COOLOFF_MINUTES of each other lock the account name and the client address (each
# counted on its own) for AXES_COOLOFF_MINUTES; 0 keeps them locked until an administrator
# unlocks them (`manage.py axes_reset_username NAME`, or the admin's access attempts).
AUTHENTICATION_BACKENDS = [
    "signoff.teams.authentication.LockoutBackend",
    # ModelBackend, its user read in one SQL statement (as SESSION_ENGINE's session is).
    "signoff.teams.authentication.AccountBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", 5, validate=validate.Range(min=1))
_axes_cooloff_minutes = env.int("AXES_COOLOFF_MINUTES", 30, validate=validate.Range(min=0))
AXES_COOLOFF_TIME = timedelta(minutes=_axes_cooloff_minutes) if _axes_cooloff_minutes else None
# Each entry is counted on its own: `username`, `ip_address`, or `username+ip_address` (the
# pair). Behind one NAT address a whole office shares `ip_address`.
AXES_LOCKOUT_PARAMETERS = [
    entry.split("+") if "+" in entry else entry
    for entry in env.list("AXES_LOCKOUT_PARAMETERS", ["username", "ip_address"])
]
if not AXES_LOCKOUT_PARAMETERS or not all(
    set(entry if isinstance(entry, list) else [entry]) <= {"username", "ip_address"}
    for entry in AXES_LOCKOUT_PARAMETERS
):
    raise ImproperlyConfigured(
        "AXES_LOCKOUT_PARAMETERS: comma-separated username, ip_address or "
        "username+ip_address, e.g. 'username,ip_address'"
    )
# The address the audit trail records (REMOTE_ADDR), so a lockout and its events agree.
AXES_CLIENT_IP_CALLABLE = "signoff.teams.authentication.client_address"
AXES_LOCKOUT_CALLABLE = "signoff.web.sessions.lockout_response"
# The audit trail records every login; axes keeps only the failure counts.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False

# Single sign-on (OpenID Connect, mozilla-django-oidc; signoff/teams/oidc.py): off while
# OIDC_ISSUER is empty. The provider's endpoints come from its discovery document unless
# OIDC_OP_*_ENDPOINT name them. Signing under SSO re-authenticates at the provider
# (prompt=login, max_age=OIDC_SIGNING_MAX_AGE, auth_time checked) instead of a password.
OIDC_ISSUER = env.str("OIDC_ISSUER", "").strip().rstrip("/")
OIDC_RP_CLIENT_ID = env.str("OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", "")
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", "your identity provider")
OIDC_RP_SIGN_ALGO = env.str("OIDC_SIGN_ALGO", "RS256", validate=validate.OneOf(["RS256", "ES256"]))
OIDC_RP_SCOPES = env.str("OIDC_SCOPES", "openid email profile")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_LOCAL_LOGIN = env.bool("OIDC_LOCAL_LOGIN", True)
# A claim listing strings such as "team:payments" (membership of the team with that slug)
# and "team:payments:security" (and the role with that slug in it); empty: no mapping.
OIDC_TEAM_CLAIM = env.str("OIDC_TEAM_CLAIM", "").strip()
OIDC_SIGNING_MAX_AGE = env.int("OIDC_SIGNING_MAX_AGE", 300, validate=validate.Range(min=0))
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10
OIDC_CREATE_USER = True
LOGIN_REDIRECT_URL_FAILURE = "login"
if OIDC_ISSUER:
    if not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
        raise ImproperlyConfigured("OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET too.")
    from urllib.parse import urlsplit

    _issuer = urlsplit(OIDC_ISSUER)
    # Plain http only where no network carries it: a provider on this machine (the tests').
    if not (
        _issuer.scheme == "https"
        or (_issuer.scheme == "http" and _issuer.hostname in ("127.0.0.1", "localhost", "::1"))
    ):
        raise ImproperlyConfigured(
            f"OIDC_ISSUER must be an https:// URL (http only on loopback); got {OIDC_ISSUER!r}"
        )
    AUTHENTICATION_BACKENDS.append("signoff.teams.oidc.OidcBackend")
    if not OIDC_LOCAL_LOGIN:
        AUTHENTICATION_BACKENDS.remove("signoff.teams.authentication.AccountBackend")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Default date and time formats: ISO dates, 24-hour UTC (readiness/project/formats/en).
FORMAT_MODULE_PATH = ["readiness.project.formats"]
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", DATA_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static", NINJA_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = env.path("MEDIA_ROOT", DATA_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "readiness.project.static_storage.StaticFilesStorage"},
}

# HTTPS=true behind a TLS-terminating proxy turns on every transport protection that
# `check --deploy` asks for; the embedded first run on http://127.0.0.1 leaves it off.
HTTPS = env.bool("HTTPS", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", HTTPS)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp 4's dict): scripts and styles come from this site's
# static files only, never inline and never eval'd; htmx runs without 'unsafe-eval' because
# no template uses hx-on, hx-vars, js: values or event filters, and its indicator styles are
# in app.css (htmx-config in base.html). CSP_REPORT_URI, when set, receives violation reports.
_csp_report_uri = env.str("CSP_REPORT_URI", "").strip()
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "upgrade-insecure-requests": HTTPS,
        "report-uri": [_csp_report_uri] if _csp_report_uri else None,
    }
}
if OIDC_ISSUER:
    # The sign form posts here and is redirected to the provider to re-authenticate: a
    # browser holds form-action to that redirect's target too.
    _issuer_origin = f"{_issuer.scheme}://{_issuer.netloc}"
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(_issuer_origin)
# Permissions-Policy (django-permissions-policy): the app uses none of these browser powers.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}

# Without EMAIL_URL, mail goes to the log (console): the embedded default sends nothing out.
globals().update(env.dj_email_url("EMAIL_URL", "console://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "readiness@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery: Redis in production; without a server, kombu's SQLAlchemy transport on a SQLite
# file (the filesystem transport loses tasks when two workers share its folder).
REDIS_URL = env.str("REDIS_URL", "")
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", REDIS_URL or f"sqla+sqlite:///{DATA_DIR / 'celery-broker.sqlite3'}"
)
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND",
    REDIS_URL or f"db+sqlite:///{DATA_DIR / 'celery-results.sqlite3'}",
)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 10
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after each task unless
# this is set: a new PostgreSQL connection per probe. With it, a worker thread keeps its
# connection under the web's rules, CONN_MAX_AGE and health checks (readiness/celery.py).
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that enqueues after commit (notifications, probe runs) must not hang on a broker
# that is unreachable: give up within a few seconds; the change itself is already saved.
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_TIMEZONE = "UTC"
HEALTHZ_WORKER_TIMEOUT = env.float("HEALTHZ_WORKER_TIMEOUT", 3.0)
# How often every audit chain's head is committed into a checkpoint (a Merkle root); an
# idle installation writes none.
AUDIT_CHECKPOINT_INTERVAL = env.int("AUDIT_CHECKPOINT_INTERVAL", 300)
if AUDIT_CHECKPOINT_INTERVAL < 10:
    raise ImproperlyConfigured("AUDIT_CHECKPOINT_INTERVAL must be at least 10 (seconds).")
# How often the whole trail is verified (every chain, checkpoint and anchor log copy) and
# the outcome kept for /metrics; a walk of every event, so less often than checkpoints.
AUDIT_VERIFY_INTERVAL = env.int("AUDIT_VERIFY_INTERVAL", 3600, validate=validate.Range(min=60))
CELERY_BEAT_SCHEDULE = {
    "probe-runs-sweep": {"task": "readiness.probe_runs_sweep", "schedule": 60.0},
    # Sends what the broker refused after commit (records, mail, probe dispatch).
    "outbox-sweep": {"task": "readiness.outbox_sweep", "schedule": 30.0},
    "audit-checkpoint": {
        "task": "readiness.audit_checkpoint",
        "schedule": float(AUDIT_CHECKPOINT_INTERVAL),
    },
    "audit-verify": {"task": "readiness.audit_verify", "schedule": float(AUDIT_VERIFY_INTERVAL)},
}
# Re-probe approved and deployed deployments for drift: a crontab ("minute hour day-of-month
# month day-of-week", UTC), daily at 04:00 by default; empty turns the schedule off.
REPROBE_SCHEDULE = env.str("REPROBE_SCHEDULE", "0 4 * * *").strip()
if REPROBE_SCHEDULE:
    CELERY_BEAT_SCHEDULE["reprobe-watched"] = {
        "task": "readiness.reprobe_watched",
        "schedule": crontab_of("REPROBE_SCHEDULE", REPROBE_SCHEDULE),
    }

# AWS probes. PROBE_SETTINGS overrides policy thresholds as JSON, e.g.
# {"allowed_public_ports": [443], "backup_retention_days": 14}.
PROBE_SETTINGS = env.json("PROBE_SETTINGS", {})
if not isinstance(PROBE_SETTINGS, dict):
    raise ImproperlyConfigured(
        'PROBE_SETTINGS must be a JSON object, e.g. {"backup_retention_days": 14}'
    )
PROBE_RUN_TIMEOUT = env.int("PROBE_RUN_TIMEOUT", 300)
PROBE_MAX_ATTEMPTS = env.int("PROBE_MAX_ATTEMPTS", 4)
PROBE_CALL_TIMEOUT = env.float("PROBE_CALL_TIMEOUT", 10.0)
# A check (one probe in one region) holds its claim PROBE_CHECK_TIMEOUT seconds at most: an
# older claim belonged to a worker that died, and another worker takes the check over. A
# check sends no AWS request after PROBE_CHECK_REQUEST_WINDOW seconds, so that a request in
# flight (connect and read timeouts) and botocore's longest backoff still end within it.
PROBE_CHECK_TIMEOUT = env.int("PROBE_CHECK_TIMEOUT", PROBE_RUN_TIMEOUT // 4)
PROBE_CHECK_REQUEST_WINDOW = (
    PROBE_CHECK_TIMEOUT - 2 * PROBE_CALL_TIMEOUT - min(20, 2 ** max(PROBE_MAX_ATTEMPTS - 2, 0))
)
if PROBE_CHECK_REQUEST_WINDOW <= 0 or PROBE_CHECK_TIMEOUT >= PROBE_RUN_TIMEOUT:
    raise ImproperlyConfigured(
        f"PROBE_CHECK_TIMEOUT ({PROBE_CHECK_TIMEOUT} s) must be shorter than PROBE_RUN_TIMEOUT "
        f"({PROBE_RUN_TIMEOUT} s) and longer than one AWS request can take: twice "
        f"PROBE_CALL_TIMEOUT ({PROBE_CALL_TIMEOUT:g} s) plus botocore's longest backoff"
    )
# Redis gives a message a worker took but never acknowledged (the worker was killed) to
# another worker after visibility_timeout seconds: a third of a run's time limit, so a check
# comes back while its run can still finish. It holds for every task on this broker: one
# still running, or waiting for its countdown (a retry's backoff), after that long is
# delivered again, so every task must be safe to run twice, as CONVENTIONS.md asks. kombu's
# SQLAlchemy transport (the embedded broker) has no such timeout; see docs/runbook.md.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://", "sentinel://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": max(PROBE_RUN_TIMEOUT // 3, 1),
        # Look for such messages every 10 s (kombu's default is every 100 s).
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
        # A broker that accepts the connection and then says nothing would hold a request
        # (the publish after a commit) for ever: redis-py has no read timeout by default.
        # Above kombu's 1 s BRPOP, which a worker's wait for messages uses.
        "socket_timeout": 5,
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    }
# AWS request rates per account, service (botocore's service id) and region, shared by every
# worker through Redis (readiness/probes/throttle.py): a request waits for a slot instead of
# being throttled. JSON {service: "N/second"}; "default" covers the others. The defaults sit
# under AWS's documented quotas: EC2's describe calls refill 20 tokens a second, CloudWatch's
# DescribeAlarms allows 9 a second, IAM and CloudTrail are stricter still. Merged over these.
_rates = env.json("PROBE_AWS_RATES", {})
if not isinstance(_rates, dict):
    raise ImproperlyConfigured('PROBE_AWS_RATES must be a JSON object, e.g. {"ec2": "20/second"}')
PROBE_AWS_RATES = {
    "default": "20/second",
    "ec2": "20/second",
    "iam": "10/second",
    "cloudwatch": "9/second",
    "cloudtrail": "5/second",
    **_rates,
}
for _service, _rate in PROBE_AWS_RATES.items():
    try:
        limits.parse(str(_rate))
    except ValueError:
        raise ImproperlyConfigured(
            f'PROBE_AWS_RATES: the rate of {_service!r} must read like "20/second", not {_rate!r}'
        ) from None
# Where the slots are counted: Redis shares them between worker processes; without Redis
# (the embedded first run, one worker) each process counts its own.
PROBE_RATE_STORAGE = env.str("PROBE_RATE_STORAGE", REDIS_URL or "memory://")
# The IAM principal (role ARN) the workers run as: the trust policy offered for a
# deployment's probe role names it. Empty: the page explains what to fill in.
PROBE_WORKER_PRINCIPAL = env.str("PROBE_WORKER_PRINCIPAL", "").strip()
if PROBE_WORKER_PRINCIPAL and not re.fullmatch(
    r"arn:aws[a-z-]*:(iam|sts)::\d{12}:[\w+=,.@/-]+", PROBE_WORKER_PRINCIPAL
):
    raise ImproperlyConfigured(
        "PROBE_WORKER_PRINCIPAL must be an IAM ARN such as "
        f"arn:aws:iam::123456789012:role/readiness-worker; got {PROBE_WORKER_PRINCIPAL!r}"
    )

# Evidence uploaded by pipelines through the API.
EVIDENCE_MAX_BYTES = env.int("EVIDENCE_MAX_BYTES", 5 * 1024 * 1024)
EVIDENCE_COVERAGE_THRESHOLD = env.float(
    "EVIDENCE_COVERAGE_THRESHOLD", 80.0, validate=validate.Range(min=0, max=100)
)
API_PAGE_SIZE = env.int("API_PAGE_SIZE", 50, validate=validate.Range(min=1, max=500))

# Sign-off.
SIGNOFF_ONE_ROLE_PER_PERSON = env.bool("SIGNOFF_ONE_ROLE_PER_PERSON", True)
WAIVER_MAX_DAYS = env.int("WAIVER_MAX_DAYS", 90)
# Slack-compatible incoming webhook for sign-off events (empty: none).
NOTIFY_WEBHOOK_URL = env.str("NOTIFY_WEBHOOK_URL", "")
# Absolute address of the site for links in email and webhook messages.
SITE_URL = env.str("SITE_URL", "http://localhost:8000").rstrip("/")

# The signed PDF record.
RECORD_PAGE_SIZE = env.str("RECORD_PAGE_SIZE", "A4", validate=validate.OneOf(["A4", "Letter"]))
RECORD_VERIFY_MAX_BYTES = env.int("RECORD_VERIFY_MAX_BYTES", 20 * 1024 * 1024)
# The verification page answers anyone (an outside auditor has no account) unless
# RECORD_VERIFY_PUBLIC=false; uploads without a login are limited per client address
# (REMOTE_ADDR, as axes counts) to RECORD_VERIFY_RATE: "count/period", the period in s, m, h
# or d with an optional multiplier, e.g. "20/m" or "100/15m".
RECORD_VERIFY_PUBLIC = env.bool("RECORD_VERIFY_PUBLIC", True)
RECORD_VERIFY_RATE = env.str("RECORD_VERIFY_RATE", "20/m").strip()
if not re.fullmatch(r"[1-9]\d*/([1-9]\d*)?[smhd]", RECORD_VERIFY_RATE):
    raise ImproperlyConfigured(
        "RECORD_VERIFY_RATE must be count/period with the period in s, m, h or d, e.g. "
        f"'20/m' or '100/15m'; got {RECORD_VERIFY_RATE!r}"
    )
# The counts live where every web process sees them: Redis when REDIS_URL is set; without
# it (the embedded first run) in each process's memory, so each gunicorn worker counts on
# its own. django_ratelimit stays out of INSTALLED_APPS: its system check refuses that
# per-process cache outright. Short socket timeouts: an unreachable Redis must not hold a
# page (the view then lets the request through, see verify_views).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "readiness",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ratelimit"}
    ),
}
RATELIMIT_USE_CACHE = "ratelimit"
# A draft is rendered by a worker; one not ready this many seconds after it was asked for is
# reported as failed, with a retry button (a worker that died, no worker running).
RECORD_DRAFT_TIMEOUT = env.int("RECORD_DRAFT_TIMEOUT", 120, validate=validate.Range(min=10))
# PAdES signing key: PEM key + certificate files, or a PKCS#12 bundle. Without any of them,
# `manage.py create_signing_cert` writes a self-signed pair to DATA_DIR/signing/, used when
# present; with none at all, records carry their SHA-256 only.
SIGNING_KEY_FILE = env.path("SIGNING_KEY_FILE", DATA_DIR / "signing" / "key.pem")
SIGNING_CERT_FILE = env.path("SIGNING_CERT_FILE", DATA_DIR / "signing" / "cert.pem")
SIGNING_KEY_PASSWORD = env.str("SIGNING_KEY_PASSWORD", "")
SIGNING_PKCS12_FILE = env.path("SIGNING_PKCS12_FILE", None)
SIGNING_PKCS12_PASSWORD = env.str("SIGNING_PKCS12_PASSWORD", "")
# Extra trusted CA certificates (PEM files, comma-separated) for verifying records signed by
# a certificate that a CA issued; the configured signing certificate is always trusted.
SIGNING_TRUST_ROOTS = env.list("SIGNING_TRUST_ROOTS", [])
# Trusted time: an RFC 3161 time-stamping authority makes signatures PAdES B-T, so a record
# still verifies once the signing certificate has expired; SIGNING_LTV adds the validation
# data and a document timestamp (B-LTA). The TSA's root CA belongs in SIGNING_TRUST_ROOTS.
SIGNING_TSA_URL = env.str("SIGNING_TSA_URL", "").strip()
SIGNING_TSA_USERNAME = env.str("SIGNING_TSA_USERNAME", "")
SIGNING_TSA_PASSWORD = env.str("SIGNING_TSA_PASSWORD", "")
SIGNING_LTV = env.bool("SIGNING_LTV", False)
if SIGNING_TSA_URL and not re.match(r"https?://", SIGNING_TSA_URL):
    raise ImproperlyConfigured(
        f"SIGNING_TSA_URL must be an http:// or https:// URL; got {SIGNING_TSA_URL!r}"
    )
if SIGNING_LTV and not SIGNING_TSA_URL:
    # B-LT without a timestamp proves nothing about when; B-LTA's document timestamp needs it.
    raise ImproperlyConfigured(
        "SIGNING_LTV=true needs SIGNING_TSA_URL (a time-stamping authority)."
    )
if SIGNING_TSA_PASSWORD and not SIGNING_TSA_USERNAME:
    raise ImproperlyConfigured("SIGNING_TSA_PASSWORD is set but SIGNING_TSA_USERNAME is not.")

# /metrics (Prometheus) answers only a scraper that passes every guard set here: a bearer
# token (METRICS_TOKEN) and/or a client address in METRICS_ALLOWED_IPS (CIDRs, matched
# against REMOTE_ADDR: behind a proxy that is the proxy's). With neither set it is a 404:
# the metrics describe the teams' activity, so nothing is published until an operator asks.
METRICS_TOKEN = env.str("METRICS_TOKEN", "").strip()
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters long.")
try:
    METRICS_ALLOWED_IPS = [
        ipaddress.ip_network(cidr.strip(), strict=False)
        for cidr in env.list("METRICS_ALLOWED_IPS", [])
    ]
except ValueError as exc:
    raise ImproperlyConfigured(
        f"METRICS_ALLOWED_IPS must be comma-separated addresses or CIDRs, e.g. "
        f"'10.0.0.0/8,127.0.0.1': {exc}"
    ) from None

TEMPLATE_UPLOAD_MAX_BYTES = env.int("TEMPLATE_UPLOAD_MAX_BYTES", 256 * 1024)
DASHBOARD_PAGE_SIZE = env.int("DASHBOARD_PAGE_SIZE", 25)

LOG_LEVEL = env.log_level("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # WeasyPrint logs every layout step at INFO; its warnings (a missing font) matter.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        # pyHanko logs each failed check of an uploaded record with a traceback; the
        # verification page reports the verdict itself.
        "pyhanko.sign.validation": {"level": "CRITICAL"},
        "pyhanko.sign.diff_analysis": {"level": "CRITICAL"},
    },
}
# LOG_FORMAT=json: one JSON object a line (structlog, django-structlog), each with the
# request id (X-Request-ID when sane, else a new one, returned in the response), the user
# id and the deployment id of the URL; a task carries the request id that caused it, through
# the outbox row and the message's headers. The default, text, stays the plain format above.
LOG_FORMAT = env.str("LOG_FORMAT", "text", validate=validate.OneOf(["text", "json"]))
if LOG_FORMAT == "json":
    from readiness.project import logs

    LOGGING = logs.json_logging(LOGGING)
    logs.configure_structlog()
    INSTALLED_APPS.append("django_structlog")
    # The request id first (after the metrics' timer), so every response carries it;
    # django-structlog's inside authentication, which it reads the user id from.
    MIDDLEWARE.insert(1, "readiness.project.logs.RequestIdMiddleware")
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "django_structlog.middlewares.RequestMiddleware",
    )
    DJANGO_STRUCTLOG_CELERY_ENABLED = True
    # RequestIdMiddleware has replaced an X-Request-ID that is not sane by then.
    DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True
    # django-ipware would believe X-Forwarded-For from anyone; the address logged is the
    # one the audit trail and axes use (RequestIdMiddleware binds REMOTE_ADDR).
    DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False
