"""Every HTML response carries the Content-Security-Policy and the Permissions-Policy.

The pages are the access matrix's (tests/test_access_matrix.py): every GET of every URL
pattern, plain and htmx, for each of its principals, so error pages (403, 404) and login
pages count too, and a new view is covered as soon as it has its row there. The browser
test tests/e2e/test_csp.py shows that the pages also keep to the policy.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from django.urls import path

from tests import test_access_matrix
from tests.test_access_matrix import MATRIX, OK, PRINCIPALS, _address, _send, _user, url_patterns

ROOT = Path(__file__).resolve().parents[3]
# The matrix's module-scoped world of data, built again for this module.
world = test_access_matrix.world

EXPECTED_CSP = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}
# Browser powers the app never uses, refused to the page and to anything it could embed.
DENIED_FEATURES = {
    "camera",
    "microphone",
    "geolocation",
    "payment",
    "usb",
    "serial",
    "hid",
    "display-capture",
    "fullscreen",
    "publickey-credentials-get",
    "browsing-topics",
}


def csp_of(response) -> dict[str, set[str]]:
    header = response.get("Content-Security-Policy")
    assert header, "no Content-Security-Policy header"
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice in {header}"
        directives[name] = set(sources)
    return directives


def permissions_of(response) -> dict[str, str]:
    header = response.get("Permissions-Policy")
    assert header, "no Permissions-Policy header"
    return dict(part.strip().split("=", 1) for part in header.split(","))


def problems_of(response) -> list[str]:
    """What is wrong with an HTML response's two policy headers ([] when nothing)."""
    try:
        csp, permissions = csp_of(response), permissions_of(response)
    except AssertionError as missing:
        return [str(missing)]
    problems = []
    if csp != EXPECTED_CSP:
        problems.append(f"Content-Security-Policy {csp}, expected {EXPECTED_CSP}")
    allowed = sorted(f for f in DENIED_FEATURES if permissions.get(f) != "()")
    if allowed:
        problems.append(f"Permissions-Policy does not refuse {allowed}")
    return problems


def html_pages(world) -> list[tuple[str, str, str]]:
    """(URL pattern, address, principal): each pattern's plain GET that the matrix answers
    with a 200 for someone, seen by the first such principal, the rightful holder first."""
    pages = []
    for key in url_patterns():
        row = MATRIX[key]
        check = next((c for c in row.checks if c.method == "get" and c.htmx is None), None)
        if check is None:
            continue
        principal = next((p for p in reversed(PRINCIPALS) if check.expect[p] == OK), None)
        if principal:
            pages.append((key, _address(key, row, world), principal))
    return pages


@pytest.mark.django_db
def test_every_html_response_carries_both_policies(world):
    failures, html_responses = [], 0
    for key in url_patterns():
        row = MATRIX[key]
        address = _address(key, row, world)
        for principal in PRINCIPALS:
            client = Client()
            if principal != "anonymous" and not row.api:
                client.force_login(_user(row, principal, world))
            for check in row.checks:
                if check.method != "get":
                    continue
                with transaction.atomic():
                    response = _send(client, check, address, world, None)
                    transaction.set_rollback(True)
                if not response.get("Content-Type", "").startswith("text/html"):
                    continue
                html_responses += 1
                for problem in problems_of(response):
                    failures.append(f"{check.label()} {address} as {principal}: {problem}")
    assert not failures, "\n".join(failures)
    # Pages, fragments, the login page and the 403/404 pages: the matrix has well over 100.
    assert html_responses > 100, html_responses


@pytest.mark.django_db
def test_the_pages_the_policy_matters_for_are_among_them(world):
    keys = {key for key, _, _ in html_pages(world)}
    assert {
        "login",
        "dashboard",
        "deployment_detail",
        "role_detail",
        "team_detail",
        "deployment_audit",
        "record_verify",
        "token_list",
        "probe_catalogue",
        "template_list",
        "admin",
    } <= keys


def _broken_view(request):
    raise RuntimeError("a bug")


urlpatterns = [path("broken/", _broken_view)]


@pytest.mark.urls(__name__)
def test_the_server_error_page_carries_both_policies_and_no_inline_style(db):
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500
    assert problems_of(response) == []
    assert b"style=" not in response.content


def _policy_in_a_fresh_process(tmp_path, **variables) -> str:
    """The header value a freshly started app builds from its environment."""
    code = (
        "from csp.utils import build_policy, default_config; "
        "from readiness.project import settings; "
        'print(build_policy(default_config(settings.CONTENT_SECURITY_POLICY["DIRECTIVES"])))'
    )
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATA_DIR": str(tmp_path / "data"),
        **variables,
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_violation_reports_go_where_csp_report_uri_says_and_nowhere_without_it(tmp_path):
    assert "report-uri" not in _policy_in_a_fresh_process(tmp_path)
    policy = _policy_in_a_fresh_process(tmp_path, CSP_REPORT_URI="https://csp.example.com/r")
    assert "report-uri https://csp.example.com/r" in policy.split("; ")


def test_https_upgrades_insecure_requests(tmp_path):
    assert "upgrade-insecure-requests" not in _policy_in_a_fresh_process(tmp_path)
    policy = _policy_in_a_fresh_process(tmp_path, HTTPS="true")
    assert "upgrade-insecure-requests" in policy.split("; ")


# --- The templates keep to the policy (the browser test finds the same, page by page) ------

# The record's template is rendered by WeasyPrint into the PDF, never served to a browser:
# its column widths stay inline.
PDF_ONLY = {"signoff/record.html"}
FORBIDDEN_MARKUP = {
    "an inline <script>": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>"),
    "an inline <style>": re.compile(r"<style\b"),
    "an inline event handler": re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE),
    "a style attribute": re.compile(r"<[^>]*\sstyle\s*="),
    "hx-on (eval'd)": re.compile(r"\shx-on"),
    "hx-vars (eval'd)": re.compile(r"\shx-vars\s*="),
    "a js: value (eval'd)": re.compile(r"""\shx-(vals|headers)\s*=\s*["'](js|javascript):"""),
    "a javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}

HX_TRIGGER = re.compile(r'\shx-trigger\s*=\s*"([^"]*)"')


def _templates():
    folders = [
        ROOT / "templates",
        *ROOT.glob("readiness/**/templates"),
        *ROOT.glob("signoff/**/templates"),
    ]
    for folder in folders:
        for template in sorted(folder.rglob("*.html")):
            yield template.relative_to(folder).as_posix(), template


def test_no_template_needs_unsafe_inline_or_unsafe_eval():
    found = []
    for name, template in _templates():
        if name in PDF_ONLY:
            continue
        text = template.read_text()
        for what, pattern in FORBIDDEN_MARKUP.items():
            found += [f"{name}: {what}: {m.group(0)[:80]}" for m in pattern.finditer(text)]
        # An event filter, `change[target.value != 'x']`, is eval'd; `from:input[type=search]`
        # is a CSS selector.
        for trigger in HX_TRIGGER.findall(text):
            events = [spec.split()[0] for spec in trigger.split(",") if spec.strip()]
            found += [f"{name}: an htmx event filter (eval'd): {e}" for e in events if "[" in e]
    assert not found, "\n".join(found)
