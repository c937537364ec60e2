"""The access matrix: every URL pattern the site serves, for four principals.

Like netbox's ViewTestCases, but generated from the URLconf: the resolver is walked (every
include()d pattern, the django-ninja API under api/v1/), and each pattern must have a row in
MATRIX saying how to reach it and what each principal gets:

- anonymous: nobody logged in (no token for the API);
- other_team: Olga, logged in, of the Search team, holding Security there (her token for the
  API): the app hides other teams' deployments, so their pages are a 404;
- member: a member of the deployment's team without what the view needs (no role; a DevOps
  member on the Security role's actions; a member who is not staff on staff pages; a
  read-only token on the API's writes; a teammate on another person's token);
- holder: the rightful user (the Security holder on Security's actions, staff on staff
  pages, the owner of a token, a write token on the API).

A new view without a row fails test_every_url_pattern_has_an_access_row; a row whose view
lost its authorization check fails test_access_matrix. POSTs carry input a rightful user
would send, so only the caller's identity decides the answer; each request runs in a
savepoint that is rolled back, so the world is built once for the module.
"""

import datetime
import functools
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.shortcuts import resolve_url
from django.test import Client, override_settings
from django.urls import URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from tests.factories import PASSWORD, TeamFactory, UserFactory, grant, make_deployment
from tests.readiness.api import samples
from tests.signoff_helpers import approve_all, complete_items, give_role, sign, signers_for

PRINCIPALS = ("anonymous", "other_team", "member", "holder")
WORKER_PRINCIPAL = "arn:aws:iam::123456789012:role/readiness-worker"
ROLE_ARN = "arn:aws:iam::123456789012:role/readiness"


# --- The URLconf -------------------------------------------------------------------------


def _join(prefix: str, route: str) -> str:
    """Join routes the way Django's resolver does for ResolverMatch.route."""
    return prefix + route.removeprefix("^") if prefix else route


@functools.cache
def url_patterns() -> dict[str, list[str]]:
    """{key: [full route, ...]} of every pattern: "namespace:name" for a named one, the
    route string for an unnamed one."""
    found: dict[str, list[str]] = {}

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            route = _join(prefix, str(pattern.pattern))
            if isinstance(pattern, URLResolver):
                # Django's admin is one row, not one per model page: it is Django's own code,
                # and AdminSite sends everyone who is not staff to its login page.
                if pattern.app_name == "admin":
                    found.setdefault("admin", []).append(route)
                    continue
                inner = ":".join(part for part in (namespace, pattern.namespace) if part)
                walk(pattern.url_patterns, route, inner)
            elif pattern.name:
                key = f"{namespace}:{pattern.name}" if namespace else pattern.name
                found.setdefault(key, []).append(route)
            else:
                found.setdefault(route, []).append(route)

    walk(get_resolver().url_patterns, "", "")
    return found


def model(name: str):
    """A model by class name, wherever its module lives now."""
    return next(m for m in apps.get_models() if m.__name__ == name)


# --- The world ---------------------------------------------------------------------------


@dataclass(repr=False)
class World:
    users: dict
    tokens: dict
    revocable_token: int
    template: int
    review: object  # in review: Security rejected, Penetration Test waived, MFA open
    draft: object
    approved: object
    deployed: object
    mfa: object
    waiver: object
    signoff: object
    run: object
    active_run: object
    record_number: int
    post_check: object

    def __repr__(self) -> str:
        return "<the access matrix's world>"


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _done(user, name: str, data: dict, **kwargs):
    """Set-up steps go through the pages, as people take them."""
    response = _as(user).post(reverse(name, kwargs=kwargs), data)
    assert response.status_code == 302, (name, response.status_code, response.content[:300])
    return response


def _token(user, name: str, scope: str):
    response = _as(user).post(reverse("token_list"), {"name": name, "scope": scope})
    assert response.status_code == 200, response.content[:300]
    return response.context["created"]


def in_days(days: int) -> str:
    return (timezone.now().date() + datetime.timedelta(days=days)).isoformat()


