"""Every page on a phone and through axe-core, in the light and the dark colour scheme.

The pages are the access matrix's (tests/test_access_matrix.py), as test_csp.py visits them:
each pattern whose plain GET answers someone with an HTML page, seen by that person, with the
matrix's world of data; the in-review deployment also gets a finished probe run whose results
name long ARNs, the verify page is seen with a verdict, and the API docs page (Swagger UI) with
an operation tried and its credentials dialog open. On each page, at 390 by 844:

- the document is no wider than the screen (no sideways scroll on a phone);
- axe-core finds no serious or critical violation (WCAG 2.x A and AA, and best practice);
- every status chip says its status in text, not by colour alone;
- the page follows the colour scheme: its background is dark in the dark one (the API docs
  page's too: Swagger UI's own dark theme, which static/js/api-docs.js turns on).

axe-core comes from the npm registry (tests/e2e/package.json, installed by `make test`). The
pages' Content-Security-Policy refuses inline scripts, so add_script_tag cannot inject it;
page.evaluate runs through the DevTools protocol, which the page's policy does not govern, so
the app's policy stays as strict as it is served.
"""

import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from readiness.probe_runs.models import ProbeResult
from readiness.probe_runs.services import probes_for
from signoff.records import services as records
from tests.factories import PASSWORD
from tests.readiness.project.test_security_headers import html_pages
from tests.test_access_matrix import MATRIX, WORKER_PRINCIPAL, _build_world, _user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PHONE = {"width": 390, "height": 844}
WAIT = 10_000  # ms
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
# What a person on a phone or with a screen reader is stopped by; "moderate" and "minor" are
# best-practice advice (a region without a landmark, say), not barriers.
BARRIERS = {"serious", "critical"}
ACCOUNT = "123456789012"
# As long as real ones get: a service role path and a generated name.
LONG_ARNS = [
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/elasticloadbalancing.amazonaws.com/"
    "AWSServiceRoleForElasticLoadBalancing-payments-ledger-reconciliation-worker",
    f"arn:aws:kms:us-east-1:{ACCOUNT}:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/"
    "payments-ledger-production-internal-alb/50dc6c495c0c9188",
]

# Every element that shows a status with a colour; each must say it in words too.
STATUS_CHIPS = (
    ".status-pill, .probe-chip, .signoff-badge, .state, .badge, .seg input:checked + span,"
    " .lifecycle-steps li.current"
)
# For each chip without text of its own: how the page shows it.
CHIPS_WITHOUT_TEXT = """
(selector) => [...document.querySelectorAll(selector)]
  .filter((chip) => chip.getClientRects().length && !chip.textContent.trim()
                    && !chip.getAttribute("aria-label"))
  .map((chip) => chip.outerHTML.slice(0, 160))
"""
RUN_AXE = """
async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                    "best-practice"]},
    resultTypes: ["violations"],
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
  }));
}
"""
# The colour a page is painted on: the body's, else the root element's (what the canvas takes).
BACKGROUND = """
() => {
  for (const e of [document.body, document.documentElement]) {
    const colour = getComputedStyle(e).backgroundColor;
    if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") return colour;
  }
  return null;
}
"""
# The innermost elements that stick out past the right edge, outside any element that
# scrolls sideways on purpose (the top bar's navigation, a wide findings table).
WIDEST = """
() => {
  const edge = document.documentElement.clientWidth + 0.5;
  const scrolls = (e) => ["auto", "scroll", "hidden", "clip"]
    .includes(getComputedStyle(e).overflowX);
  const contained = (e) => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (scrolls(a)) return true;
    }
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > edge && !contained(e))
    .filter((e) => ![...e.children].some((c) => c.getBoundingClientRect().right > edge))
    .slice(0, 8)
    .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join(".")} right=${
        Math.round(e.getBoundingClientRect().right)}: ${e.textContent.trim().slice(0, 60)}`);
}
"""


