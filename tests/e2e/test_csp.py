"""Every page a person can reach runs under the Content-Security-Policy without a violation.

The pages come from the URLconf through the access matrix (tests/test_access_matrix.py):
each pattern whose plain GET answers someone with an HTML page is visited as that person,
with the matrix's world of data, so a new page is visited here as soon as it has its row
there. Django's admin adds every registered model's list, add and change pages.

A violation shows two ways, and both are listened for: the `securitypolicyviolation` event
(an init script collects it in the page) and chromium's console message ("Refused to ...
because it violates the following Content Security Policy directive").
"""

import re

import pytest
from django.contrib import admin
from django.urls import reverse
from playwright.sync_api import BrowserContext, Page, expect

from readiness.checklists.models import ChecklistItem, ItemStatus
from tests.e2e.test_checklist_flow import is_item_post, item_article, status_label
from tests.factories import PASSWORD, UserFactory
from tests.readiness.project.test_security_headers import html_pages
from tests.test_access_matrix import MATRIX, WORKER_PRINCIPAL, _build_world, _user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

WAIT = 10_000  # ms

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push({
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    source: `${event.sourceFile}:${event.lineNumber}`,
    sample: event.sample,
  });
}, true);
"""


@pytest.fixture
def world(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.PROBE_WORKER_PRINCIPAL = WORKER_PRINCIPAL
    return _build_world()


class Watched:
    """A logged-in browser context whose CSP violations and policy errors are collected."""

    def __init__(self, new_context, base_url: str, user=None, scheme: str = "light"):
        self.base_url = base_url
        self.console: list[str] = []
        self.context: BrowserContext = new_context(color_scheme=scheme)
        self.context.add_init_script(COLLECT_VIOLATIONS)
        self.context.on("console", self._console)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT)
        if user is not None:
            self.page.goto(f"{base_url}{reverse('login')}")
            self.page.get_by_label("Username").fill(user.username)
            self.page.get_by_label("Password").fill(PASSWORD)
            self.page.get_by_role("button", name="Log in").click()
            expect(self.page.get_by_role("heading", level=1, name="Deployments")).to_be_visible()

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Permissions-Policy" in text:
            self.console.append(f"{self.page.url}: {text}")

    def is_html(self, address: str) -> bool:
        """Files (records, policies) are downloads, not pages: ask before navigating."""
        response = self.context.request.get(f"{self.base_url}{address}", max_redirects=0)
        return response.status == 200 and response.headers["content-type"].startswith("text/html")

    def visit(self, address: str) -> list[str]:
        response = self.page.goto(f"{self.base_url}{address}")
        assert response is not None and response.status == 200, (address, response)
        assert "content-security-policy" in response.all_headers(), address
        self.page.wait_for_load_state("load")
        return [f"{address}: {v}" for v in self.page.evaluate("window.__cspViolations")]


def admin_pages() -> list[str]:
    """Every registered model's list, add form and the change form of its first object."""
    addresses = []
    for model in admin.site._registry:
        opts = model._meta
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        # A read-only model's add form answers 403: is_html() leaves it out.
        addresses += [reverse(f"{prefix}_changelist"), reverse(f"{prefix}_add")]
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            addresses.append(reverse(f"{prefix}_change", args=[first.pk]))
    return addresses


def test_no_page_violates_the_content_security_policy(new_context, live_server, world):
    pages = html_pages(world)
    seen = {key for key, _, _ in pages}
    # The pages the brief of this test names must be among them (the matrix could lose one).
    for key in (
        "login",
        "dashboard",
        "deployment_detail",
        "role_detail",
        "team_list",
        "team_detail",
        "deployment_audit",
        "item_history",
        "probe_run_detail",
        "record_verify",
        "token_list",
        "probe_catalogue",
        "template_list",
        "template_detail",
        "admin",
        "api-v1:openapi-view",
    ):
        assert key in seen, f"{key} is not visited"

    browsers: dict[str, Watched] = {}

    def browser_of(user) -> Watched:
        name = user.username if user else ""
        if name not in browsers:
            browsers[name] = Watched(new_context, live_server.url, user)
        return browsers[name]

    violations, visited = [], []
    for key, address, principal in pages:
        row = MATRIX[key]
        user = None if principal == "anonymous" else _user(row, principal, world)
        browser = browser_of(user)
        if not browser.is_html(address):
            continue
        violations += browser.visit(address)
        visited.append(key)

    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    admin_browser = browser_of(superuser)
    for address in admin_pages():
        if admin_browser.is_html(address):
            violations += admin_browser.visit(address)
            visited.append(address)

    console = [line for browser in browsers.values() for line in browser.console]
    assert not violations, "\n".join(violations)
    assert not console, "\n".join(console)
    # Records and policy files are downloads; everything else was a page.
    assert {"record_download", "record_draft"}.isdisjoint(visited)
    assert len(visited) > 30, visited