def _build_world() -> World:
    ChecklistItem = model("ChecklistItem")
    lee = UserFactory(username="lee", first_name="Lee", last_name="Tran")
    team = TeamFactory(name="Payments", slug="payments", members=[lee])
    signers = signers_for(team)
    olga = UserFactory(username="olga")
    give_role(olga, TeamFactory(name="Search", slug="search", members=[olga]), "security")
    staff = UserFactory(username="ada", first_name="Ada", last_name="Byron", is_staff=True)
    grant(staff, "readiness.import_template", "signoff.manage_teams")
    lead = signers["tech-lead"]

    review = make_deployment(user=lead, team=team)
    _done(
        lead,
        "deployment_aws",
        {
            "aws_account_id": "123456789012",
            "aws_regions": "us-east-1",
            "aws_role_arn": ROLE_ARN,
            "aws_external_id": "access-matrix",
        },
        pk=review.pk,
    )
    _done(lead, "signoff_request", {}, pk=review.pk)
    complete_items(review, "security")
    ChecklistItem.objects.filter(
        section__deployment=review, title__in=["MFA", "Penetration Test"]
    ).update(status="open")
    pen_test = ChecklistItem.objects.get(section__deployment=review, title="Penetration Test")
    _done(
        signers["security"],
        "waiver_grant",
        {"reason": "booked for next sprint", "expires_on": in_days(7), "role": "security"},
        pk=review.pk,
        item_id=pen_test.pk,
    )
    signoff = sign(review, signers["security"], "security", "reject", "MFA is still open")
    run = model("ProbeRun").objects.create(
        deployment=review,
        requested_by=lead,
        state="succeeded",
        regions=["us-east-1"],
        accounts=[
            {"account_id": "123456789012", "name": "", "role_arn": "", "regions": ["us-east-1"]}
        ],
        finished_at=timezone.now(),
    )
    # A stored record without rendering one: the download serves the stored bytes as they are.
    data = b"%PDF-1.7\n% access matrix stand-in\n%%EOF\n"
    record = model("SignedRecord")(
        deployment=review,
        record_id=uuid.uuid4(),
        number=1,
        deployment_state="in_review",
        state_digest="0" * 64,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        page_size="A4",
        created_at=timezone.now(),
    )
    record.file.save("access-matrix-record-1.pdf", ContentFile(data), save=False)
    record.save(force_insert=True)

    draft = make_deployment(user=lead, team=team, service="ledger-api")
    # A run still going, for cancelling (each request's savepoint undoes the cancel).
    active_run = model("ProbeRun").objects.create(
        deployment=draft, requested_by=lead, state="running", regions=["us-east-1"]
    )
    approved = make_deployment(user=lead, team=team, service="billing-api")
    approve_all(approved, signers)
    deployed = make_deployment(user=lead, team=team, service="checkout-api")
    approve_all(deployed, signers)
    an_hour_ago = timezone.now() - datetime.timedelta(hours=1)
    _done(
        signers["devops"],
        "deployment_deployed",
        {"deployed_at": an_hour_ago.strftime("%Y-%m-%dT%H:%M")},
        pk=deployed.pk,
    )

    revocable = _token(lee, "matrix revocable", "read")
    return World(
        users={"lee": lee, "olga": olga, "staff": staff, **signers.by_slug},
        tokens={
            "lee-read": _token(lee, "matrix read", "read")["raw"],
            "lee-write": _token(lee, "matrix write", "write")["raw"],
            "olga-write": _token(olga, "matrix other team", "write")["raw"],
        },
        revocable_token=revocable["token"].pk,
        template=review.template_id,
        review=review,
        draft=draft,
        approved=approved,
        deployed=deployed,
        mfa=ChecklistItem.objects.get(section__deployment=review, title="MFA"),
        waiver=model("Waiver").objects.get(item=pen_test),
        signoff=signoff,
        run=run,
        active_run=active_run,
        record_number=record.number,
        post_check=deployed.post_deployment_checks.order_by("position").first(),
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once, inside a transaction rolled back after the module; each test runs in a
    savepoint of its own (pytest-django's django_db), each request in one more."""
    overrides = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        STORAGES={
            "default": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(tmp_path_factory.mktemp("media"))},
            },
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        PROBE_WORKER_PRINCIPAL=WORKER_PRINCIPAL,
    )
    with django_db_blocker.unblock(), overrides, transaction.atomic():
        yield _build_world()
        transaction.set_rollback(True)


# --- Expectations ------------------------------------------------------------------------

