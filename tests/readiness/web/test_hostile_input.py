"""Hostile input on every page: odd query parameters and form fields get a 4xx or a page,
never a 500, and a refused request changes nothing.

The pages are every URL pattern of the site (walked from the resolver, as the access matrix
does; the API has its own schemathesis test, Django's admin is Django's), reached at the
addresses of the access matrix's world as the user each row names as the rightful one (a
role holder, staff on staff pages), so a form is read and not refused at the door. Each GET
carries every query parameter a page reads, and each POST every field of the page's forms,
set to huge and negative numbers, NUL characters, 1 MB strings, impossible and extreme
dates, unicode, markup, or a valid value, so the other fields let an odd one reach the
service behind the form. A redirect is followed: what was saved must render too. Each
request runs in a savepoint rolled back after it, as in the access matrix.
"""

from urllib.parse import parse_qsl

import pytest
from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readiness.api.token_views import TokenForm
from readiness.audit.export import AuditFilterForm
from readiness.audit.models import AuditEvent
from readiness.checklists.forms import (
    AwsAccountForm,
    AwsOrganizationForm,
    AwsOrganizationPickForm,
    BulkStatusForm,
    DashboardFilterForm,
    DeploymentCreateForm,
    ItemFilterForm,
    ItemForm,
    TemplateImportForm,
)
from readiness.probe_runs.forms import ProbeRunForm
from signoff.lifecycle.forms import DeployedForm, PostCheckForm, ReasonForm, SignForm, WaiverForm
from signoff.web.team_views import TEAM_FORMS
from signoff.web.verify_views import RecordVerifyForm
from tests.test_access_matrix import MATRIX, url_patterns
from tests.test_access_matrix import world as world  # the fixture: the matrix's world

# Django's admin is Django's own; the API answers JSON and has tests/readiness/api.
PAGES = sorted(key for key in url_patterns() if key != "admin" and not MATRIX[key].api)

# Every form a page reads from a POST: its fields are all sent.
FORMS = {
    "login": [AuthenticationForm],
    "deployment_create": [DeploymentCreateForm],
    "item_update": [ItemForm],
    "items_bulk": [BulkStatusForm],
    "deployment_aws": [AwsAccountForm],
    "deployment_aws_organization": [AwsOrganizationForm],
    "deployment_aws_organization_accounts": [AwsOrganizationPickForm],
    "template_import": [TemplateImportForm],
    "role_sign": [SignForm],
    "oidc_sign_start": [SignForm],
    "signoff_revoke": [ReasonForm],
    "waiver_grant": [WaiverForm],
    "waiver_withdraw": [ReasonForm],
    "deployment_deployed": [DeployedForm],
    "post_check": [PostCheckForm],
    "team_detail": list(TEAM_FORMS.values()),
    "record_verify": [RecordVerifyForm],
    "token_list": [TokenForm],
    "probe_run_start": [ProbeRunForm],
}
# POST fields read outside a form.
EXTRA_FIELDS = {
    "login": ["next"],
    "team_detail": ["action"],
    "waiver_grant": ["role"],
    "waiver_withdraw": ["role"],
}
# Pages that act on a POST without reading any field.
NO_FIELDS = {
    "logout",
    "probe_run_cancel",
    "deployment_aws_account_remove",
    "deployment_aws_organization_list",
    "signoff_request",
    "token_revoke",
    "record_draft_retry",
    "^admin/signoff/auditevent/(?P<rest>.*)$",  # a redirect for any method
}
# The query parameters the pages read (the filter forms' fields and the ones read by hand),
# and those a page could plausibly grow.
QUERY_PARAMETERS = sorted(
    {
        *DashboardFilterForm.base_fields,
        *ItemFilterForm.base_fields,
        *AuditFilterForm.base_fields,
        *("page", "refresh", "check", "next", "account"),
        *("q", "status", "service", "environment", "role", "team", "state", "version"),
    }
)


class Megabyte(str):
    """1 MB of text that hypothesis's reports show in a few characters."""

    def __repr__(self) -> str:
        return "<1 MB of 'x'>"