def test_saving_an_item_through_htmx_works_under_the_policy(new_context, live_server, world):
    # The items saved are Security's: only its holders change them.
    browser = Watched(new_context, live_server.url, world.users["security"])
    page: Page = browser.page
    assert browser.visit(reverse("deployment_detail", kwargs={"pk": world.draft.pk})) == []
    # htmx's own <style> for indicators stays out (htmx-config in base.html).
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert page.locator("head style").count() == 0

    # A status saves itself (static/js/app.js sends the event the form's hx-trigger awaits).
    iam = item_article(page, "IAM Policies")
    with page.expect_response(is_item_post) as saved:
        status_label(iam, "Done").click()
    assert saved.value.status == 200
    expect(iam.locator(".status-pill")).to_have_text("Done")
    item = ChecklistItem.objects.get(section__deployment=world.draft, title="IAM Policies")
    assert item.status == ItemStatus.DONE
    # The out-of-band progress bar took its new width from a class, not a style attribute.
    expect(page.locator("#overall-progress .bar-done")).to_have_class(re.compile(r"\bpct-[1-9]"))

    # "Not applicable" does not save by itself: it waits for the reason.
    pentest = item_article(page, "Penetration Test")
    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else 0)
    status_label(pentest, "Not applicable").click()
    expect(pentest.get_by_label("Why it does not apply")).to_be_focused()
    page.wait_for_timeout(1_200)  # past the 800 ms the trigger waits
    assert posts == []

    violations = page.evaluate("window.__cspViolations")
    assert violations == [], violations
    assert browser.console == [], browser.console


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_api_docs_in_use_stay_inside_the_policy(new_context, live_server, world, scheme):
    # Swagger UI draws its copy, select and toggle icons from data: URLs, which img-src
    # refuses, and only once an operation is opened: static/css/api-docs.css serves them,
    # and their light-on-dark copies in its dark theme.
    browser = Watched(new_context, live_server.url, scheme=scheme)
    page: Page = browser.page
    assert browser.visit(reverse("api-v1:openapi-view")) == []
    # Listing deployments: its parameters include a choice (the state), a select.
    operation = page.locator(".opblock-get").filter(
        has=page.locator('.opblock-summary-path[data-path="/api/v1/deployments"]')
    )
    operation.first.locator(".opblock-summary-control").click()
    operation.first.get_by_role("button", name="Try it out").click()
    operation.first.get_by_role("button", name="Execute").click()
    expect(operation.first.locator(".live-responses-table")).to_be_visible()
    expect(operation.first.locator(".copy-to-clipboard button").first).to_be_visible()
    page.locator(".models .model-toggle, .models .json-schema-2020-12-accordion").first.click()

    violations = page.evaluate("window.__cspViolations")
    assert violations == [], violations
    assert browser.console == [], browser.console
    # Each icon is a file of this site, loaded rather than refused.
    icon = page.evaluate(
        "getComputedStyle(document.querySelector('.copy-to-clipboard button')).backgroundImage"
    )
    assert "/static/img/api-docs/copy.svg" in icon, icon
    arrow = page.evaluate(
        "getComputedStyle(document.querySelector('.opblock select')).backgroundImage"
    )
    expected = "select-dark.svg" if scheme == "dark" else "select.svg"
    assert f"/static/img/api-docs/{expected}" in arrow, arrow
    # The system's scheme changing while the page is open: Swagger UI's theme follows it.
    dark_theme = re.compile(r"\bdark-mode\b")
    if scheme == "dark":
        page.emulate_media(color_scheme="light")
        expect(page.locator("html")).not_to_have_class(dark_theme)
    else:
        page.emulate_media(color_scheme="dark")
        expect(page.locator("html")).to_have_class(dark_theme)