LOGIN_PAGE = "<the login page, ?next=this address>"


@dataclass(frozen=True)
class Expect:
    status: int
    to: str | None = None  # a redirect's target: a URL name, or LOGIN_PAGE
    json: bool = False

    def __str__(self) -> str:
        where = "login?next" if self.to == LOGIN_PAGE else self.to
        return f"{self.status}{f' → {where}' if where else ''}{' json' if self.json else ''}"


LOGIN = Expect(302, LOGIN_PAGE)
OK = Expect(200)
ACCEPTED = Expect(202)
NO_CONTENT = Expect(204)
BAD = Expect(400)
FORBIDDEN = Expect(403)
MISSING = Expect(404)


def go(name: str) -> Expect:
    return Expect(302, name)


def api(status: int) -> Expect:
    return Expect(status, json=True)


def who(anonymous: Expect, other_team: Expect, member: Expect, holder: Expect) -> dict:
    return dict(zip(PRINCIPALS, (anonymous, other_team, member, holder), strict=True))


@dataclass(frozen=True)
class Check:
    method: str
    expect: dict
    htmx: str | None = None  # HX-Target of an htmx request ("" for none); None: plain
    data: Callable | None = None  # world → the body
    json_body: bool = False

    def label(self) -> str:
        kind = "" if self.htmx is None else f" htmx{f'#{self.htmx}' if self.htmx else ''}"
        return f"{self.method.upper()}{kind}"


def get(expect: dict, **options) -> Check:
    return Check("get", expect, **options)


def post(expect: dict, **options) -> Check:
    return Check("post", expect, **options)


def put(expect: dict, **options) -> Check:
    return Check("put", expect, json_body=True, **options)


@dataclass(frozen=True)
class Row:
    checks: tuple
    kwargs: Callable = lambda world: {}  # world → the pattern's kwargs
    path: Callable | None = None  # world → the address, for an unnamed pattern
    query: str = ""
    member: str = "lee"
    holder: str = "tech-lead"
    api: bool = False
    conceal: tuple = ()  # what these principals must not see on a 200 …
    conceal_from: tuple = ("other_team",)
    reveal: tuple = ()  # … and what the holder does see there


API_TOKENS = {"other_team": "olga-write", "member": "lee-read", "holder": "lee-write"}

# The other team's deployment pages do not exist for them: 404, not 403.
TEAM_PAGE = who(LOGIN, MISSING, OK, OK)
SIGNED_IN = who(LOGIN, OK, OK, OK)
PUBLIC = who(OK, OK, OK, OK)
STAFF_ONLY = who(LOGIN, FORBIDDEN, FORBIDDEN, OK)
API_READ = who(api(401), api(404), api(200), api(200))
API_WRITE = who(api(401), api(404), api(403), api(201))


def review_pk(world):
    return {"pk": world.review.pk}


def mfa(world):
    return {"pk": world.review.pk, "item_id": world.mfa.pk}


def security_page(world):
    return {"pk": world.review.pk, "role": "security"}


def api_review(world):
    return {"deployment_id": world.review.pk}


def item_data(world):
    item = world.mfa
    fields = {"status": "done", "note": "checked", "evidence_url": "", "na_reason": ""}
    return {f"item{item.pk}-{k}": v for k, v in {**fields, "version": item.version}.items()}


def sign_data(world):
    # The holder's username: the first signature of a session takes both components.
    username = world.users["security"].username
    return {
        "meaning": "reject",
        "comment": "still no MFA",
        "password": PASSWORD,
        "username": username,
    }


def waiver_data(world):
    return {"reason": "accepted until the audit", "expires_on": in_days(7), "role": "security"}


def evidence_data(world):
    return {
        "kind": "cobertura",
        "file": SimpleUploadedFile("coverage.xml", samples.cobertura(9, 10)),
    }