@pytest.fixture
def world(settings, tmp_path):
    """The access matrix's world, with long ARNs in its probe run (as test_csp.py's)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.PROBE_WORKER_PRINCIPAL = WORKER_PRINCIPAL
    world = _build_world()
    add_long_arn_results(world)
    return world


def add_long_arn_results(world) -> None:
    """A finished run's results on the in-review checklist: passes listing long ARNs as
    "Checked:", failures with a findings table of them, and the facts a probe read."""
    run = world.run
    results = []
    for index, (probe, item) in enumerate(probes_for(world.review)):
        failed = index % 3 == 0
        results.append(
            ProbeResult(
                run=run,
                item=item,
                probe_key=probe.key,
                region="us-east-1",
                section_title=item.section.title,
                item_title=item.title,
                title=probe.title,
                severity="high",
                actions=list(probe.actions),
                remediation="Attach a `Deny` to `arn:aws:iam::aws:policy/ReadOnlyAccess`.",
                state="done",
                status="fail" if failed else "pass",
                summary=f"{len(LONG_ARNS)} resources read in {ACCOUNT} us-east-1.",
                findings=[
                    {"id": arn, "status": "fail" if failed else "pass", "reason": "not encrypted"}
                    for arn in LONG_ARNS
                ],
                facts={"resources": LONG_ARNS, "policy_arn": LONG_ARNS[0]},
                duration_ms=120,
                attempts=1,
                started_at=timezone.now(),
                finished_at=timezone.now(),
            )
        )
    assert results, "the default template lost its probes"
    ProbeResult.objects.bulk_create(results)
    run.total = run.completed = len(results)
    run.save(update_fields=["total", "completed"])


def luminance(colour: str | None) -> float:
    """WCAG's relative luminance of a computed `rgb(...)` colour; none painted: the canvas's
    default white."""
    if colour is None:
        return 1.0
    red, green, blue = (int(float(part)) / 255 for part in re.findall(r"[\d.]+", colour)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


class Phone:
    """A logged-in phone-sized browser context in one colour scheme."""

    def __init__(self, new_context, base_url: str, scheme: str, user=None):
        self.base_url = base_url
        self.scheme = scheme
        self.context: BrowserContext = new_context(
            viewport=PHONE, color_scheme=scheme, is_mobile=True, has_touch=True
        )
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(WAIT)
        if user is not None:
            self.page.goto(f"{base_url}{reverse('login')}")
            self.page.get_by_label("Username").fill(user.username)
            self.page.get_by_label("Password").fill(PASSWORD)
            self.page.get_by_role("button", name="Log in").click()
            expect(self.page.get_by_role("heading", level=1, name="Deployments")).to_be_visible()

    def is_html(self, address: str) -> bool:
        response = self.context.request.get(f"{self.base_url}{address}", max_redirects=0)
        return response.status == 200 and response.headers["content-type"].startswith("text/html")

    def goto(self, address: str) -> None:
        response = self.page.goto(f"{self.base_url}{address}")
        assert response is not None and response.status == 200, (address, response)
        self.page.wait_for_load_state("load")
        if self.page.locator("#swagger-ui").count():
            # The API docs page renders the schema after it loads: check what it shows.
            shown = self.page.locator("#swagger-ui .information-container, #swagger-ui .errors")
            shown.first.wait_for()

    def problems(self, name: str) -> list[str]:
        """What is wrong with the page shown now, each line naming `name`."""
        page, found = self.page, []
        if page.locator("#swagger-ui .errors").count():
            found.append(f"{name}: Swagger UI refuses the schema: {page.inner_text('#swagger-ui')}")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            found.append(f"{name}: {width} px wide; overflowing: {page.evaluate(WIDEST)}")
        # Dark: near black (the app's #0e131b is 0.006, Swagger UI's #1c2022 0.014); light:
        # near white (#f6f7f9 is 0.93).
        background = page.evaluate(BACKGROUND)
        if (luminance(background) < 0.2) != (self.scheme == "dark"):
            found.append(f"{name}: painted on {background} in the {self.scheme} colour scheme")
        for chip in page.evaluate(CHIPS_WITHOUT_TEXT, STATUS_CHIPS):
            found.append(f"{name}: a status shown by colour alone: {chip}")
        if not page.evaluate("typeof axe !== 'undefined'"):
            page.evaluate(AXE.read_text())
        for violation in page.evaluate(RUN_AXE):
            if violation["impact"] in BARRIERS:
                targets = "; ".join(
                    f"{n['target']} ({n['summary'].splitlines()[-1].strip()})"
                    for n in violation["nodes"][:4]
                )
                found.append(
                    f"{name}: axe {violation['impact']} {violation['id']} "
                    f"({violation['help']}) on {len(violation['nodes'])}: {targets}"
                )
        return found


@pytest.fixture
def signed_record(world, settings, tmp_path):
    """The approved deployment's record, rendered and signed as the worker would."""
    settings.SIGNING_KEY_FILE = tmp_path / "signing" / "key.pem"
    settings.SIGNING_CERT_FILE = tmp_path / "signing" / "cert.pem"
    call_command("create_signing_cert", "--common-name", "Readiness e2e", stdout=io.StringIO())
    return records.record_generate(deployment_id=world.approved.pk)