MEGABYTE = Megabyte("x" * 2**20)
ODD_VALUES = [
    *(str(10**30), str(-(10**30)), "-1", "0", "2147483648", "9223372036854775808"),
    *("1e309", "NaN", "-inf", "0x1F", "1_000"),
    *("\x00", "a\x00b", "%00"),
    *("0001-01-01", "9999-12-31", "2026-02-30", "0000-00-00", "10000-01-01", "2026-13-45"),
    *("0001-01-01T00:00", "9999-12-31T23:59", "9999-12-31 23:59", "2026-02-30T25:61"),
    *("-2026-01-01", "1970-01-01", "2026-12-31"),
    *(
        "",
        " ",
        "ünïcødé",
        "\U0001d518\U0001d52b\U0001d526 \u2603",
        "\u202egnp.exe",
        "日本語",
        "🙂" * 100,
    ),
    *("<script>alert(1)</script>", "' OR 1=1 --", "../../etc/passwd", "{{ 7|add:7 }}"),
    MEGABYTE,
]
odd = st.sampled_from(ODD_VALUES) | st.text(max_size=40) | st.integers().map(str)
# Header values a browser could send (no control characters: servers refuse those).
header_text = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=60)
htmx_headers = st.none() | st.fixed_dictionaries(
    {"HX-Request": st.just("true")},
    optional={
        "HX-Target": st.sampled_from(["", "panel", "signoff", "deployment-results"]) | header_text,
        # urlsplit refuses the bracketed ones (an unclosed IPv6 host).
        "HX-Current-URL": st.sampled_from(
            ["http://testserver/", "/", "http://[", "http://[::1/", "http://testserver:x/"]
        )
        | header_text,
    },
)
uploads = st.builds(
    SimpleUploadedFile,
    name=st.sampled_from(["record.pdf", "checklist.md", "a\x00b.md", "ü" * 300, "../x.md"]),
    content=st.sampled_from(
        [b"", b"%PDF-1.7\n%%EOF\n", b"\x00" * 64, b"# Title\n\n## Section\n\n- [ ] item\n"]
    )
    | st.binary(max_size=200),
)

HOSTILE = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def _address(key: str, world) -> str:
    row = MATRIX[key]
    return row.path(world) if row.path else reverse(key, kwargs=row.kwargs(world))


def _client(key: str, world) -> Client:
    client = Client()
    client.force_login(world.users[MATRIX[key].holder])
    return client


def _valid_post(key: str, world) -> dict:
    """What the rightful user would send, from the access matrix's row."""
    for check in MATRIX[key].checks:
        if check.method == "post" and check.data:
            return dict(check.data(world))
    return {}


def _post_fields(key: str, world) -> dict[str, list]:
    """{field name as posted: its valid values (choices, the matrix's value)}."""
    valid = _valid_post(key, world)
    prefix = f"item{MATRIX[key].kwargs(world)['item_id']}-" if key == "item_update" else ""
    fields: dict[str, list] = {}
    for form in FORMS.get(key, []):
        for name, field in form.base_fields.items():
            choices = (
                []  # the world's rows: the matrix's valid value below
                if isinstance(field, forms.ModelChoiceField)
                else [value for value, _ in getattr(field, "choices", []) if value]
            )
            fields[prefix + name] = choices
    for name in EXTRA_FIELDS.get(key, []):
        fields[name] = []
    if key == "team_detail":
        fields["action"] = list(TEAM_FORMS)
    for name, value in valid.items():
        fields.setdefault(name, []).append(value)
    return fields


# A refused attempt to log in or to sign is itself recorded (21 CFR 11.300(d)).
FAILED_ATTEMPT_EVENTS = ("user.login_failed", "user.locked_out", "signoff.signing_failed")


def _refused_changes_nothing(send) -> list:
    """Send in a savepoint rolled back after it; the statuses of the answer and every hop."""
    with transaction.atomic():
        changes = AuditEvent.objects.exclude(action__in=FAILED_ATTEMPT_EVENTS)
        events = changes.count()
        response = send()
        statuses = [status for _, status in response.redirect_chain] + [response.status_code]
        if statuses[0] >= 400:
            assert changes.count() == events, f"a refused request wrote: {statuses}"
        transaction.set_rollback(True)
    return statuses