MATRIX: dict[str, Row] = {
    # Public: the load balancer's health check and the login page.
    "healthz": Row(query="check=database", checks=(get(who(*[api(200)] * 4)),)),
    # Prometheus's scrape: off (404) for everyone until METRICS_TOKEN or METRICS_ALLOWED_IPS
    # is set; tests/ops/test_metrics.py checks the token and the allow-list.
    "metrics": Row(checks=(get(who(MISSING, MISSING, MISSING, MISSING)),)),
    "login": Row(checks=(get(who(OK, go("dashboard"), go("dashboard"), go("dashboard"))),)),
    "logout": Row(checks=(post(who(LOGIN, go("login"), go("login"), go("login"))),)),
    # Checklists.
    "dashboard": Row(
        checks=(get(SIGNED_IN), get(SIGNED_IN, htmx="deployment-results")),
        conceal=("payments-api",),
        reveal=("payments-api",),
    ),
    "deployment_create": Row(
        checks=(
            get(SIGNED_IN),
            # Team Payments is not a choice for Olga: the form refuses it.
            post(
                who(LOGIN, BAD, go("deployment_detail"), go("deployment_detail")),
                data=lambda w: {
                    "service": "matrix-api",
                    "version": "1.0.0",
                    "environment": "production",
                    "planned_date": in_days(30),
                    "team": w.review.team_id,
                    "template": w.template,
                },
            ),
        )
    ),
    "deployment_detail": Row(
        kwargs=review_pk, checks=(get(TEAM_PAGE), get(TEAM_PAGE, htmx="signoff"))
    ),
    # MFA is Security's item: every member reads it, only Security's holders change it (the
    # Tech Lead here is a member without that role).
    "item_update": Row(
        kwargs=mfa,
        member="tech-lead",
        holder="security",
        checks=(
            # The item's own page (the checklist row's expanded card without JavaScript).
            get(TEAM_PAGE),
            get(TEAM_PAGE, htmx=""),
            post(
                who(LOGIN, MISSING, FORBIDDEN, go("deployment_detail")),
                data=item_data,
            ),
            post(who(LOGIN, MISSING, FORBIDDEN, OK), htmx="", data=item_data),
        ),
    ),
    # A bulk status change holding MFA: refused whole for the member without Security.
    "items_bulk": Row(
        kwargs=review_pk,
        member="tech-lead",
        holder="security",
        checks=(
            post(
                who(LOGIN, MISSING, FORBIDDEN, go("deployment_detail")),
                data=lambda w: {"items": [w.mfa.pk], "status": "done", "reason": "checked"},
            ),
        ),
    ),
    "item_history": Row(kwargs=mfa, checks=(get(TEAM_PAGE), get(TEAM_PAGE, htmx=""))),
    "deployment_aws": Row(
        kwargs=review_pk,
        checks=(
            get(TEAM_PAGE),
            post(
                who(LOGIN, MISSING, go("deployment_detail"), go("deployment_detail")),
                data=lambda w: {"aws_account_id": "123456789012", "aws_regions": "eu-west-1"},
            ),
        ),
    ),
    "deployment_aws_account_remove": Row(
        kwargs=lambda w: {"pk": w.review.pk, "account_id": "123456789012"},
        checks=(post(who(LOGIN, MISSING, go("deployment_aws"), go("deployment_aws"))),),
    ),
    "deployment_aws_organization": Row(
        kwargs=review_pk,
        checks=(
            post(
                who(
                    LOGIN,
                    MISSING,
                    go("deployment_aws_organization_accounts"),
                    go("deployment_aws_organization_accounts"),
                ),
                data=lambda w: {
                    "org_role_arn": "arn:aws:iam::123456789012:role/OrganizationReader",
                    "org_member_role_pattern": "arn:aws:iam::{account}:role/ReadinessProbe",
                },
            ),
        ),
    ),
    # No Organizations source in this world: the team's members are told to set one (400).
    "deployment_aws_organization_accounts": Row(
        kwargs=review_pk,
        checks=(
            get(who(LOGIN, MISSING, BAD, BAD)),
            get(who(LOGIN, MISSING, BAD, BAD), htmx=""),
            post(who(LOGIN, MISSING, BAD, BAD), data=lambda w: {"accounts": ["123456789012"]}),
        ),
    ),
    "deployment_aws_organization_list": Row(
        kwargs=review_pk,
        checks=(
            post(who(LOGIN, MISSING, BAD, BAD)),
            post(who(LOGIN, MISSING, BAD, BAD), htmx=""),
        ),
    ),
    "deployment_trust_policy": Row(
        kwargs=lambda w: {"pk": w.review.pk, "account_id": "123456789012"},
        checks=(get(TEAM_PAGE),),
    ),
    "probe_run_start": Row(
        kwargs=review_pk,
        checks=(
            post(who(LOGIN, MISSING, go("probe_run_detail"), go("probe_run_detail"))),
            post(TEAM_PAGE, htmx=""),
        ),
    ),
    "probe_run_detail": Row(
        kwargs=lambda w: {"pk": w.review.pk, "run_id": w.run.pk},
        checks=(get(TEAM_PAGE), get(TEAM_PAGE, htmx="probe-run-panel")),
    ),
    # Whoever may start a run may cancel it: every member of the team.
    "probe_run_cancel": Row(
        kwargs=lambda w: {"pk": w.draft.pk, "run_id": w.active_run.pk},
        checks=(
            post(who(LOGIN, MISSING, go("probe_run_detail"), go("probe_run_detail"))),
            post(TEAM_PAGE, htmx=""),
        ),
    ),
    # Global reference pages: every signed-in user reads them.
    "probe_catalogue": Row(checks=(get(SIGNED_IN),)),
    "probe_policy": Row(checks=(get(SIGNED_IN),)),
    "template_list": Row(checks=(get(SIGNED_IN),)),
    "template_detail": Row(kwargs=lambda w: {"pk": w.template}, checks=(get(SIGNED_IN),)),
    # Staff only; the staff check comes before the (here empty) upload is read.
    "template_import": Row(
        holder="staff",
        checks=(get(STAFF_ONLY), post(who(LOGIN, FORBIDDEN, FORBIDDEN, BAD))),
    ),
    # Sign-off lifecycle: any team member.
    "my_signoffs": Row(
        checks=(get(SIGNED_IN),), conceal=("payments-api",), reveal=("payments-api",)
    ),
    "signoff_request": Row(
        kwargs=lambda w: {"pk": w.draft.pk},
        checks=(
            post(who(LOGIN, MISSING, go("deployment_detail"), go("deployment_detail"))),
            post(who(LOGIN, MISSING, NO_CONTENT, NO_CONTENT), htmx="signoff"),
        ),
    ),
    "deployment_deployed": Row(
        kwargs=lambda w: {"pk": w.approved.pk},
        checks=(
            post(
                who(LOGIN, MISSING, go("deployment_detail"), go("deployment_detail")),
                data=lambda w: {"deployed_at": timezone.now().strftime("%Y-%m-%dT%H:%M")},
            ),
            post(
                who(LOGIN, MISSING, NO_CONTENT, NO_CONTENT),
                htmx="signoff",
                data=lambda w: {"deployed_at": timezone.now().strftime("%Y-%m-%dT%H:%M")},
            ),
        ),
    ),
    "post_check": Row(
        kwargs=lambda w: {"pk": w.deployed.pk, "check_id": w.post_check.pk},
        checks=(
            post(
                who(LOGIN, MISSING, go("deployment_detail"), go("deployment_detail")),
                data=lambda w: {"note": "dashboards green"},
            ),
            post(
                who(LOGIN, MISSING, NO_CONTENT, NO_CONTENT),
                htmx="signoff",
                data=lambda w: {"note": "dashboards green"},
            ),
        ),
    ),
    # Role pages: every member reads them; only the role's holder acts (DevOps here is a
    # member of the team without Security).
    "role_detail": Row(
        kwargs=security_page,
        member="devops",
        holder="security",
        checks=(get(TEAM_PAGE), get(TEAM_PAGE, htmx="panel")),
    ),
    "role_sign": Row(
        kwargs=security_page,
        member="devops",
        holder="security",
        checks=(
            post(who(LOGIN, MISSING, FORBIDDEN, go("role_detail")), data=sign_data),
            post(who(LOGIN, MISSING, FORBIDDEN, OK), htmx="panel", data=sign_data),
        ),
    ),
    "signoff_revoke": Row(
        kwargs=lambda w: {"pk": w.review.pk, "signoff_id": w.signoff.pk},
        member="devops",
        holder="security",
        checks=(
            post(
                who(LOGIN, MISSING, FORBIDDEN, go("role_detail")),
                data=lambda w: {"reason": "signed the wrong build"},
            ),
            post(
                who(LOGIN, MISSING, FORBIDDEN, OK),
                htmx="panel",
                data=lambda w: {"reason": "signed the wrong build"},
            ),
        ),
    ),
    "waiver_grant": Row(
        kwargs=mfa,
        member="devops",
        holder="security",
        checks=(
            post(who(LOGIN, MISSING, FORBIDDEN, go("role_detail")), data=waiver_data),
            post(who(LOGIN, MISSING, FORBIDDEN, OK), htmx="panel", data=waiver_data),
        ),
    ),
    "waiver_withdraw": Row(
        kwargs=lambda w: {"pk": w.review.pk, "waiver_id": w.waiver.pk},
        member="devops",
        holder="security",
        checks=(
            post(
                who(LOGIN, MISSING, FORBIDDEN, go("role_detail")),
                data=lambda w: {"reason": "pen test booked", "role": "security"},
            ),
            post(
                who(LOGIN, MISSING, FORBIDDEN, OK),
                htmx="panel",
                data=lambda w: {"reason": "pen test booked", "role": "security"},
            ),
        ),
    ),
    # Teams: members read their own team; only staff change it.
    "team_list": Row(checks=(get(SIGNED_IN),), conceal=("Payments",), reveal=("Payments",)),
    "team_detail": Row(
        kwargs=lambda w: {"slug": "payments"},
        holder="staff",
        checks=(
            get(TEAM_PAGE),
            get(TEAM_PAGE, htmx=""),
            post(
                who(LOGIN, MISSING, FORBIDDEN, go("team_detail")),
                data=lambda w: {"action": "member_add", "username": "olga"},
            ),
            post(
                who(LOGIN, MISSING, FORBIDDEN, OK),
                htmx="",
                data=lambda w: {"action": "member_add", "username": "olga"},
            ),
        ),
    ),
    "deployment_audit": Row(kwargs=review_pk, checks=(get(TEAM_PAGE), get(TEAM_PAGE, htmx=""))),
    # Records.
    "record_download": Row(
        kwargs=lambda w: {"pk": w.review.pk, "number": w.record_number}, checks=(get(TEAM_PAGE),)
    ),
    # A draft no worker has rendered yet: 202 and the page that waits for it.
    "record_draft": Row(kwargs=review_pk, checks=(get(who(LOGIN, MISSING, ACCEPTED, ACCEPTED)),)),
    "record_draft_status": Row(
        kwargs=review_pk, checks=(get(TEAM_PAGE), get(TEAM_PAGE, htmx="draft-panel"))
    ),
    "record_draft_retry": Row(
        kwargs=review_pk,
        checks=(
            post(who(LOGIN, MISSING, go("record_draft_status"), go("record_draft_status"))),
            post(TEAM_PAGE, htmx="draft-panel"),
        ),
    ),
    # Public (RECORD_VERIFY_PUBLIC, on by default): the empty upload is refused by the form
    # (400) for everyone; tests/signoff/web/test_public_verify.py covers the setting off.
    "record_verify": Row(
        checks=(
            get(PUBLIC),
            post(who(BAD, BAD, BAD, BAD)),
            post(who(BAD, BAD, BAD, BAD), htmx=""),
        )
    ),
    # Single sign-on: 404 for everyone while OIDC_ISSUER is empty (the default, and here);
    # tests/signoff/test_oidc_*.py run them against a real provider.
    "oidc_authentication_init": Row(checks=(get(who(*[MISSING] * 4)),)),
    "oidc_authentication_callback": Row(checks=(get(who(*[MISSING] * 4)),)),
    "oidc_sign_start": Row(
        kwargs=security_page,
        member="devops",
        holder="security",
        checks=(post(who(LOGIN, MISSING, MISSING, MISSING), data=sign_data),),
    ),
    "oidc_sign_callback": Row(checks=(get(who(LOGIN, MISSING, MISSING, MISSING)),)),
    # Personal API tokens: Lee's own; a teammate (DevOps) is as much a stranger as Olga.
    "token_list": Row(
        member="devops",
        holder="lee",
        checks=(
            get(SIGNED_IN),
            post(SIGNED_IN, data=lambda w: {"name": "matrix new", "scope": "read"}),
        ),
        conceal=("matrix read",),
        conceal_from=("other_team", "member"),
        reveal=("matrix read",),
    ),
    "token_revoke": Row(
        kwargs=lambda w: {"pk": w.revocable_token},
        member="devops",
        holder="lee",
        checks=(post(who(LOGIN, MISSING, MISSING, go("token_list"))),),
    ),
    # The pipeline API: bearer tokens, JSON answers, 401 without one; another team's
    # deployment does not exist; a read-only token cannot write.
    "api-v1:openapi-json": Row(api=True, checks=(get(who(*[api(200)] * 4)),)),
    "api-v1:openapi-view": Row(api=True, checks=(get(PUBLIC),)),
    "api-v1:api-root": Row(api=True, checks=(get(who(*[api(404)] * 4)),)),
    # The list is everyone's own: Olga's is empty, not refused.
    "api-v1:deployments_list": Row(
        api=True,
        checks=(get(who(api(401), api(200), api(200), api(200))),),
        conceal=("payments-api",),
        reveal=("payments-api",),
    ),
    "api-v1:deployments_create": Row(
        api=True,
        checks=(
            # Olga may create deployments, but not in a team she is not in.
            post(
                who(api(401), api(400), api(403), api(201)),
                json_body=True,
                data=lambda w: {
                    "service": "matrix-api",
                    "environment": "production",
                    "version": "1.0.0",
                    "team": "payments",
                },
            ),
        ),
    ),
    "api-v1:deployments_read": Row(api=True, kwargs=api_review, checks=(get(API_READ),)),
    "api-v1:aws_accounts_list": Row(api=True, kwargs=api_review, checks=(get(API_READ),)),
    "api-v1:aws_accounts_replace": Row(
        api=True,
        kwargs=api_review,
        checks=(
            put(
                who(api(401), api(404), api(403), api(200)),
                data=lambda w: [{"account_id": "123456789012", "regions": ["eu-west-1"]}],
            ),
        ),
    ),
    "api-v1:checklist_read": Row(api=True, kwargs=api_review, checks=(get(API_READ),)),
    "api-v1:probe_runs_start": Row(
        api=True,
        kwargs=api_review,
        checks=(post(who(api(401), api(404), api(403), api(202))),),
    ),
    "api-v1:probe_runs_cancel": Row(
        api=True,
        kwargs=lambda w: {"deployment_id": w.draft.pk, "run_id": w.active_run.pk},
        checks=(post(who(api(401), api(404), api(403), api(200))),),
    ),
    "api-v1:probe_runs_read": Row(
        api=True,
        kwargs=lambda w: {"deployment_id": w.review.pk, "run_id": w.run.pk},
        checks=(get(API_READ),),
    ),
    "api-v1:evidence_create": Row(
        api=True, kwargs=api_review, checks=(post(API_WRITE, data=evidence_data),)
    ),
    "api-v1:evidence_list": Row(api=True, kwargs=api_review, checks=(get(API_READ),)),
    # The approved deployment: the gate is open (200) for its team, 404 for Olga.
    "api-v1:gate": Row(
        api=True, kwargs=lambda w: {"deployment_id": w.approved.pk}, checks=(get(API_READ),)
    ),
    # Anything else under /api/: a JSON 404 for everyone, token or not.
    "^api(?:/(?P<rest>.*))?$": Row(
        api=True, path=lambda w: "/api/v2/deployments", checks=(get(who(*[api(404)] * 4)),)
    ),
    # Old admin bookmarks of the audit trail: redirected (after the site's login) to the
    # model's new admin address, where the admin's own staff check applies.
    "^admin/signoff/auditevent/(?P<rest>.*)$": Row(
        path=lambda w: "/admin/signoff/auditevent/",
        checks=(
            get(
                who(
                    LOGIN,
                    go("admin:readiness_auditevent_changelist"),
                    go("admin:readiness_auditevent_changelist"),
                    go("admin:readiness_auditevent_changelist"),
                )
            ),
        ),
    ),
    # Django's admin (one row for all its pages): staff only, everyone else to its login.
    "admin": Row(
        path=lambda w: reverse("admin:index"),
        holder="staff",
        checks=(get(who(go("admin:login"), go("admin:login"), go("admin:login"), OK)),),
    ),
}