def verify(phone: Phone, record) -> None:
    """The verify page with its verdict on `record`, uploaded by a member of its team."""
    with record.file.open("rb") as file:
        data = file.read()
    phone.goto(reverse("record_verify"))
    phone.page.locator("input[type=file]").set_input_files(
        files=[{"name": "record.pdf", "mimeType": "application/pdf", "buffer": data}]
    )
    phone.page.get_by_role("button", name="Verify").click()
    expect(phone.page.locator("#verify-result")).to_be_visible()


def api_docs_in_use(phone: Phone) -> list[str]:
    """The API docs page as someone trying the API leaves it: Swagger UI renders an
    operation's parameters, its request and answer, and the credentials dialog only when
    asked, and each brings controls of its own."""
    phone.goto(reverse("api-v1:openapi-view"))
    page, found = phone.page, []
    # Listing deployments: its parameters include a choice (the state), a select.
    operation = page.locator(".opblock-get").filter(
        has=page.locator('.opblock-summary-path[data-path="/api/v1/deployments"]')
    )
    operation.first.locator(".opblock-summary-control").click()
    operation.first.get_by_role("button", name="Try it out").click()
    found += phone.problems("the API docs, an operation tried")
    operation.first.get_by_role("button", name="Execute").click()
    expect(operation.first.locator(".live-responses-table")).to_be_visible()
    found += phone.problems("the API docs, an operation's answer")
    page.locator(".auth-wrapper button.authorize").click()
    expect(page.locator(".modal-ux")).to_be_visible()
    found += phone.problems("the API docs' credentials dialog")
    return found


def test_axe_core_is_installed():
    """`make test` installs it from tests/e2e/package-lock.json; without it nothing is checked."""
    assert AXE.is_file(), f"{AXE} is missing: run `npm ci --prefix tests/e2e` (make test does)"
    lock = json.loads((AXE.parents[2] / "package-lock.json").read_text())
    installed = json.loads((AXE.parent / "package.json").read_text())["version"]
    assert lock["packages"]["node_modules/axe-core"]["version"] == installed


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_fits_a_phone_and_passes_axe(
    new_context,
    live_server,
    world,
    signed_record,
    scheme,
):
    pages = html_pages(world)
    seen = {key for key, _, _ in pages}
    for key in (
        "login",
        "dashboard",
        "deployment_detail",
        "deployment_create",
        "deployment_aws",
        "role_detail",
        "deployment_audit",
        "record_verify",
        "my_signoffs",
        "team_list",
        "team_detail",
        "template_list",
        "template_detail",
        "probe_catalogue",
        "probe_run_detail",
        "item_history",
        "token_list",
    ):
        assert key in seen, f"{key} is not visited"

    phones: dict[str, Phone] = {}

    def phone_of(user) -> Phone:
        name = user.username if user else ""
        if name not in phones:
            phones[name] = Phone(new_context, live_server.url, scheme, user)
        return phones[name]

    problems, visited = [], []
    for key, address, principal in pages:
        row = MATRIX[key]
        user = None if principal == "anonymous" else _user(row, principal, world)
        phone = phone_of(user)
        if not phone.is_html(address):
            continue
        phone.goto(address)
        problems += phone.problems(address)
        visited.append(key)
    # Every role's page, not only the one the matrix visits.
    lead = world.users["tech-lead"]
    for role in ("tech-lead", "security", "devops", "product"):
        address = reverse("role_detail", kwargs={"pk": world.review.pk, "role": role})
        phone_of(lead).goto(address)
        problems += phone_of(lead).problems(address)
    # The checklist with its probe evidence open, as someone reading the ARNs sees it.
    phone = phone_of(lead)
    phone.goto(reverse("deployment_detail", kwargs={"pk": world.review.pk}))
    phone.page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    problems += phone.problems("the checklist, every detail open")
    phone = phone_of(world.users["lee"])
    verify(phone, signed_record)
    problems += phone.problems("the verify page's verdict")
    problems += api_docs_in_use(phone_of(None))

    assert not problems, f"{len(problems)} problems ({scheme}):\n" + "\n".join(problems)
    assert len(visited) >= 20, visited