@pytest.mark.django_db
@pytest.mark.parametrize("key", PAGES)
@HOSTILE
@given(data=st.data())
def test_odd_query_parameters_never_make_a_page_fail(world, key, data):
    address = _address(key, world)
    base = dict(parse_qsl(MATRIX[key].query))  # healthz: the database check, not a worker's
    params = data.draw(
        st.dictionaries(
            st.sampled_from(QUERY_PARAMETERS),
            # Never an empty list: it would drop a parameter, and /healthz without `check`
            # waits for a worker (and answers 503 without one, as it should).
            odd | st.lists(odd, min_size=1, max_size=3),
            max_size=8,
        ),
        label="query",
    )
    headers = data.draw(htmx_headers, label="headers") or {}
    client = _client(key, world)
    statuses = _refused_changes_nothing(
        lambda: client.get(address, {**base, **params}, headers=headers, follow=True)
    )
    assert all(status < 500 for status in statuses), statuses


@pytest.mark.django_db
@pytest.mark.parametrize("key", PAGES)
@HOSTILE
@given(data=st.data())
def test_odd_form_fields_never_make_a_page_fail(world, key, data):
    address = _address(key, world)
    fields = _post_fields(key, world)
    body = dict(_valid_post(key, world))
    for name in data.draw(st.sets(st.sampled_from(sorted(fields) or ["x"])), label="odd fields"):
        if name == "file":
            value = uploads | odd
        else:
            valid = fields.get(name) or ODD_VALUES
            value = st.sampled_from(valid) | odd | st.lists(odd, max_size=3)
        body[name] = data.draw(value, label=name)
    headers = data.draw(htmx_headers, label="headers") or {}
    client = _client(key, world)
    statuses = _refused_changes_nothing(
        lambda: client.post(address, body, headers=headers, follow=True)
    )
    assert all(status < 500 for status in statuses), statuses


@pytest.mark.django_db
@pytest.mark.parametrize("key", PAGES)
def test_every_page_that_reads_a_post_has_its_fields_listed(world, key):
    client = _client(key, world)
    with transaction.atomic():
        response = client.post(_address(key, world), {})
        transaction.set_rollback(True)
    if response.status_code != 405:
        assert key in FORMS or key in NO_FIELDS, f"{key} reads a POST: list its form in FORMS"


@pytest.mark.django_db
def test_ids_too_big_for_the_database_are_a_404(world):
    checked = 0
    for key in PAGES:
        row = MATRIX[key]
        kwargs = {} if row.path else row.kwargs(world)
        client = _client(key, world)
        for name in [name for name, value in kwargs.items() if isinstance(value, int)]:
            for huge in (10**30, 2**63, 2**31):
                address = reverse(key, kwargs={**kwargs, name: huge})
                for method in (client.get, client.post):
                    with transaction.atomic():
                        response = method(address)
                        transaction.set_rollback(True)
                    assert response.status_code in (404, 405), (method.__name__, address)
                    checked += 1
    assert checked > 100  # every number of every address, not an empty loop


@pytest.mark.django_db
@pytest.mark.parametrize("current_url", ["http://[", "http://[::1/deployments/", "::::"])
def test_an_item_saved_from_a_page_address_urlsplit_refuses_is_saved_not_a_500(world, current_url):
    # Found by the test above: django-htmx's current_url_abs_path raised ValueError.
    client = _client("item_update", world)
    address = _address("item_update", world)
    body = {**_valid_post("item_update", world), f"item{world.mfa.pk}-note": "from a bad page"}
    with transaction.atomic():
        response = client.post(
            address, body, headers={"HX-Request": "true", "HX-Current-URL": current_url}
        )
        world.mfa.refresh_from_db()
        assert response.status_code == 200
        assert world.mfa.note == "from a bad page"
        transaction.set_rollback(True)
    world.mfa.refresh_from_db()  # the module's world again, for the tests after this one