# --- The tests ---------------------------------------------------------------------------


def test_every_url_pattern_has_an_access_row():
    patterns = url_patterns()
    missing = sorted(set(patterns) - set(MATRIX))
    stale = sorted(set(MATRIX) - set(patterns))
    ambiguous = sorted(key for key, routes in patterns.items() if len(routes) > 1)
    assert not missing, f"URL patterns without a row in MATRIX: {missing}"
    assert not stale, f"MATRIX rows whose URL pattern no longer exists: {stale}"
    assert not ambiguous, f"URL names used by more than one pattern: {ambiguous}"


def _address(key: str, row: Row, world: World) -> str:
    path = row.path(world) if row.path else reverse(key, kwargs=row.kwargs(world))
    return f"{path}?{row.query}" if row.query else path


def _user(row: Row, principal: str, world: World):
    name = {"other_team": "olga", "member": row.member, "holder": row.holder}[principal]
    return world.users[name]


def _send(client: Client, check: Check, address: str, world: World, token: str | None):
    headers = {}
    if check.htmx is not None:
        headers["HX-Request"] = "true"
        if check.htmx:
            headers["HX-Target"] = check.htmx
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = check.data(world) if check.data else {}
    if check.method == "get":
        return client.get(address, headers=headers)
    if check.method == "put":
        return client.put(address, data, content_type="application/json", headers=headers)
    if check.json_body:
        return client.post(address, data, content_type="application/json", headers=headers)
    return client.post(address, data, headers=headers)


def _body(response) -> str:
    """The body, read once; a streamed one (a file) is read to its end, which closes it."""
    if not hasattr(response, "body_text"):
        content = b"".join(response.streaming_content) if response.streaming else response.content
        response.body_text = content.decode(errors="replace")
    return response.body_text


def _problems(response, expected: Expect, address: str, row: Row, principal: str) -> list:
    status = response.status_code
    location = response.get("Location", "")
    if status == 200 and response.has_header("HX-Redirect"):
        # htmx follows a redirect inside the fragment; the site tells it to leave the page.
        status, location = 302, response["HX-Redirect"]
    found = f"{status}{f' → {location}' if location else ''}"
    if status >= 500:
        return [f"a server error: {found}"]
    if status != expected.status:
        return [f"expected {expected}, got {found}"]
    problems = []
    if expected.to == LOGIN_PAGE:
        wanted = f"{resolve_url(settings.LOGIN_URL)}?next={quote(address, safe='/')}"
        if location != wanted:
            problems.append(f"expected a redirect to {wanted}, got {location}")
    elif expected.to:
        target = resolve(urlsplit(location).path).view_name
        if target != expected.to:
            problems.append(f"expected a redirect to {expected.to}, got {location} ({target})")
    if expected.json and not response.get("Content-Type", "").startswith("application/json"):
        problems.append(f"expected JSON, got {response.get('Content-Type')}")
    if status == 200 and (row.conceal or row.reveal):
        body = _body(response)
        if principal in row.conceal_from:
            problems += [f"shows {text!r}" for text in row.conceal if text in body]
        if principal == "holder":
            problems += [f"does not show {text!r}" for text in row.reveal if text not in body]
    return problems


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "principal"),
    [
        pytest.param(key, principal, id=f"{key}-{principal}")
        for key in MATRIX
        for principal in PRINCIPALS
    ],
)
def test_access_matrix(world, key, principal):
    row = MATRIX[key]
    address = _address(key, row, world)
    # The address reaches the pattern of this row, not another one.
    route = resolve(urlsplit(address).path).route
    routes = url_patterns().get(key, [])
    assert any(route == r or (key == "admin" and route.startswith(r)) for r in routes), (
        f"{address} resolves to {route!r}, not to {routes}"
    )
    client = Client()
    token = None
    if row.api:
        token = world.tokens.get(API_TOKENS.get(principal, ""))
    elif principal != "anonymous":
        client.force_login(_user(row, principal, world))
    failures = []
    for check in row.checks:
        # Each request's changes are undone before the next one (a sign-off, a waiver).
        with transaction.atomic():
            response = _send(client, check, address, world, token)
            _body(response)
            transaction.set_rollback(True)
        for problem in _problems(response, check.expect[principal], address, row, principal):
            failures.append(f"{check.label()} {address} as {principal}: {problem}")
    assert not failures, "\n".join(failures)
