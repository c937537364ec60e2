"""Four role holders take a deployment from draft to verified in a real browser.

Each person has their own browser context, so their sessions never mix. Set E2E_SHOTS to a
folder (outside the repository) to keep full-page screenshots of the role and checklist pages.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from readiness.audit.models import AuditEvent
from readiness.audit.verification import verify_all
from readiness.checklists.models import ChecklistItem, Deployment, ItemStatus
from readiness.people import display_name
from signoff.signatures.models import SignOff
from tests.e2e.test_checklist_flow import is_item_post, item_article, status_label
from tests.factories import PASSWORD, TeamFactory, make_deployment
from tests.signoff_helpers import complete_items, signers_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

WAIT = 10_000  # ms, for every expect: Playwright's own default is 5 s
APPROVE = re.compile(r"^Approve —")
APPROVE_WITH_CONDITIONS = re.compile(r"^Approve with conditions —")
WAIVER_REASON = "External pen test is booked for Q1; the service is internal-only until then."
CONDITIONS = "The new checkout flag stays off for EU customers until legal signs off."
BACKUP_REASON = "The restore drill after approval failed: the snapshot is older than the RPO."
POST_CHECKS = {
    "Smoke tests passed": ("tech-lead", "All 42 smoke tests green against production."),
    "Monitoring confirmed working": ("devops", "Dashboards and the p99 latency alarm report."),
    "No critical alarms": ("security", "No critical alarm in the first 30 minutes."),
}
SHOTS = Path(os.environ["E2E_SHOTS"]) if os.environ.get("E2E_SHOTS") else None


def shot(page: Page, name: str) -> None:
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def is_sign_post(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/sign/")


def is_waiver_post(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/waivers/")


class Person:
    """One signer in their own browser context."""

    def __init__(self, new_context, base_url: str, user, deployment):
        self.user = user
        self.base_url = base_url
        self.deployment = deployment
        self.page = new_context().new_page()
        self.page.set_default_timeout(WAIT)
        self.page.goto(f"{base_url}/login/")
        self.page.get_by_label("Username").fill(user.username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.get_by_role("heading", level=1, name="Deployments")).to_be_visible(
            timeout=WAIT
        )

    @property
    def checklist_url(self) -> str:
        return f"{self.base_url}/deployments/{self.deployment.pk}/"

    def open_checklist(self) -> Page:
        self.page.goto(self.checklist_url)
        expect(self.page.get_by_role("heading", level=1)).to_contain_text(
            "payments-api", timeout=WAIT
        )
        return self.page

    def open_role(self, slug: str, name: str) -> Page:
        self.page.goto(f"{self.checklist_url}roles/{slug}/")
        expect(self.page.get_by_role("heading", level=1)).to_have_text(
            f"{name} sign-off", timeout=WAIT
        )
        return self.page

    def sign(self, role_name: str, meaning, *, password=PASSWORD, comment="") -> int:
        """Fill the role page's sign form and send it; returns the HTTP status."""
        panel = self.page.locator("#panel")
        panel.get_by_role("radio", name=meaning).check()
        if comment:
            panel.get_by_label("Conditions or reason").fill(comment)
        # The first signature of a session takes the username too (21 CFR 11.200(a)(1)).
        username = panel.get_by_label("Your username")
        if username.count():
            username.fill(self.user.username)
        panel.get_by_label("Your password").fill(password)
        with self.page.expect_response(is_sign_post) as response:
            panel.get_by_role("button", name=f"Sign as {role_name}").click()
        return response.value.status


def checklist_state(page: Page):
    return page.locator(".facts .state")


def role_page_state(page: Page):
    return page.locator(".page-head > .state")


def manifestation(page: Page):
    return page.locator("#signature .manifestation")


def expect_signed(person: Person, role_name: str, meaning_word: str) -> None:
    """The role page's signature line, to the minute, as the database recorded it."""
    line = manifestation(person.page)
    pattern = rf"^{role_name} — {person.user.get_full_name()} — \d{{4}}-\d\d-\d\d \d\d:\d\d UTC — "
    expect(line).to_have_text(re.compile(pattern + re.escape(meaning_word) + "$"), timeout=WAIT)
    signoff = SignOff.objects.get(deployment=person.deployment, role__name=role_name)
    expect(line).to_have_text(
        f"{role_name} — {person.user.get_full_name()} — "
        f"{signoff.signed_at:%Y-%m-%d %H:%M} UTC — {meaning_word}",
        timeout=WAIT,
    )


@pytest.fixture
def team():
    return TeamFactory(name="Payments", slug="payments")


@pytest.fixture
def signers(team):
    return signers_for(team)


@pytest.fixture
def deployment(team, signers):
    deployment = make_deployment(user=signers["tech-lead"], team=team)
    complete_items(deployment)
    pentest = ChecklistItem.objects.filter(section__deployment=deployment, title="Penetration Test")
    assert pentest.update(status=ItemStatus.OPEN) == 1
    return deployment


def test_four_roles_take_a_deployment_from_draft_to_verified(
    new_context, live_server, signers, deployment
):
    base = live_server.url

    # Tech Lead asks for sign-off.
    tech_lead = Person(new_context, base, signers["tech-lead"], deployment)
    page = tech_lead.open_checklist()
    expect(checklist_state(page)).to_have_text("Draft", timeout=WAIT)
    page.get_by_role("button", name="Request sign-off").click()
    expect(page.get_by_role("status")).to_contain_text("Sign-off requested", timeout=WAIT)
    expect(checklist_state(page)).to_have_text("In review", timeout=WAIT)
    lifecycle = page.get_by_role("list", name="Lifecycle")
    expect(lifecycle.locator('[aria-current="step"]')).to_have_text("In review", timeout=WAIT)

    # Security: refused while Penetration Test is open, waives it, mistypes, then signs.
    security = Person(new_context, base, signers["security"], deployment)
    page = security.open_checklist()
    expect(page.locator("#signoff-row-security")).to_contain_text("1 blocker", timeout=WAIT)
    page.locator("#signoff-row-security").get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security sign-off", timeout=WAIT)
    blockers = page.locator(".blocker-list > li")
    expect(blockers).to_have_count(1, timeout=WAIT)
    pentest = blockers.filter(has_text="Penetration Test")
    expect(pentest.locator(".status-pill")).to_have_text("open", timeout=WAIT)

    # The first signature of the session asks for the username as well as the password.
    expect(page.locator("#panel").get_by_label("Your username")).to_be_visible(timeout=WAIT)
    assert security.sign("Security", APPROVE) == 400
    expect(page.locator("#panel .error-box")).to_have_text(
        "Security cannot approve while these items are open or failed without a waiver: "
        "Penetration Test (open).",
        timeout=WAIT,
    )
    expect(manifestation(page)).to_have_text("Security — not signed yet.", timeout=WAIT)

    pentest.locator("summary", has_text="Grant a waiver").click()
    pentest.get_by_label("Why the risk is accepted").fill(WAIVER_REASON)
    expires = pentest.get_by_label("Expires at the end of (UTC)")
    expect(expires).to_have_value(re.compile(r"^\d{4}-\d\d-\d\d$"), timeout=WAIT)
    default_expiry = expires.input_value()
    with page.expect_response(is_waiver_post) as granted:
        pentest.get_by_role("button", name="Grant waiver").click()
    assert granted.value.status == 200
    expect(page.locator(".blocker-list")).to_have_count(0, timeout=WAIT)
    expect(page.locator(".blockers")).to_contain_text("None: every item is done", timeout=WAIT)
    waived = page.locator(".waived-list > li")
    expect(waived).to_have_count(1, timeout=WAIT)
    expect(waived).to_contain_text(
        f"Penetration Test open — waived by Security Signer until {default_expiry} 23:59 UTC: "
        + WAIVER_REASON,
        timeout=WAIT,
    )

    assert security.sign("Security", APPROVE, password="Tr0ub4dor&3") == 400
    expect(page.locator("#panel .has-error .error")).to_have_text(
        "That is not your password. Nothing was signed.", timeout=WAIT
    )
    assert not SignOff.objects.exists()
    assert security.sign("Security", APPROVE) == 200
    expect_signed(security, "Security", "approved")
    # Later signatures of the same continuous session take the password alone.
    expect(page.locator("#panel").get_by_label("Your password")).to_be_visible(timeout=WAIT)
    expect(page.locator("#panel").get_by_label("Your username")).to_have_count(0)
    shot(page, "1-security-role-page-signed")

    # DevOps and Tech Lead approve; Product approves with conditions.
    devops = Person(new_context, base, signers["devops"], deployment)
    devops.open_role("devops", "DevOps")
    assert devops.sign("DevOps", APPROVE) == 200
    expect_signed(devops, "DevOps", "approved")

    tech_lead.open_role("tech-lead", "Tech Lead")
    assert tech_lead.sign("Tech Lead", APPROVE) == 200
    expect_signed(tech_lead, "Tech Lead", "approved")

    product = Person(new_context, base, signers["product"], deployment)
    page = product.open_role("product", "Product")
    expect(role_page_state(page)).to_have_text("In review", timeout=WAIT)
    assert product.sign("Product", APPROVE_WITH_CONDITIONS, comment=CONDITIONS) == 200
    expect_signed(product, "Product", "approved with conditions")
    expect(page.locator("#signature .comment")).to_have_text(
        f"Conditions: {CONDITIONS}", timeout=WAIT
    )
    deployment.refresh_from_db()
    assert deployment.state == "approved"
    # The panel is swapped in place; the state badge and the tabs around it come with a reload.
    page.reload()
    expect(role_page_state(page)).to_have_text("Approved", timeout=WAIT)
    tabs = page.get_by_role("navigation", name="Roles")
    for name, label in (
        ("Tech Lead", "approved"),
        ("Security", "approved"),
        ("DevOps", "approved"),
        ("Product", "approved with conditions"),
    ):
        tab = tabs.get_by_role("link", name=re.compile(f"^{name} "))
        expect(tab.locator(".signoff-badge")).to_have_text(label, timeout=WAIT)

    page = tech_lead.open_checklist()
    expect(checklist_state(page)).to_have_text("Approved", timeout=WAIT)
    for slug in ("tech-lead", "security", "devops", "product"):
        expect(page.locator(f"#signoff-row-{slug} .signoff-badge")).to_contain_text(
            "approved", timeout=WAIT
        )
    expect(page.locator("#signoff-row-product")).to_contain_text(CONDITIONS, timeout=WAIT)
    shot(page, "2-checklist-approved")

    # One DevOps edit makes the DevOps sign-off stale (and Product's: it signs the summary).
    # Sign-off was requested and the item was decided: picking a status does not save it
    # yet, the cursor goes to the reason instead, and Save sends both.
    page = devops.open_checklist()
    backup = item_article(page, "Backup Strategy")
    status_label(backup, "Failed").click()
    reason = backup.get_by_label(re.compile("^Why this changes after sign-off was requested"))
    expect(reason).to_be_focused(timeout=WAIT)
    expect(backup.locator(".status-pill")).to_have_text("Done")
    reason.fill(BACKUP_REASON)
    with page.expect_response(is_item_post) as saved:
        backup.get_by_role("button", name="Save").click()
    assert saved.value.status == 200
    expect(backup.locator(".status-pill")).to_have_text("Failed", timeout=WAIT)
    # The item is swapped in place; the sign-off block above it shows the change on reload.
    page.reload()
    expect(checklist_state(page)).to_have_text("In review", timeout=WAIT)
    devops_row = page.locator("#signoff-row-devops")
    expect(devops_row.locator(".signoff-badge")).to_have_text("stale", timeout=WAIT)
    expect(devops_row).to_contain_text("Backup Strategy: done → failed", timeout=WAIT)
    expect(page.locator("#signoff-row-product .signoff-badge")).to_have_text("stale", timeout=WAIT)
    expect(page.locator("#signoff-row-security .signoff-badge")).to_have_text(
        "approved", timeout=WAIT
    )
    shot(page, "3-checklist-stale")

    page = devops.open_role("devops", "DevOps")
    expect(role_page_state(page)).to_have_text("In review", timeout=WAIT)
    stale_box = page.locator("#panel .stale-box")
    expect(stale_box).to_contain_text("Stale — changed since you signed:", timeout=WAIT)
    # Who changed what, when and why.
    expect(stale_box.locator("li")).to_have_text(
        [
            re.compile(
                rf"^Backup Strategy: done → failed — {re.escape(display_name(devops.user))}, "
                rf"\d{{4}}-\d\d-\d\d \d\d:\d\d UTC: “{BACKUP_REASON}”$"
            )
        ],
        timeout=WAIT,
    )
    expect(page.locator("#panel .blocker-list")).to_contain_text("Backup Strategy", timeout=WAIT)
    shot(page, "4-devops-role-page-stale")

    # Setting it back to Done on the role page restores exactly what DevOps signed: the same
    # digest, so the signature is fresh again and the deployment approved, without re-signing.
    backup = item_article(page, "Backup Strategy")
    status_label(backup, "Done").click()
    backup.get_by_label(re.compile("^Why this changes after sign-off")).fill("Drill passed")
    with page.expect_response(is_item_post) as saved:
        backup.get_by_role("button", name="Save").click()
    assert saved.value.status == 200
    # The item save tells the panel to reload itself (checklist-changed).
    expect(stale_box).to_have_count(0, timeout=WAIT)
    expect_signed(devops, "DevOps", "approved")
    expect(page.locator("#panel .blockers")).to_contain_text("None:", timeout=WAIT)
    page.reload()
    expect(role_page_state(page)).to_have_text("Approved", timeout=WAIT)
    assert SignOff.objects.filter(deployment=deployment).count() == 4

    # Tech Lead records the deployment, then three people tick the Post-Deployment Notes.
    page = tech_lead.open_checklist()
    expect(checklist_state(page)).to_have_text("Approved", timeout=WAIT)
    deployed_at = page.get_by_label("Deployed at (UTC)")
    # Typed as 24-hour UTC text, prefilled with now (not the 12-hour datetime-local control).
    expect(deployed_at).to_have_value(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"), timeout=WAIT)
    prefilled = deployed_at.input_value()
    page.get_by_role("button", name="Mark deployed").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Recorded the deployment date.", timeout=WAIT
    )
    expect(checklist_state(page)).to_have_text("Deployed", timeout=WAIT)
    expect(page.locator(".next-step")).to_have_text(
        f"Deployment Date: {prefilled} UTC", timeout=WAIT
    )

    people = {"tech-lead": tech_lead, "devops": devops, "security": security}
    for label, (slug, note) in POST_CHECKS.items():
        page = people[slug].open_checklist()
        check = page.locator(".post-checks > li", has_text=label)
        check.get_by_label(f"What you checked for “{label}”").fill(note)
        check.get_by_role("button", name="Checked").click()
        expect(page.get_by_role("status")).to_contain_text(f"Checked “{label}”.", timeout=WAIT)
        expect(check).to_have_class("checked", timeout=WAIT)
        name = people[slug].user.get_full_name()
        expect(check).to_contain_text(
            re.compile(rf"— {name}, \d{{4}}-\d\d-\d\d \d\d:\d\d UTC: {re.escape(note)}"),
            timeout=WAIT,
        )
    expect(checklist_state(page)).to_have_text("Verified", timeout=WAIT)
    expect(page.locator(".post-checks > li.checked")).to_have_count(3, timeout=WAIT)
    # Each note still names its checker once the last one closed the record.
    for label, (slug, note) in POST_CHECKS.items():
        check = page.locator(".post-checks > li", has_text=label)
        expect(check).to_contain_text(f"— {people[slug].user.get_full_name()}, ", timeout=WAIT)
        expect(check).to_contain_text(note, timeout=WAIT)
    checks = deployment.post_deployment_checks.order_by("position")
    assert [(c.label, c.checked_by) for c in checks] == [
        (label, people[slug].user) for label, (slug, _) in POST_CHECKS.items()
    ]
    shot(page, "5-checklist-verified")

    # The audit trail holds together and tells the story.
    deployment = Deployment.objects.get(pk=deployment.pk)
    assert deployment.state == "verified"
    chain = verify_all()
    assert chain.ok, chain.problem
    events = list(AuditEvent.objects.filter(deployment=deployment).order_by("id"))
    signed = [event.after for event in events if event.action == "signoff.signed"]
    assert [(e["role"], e["printed_name"], e["meaning"]) for e in signed] == [
        ("Security", "Security Signer", "approve"),
        ("DevOps", "Devops Signer", "approve"),
        ("Tech Lead", "Tech-Lead Signer", "approve"),
        ("Product", "Product Signer", "approve_with_conditions"),
    ]
    waivers = [event for event in events if event.action == "waiver.granted"]
    assert [(w.actor, w.after["item"]) for w in waivers] == [
        (signers["security"], "Penetration Test")
    ]
    stale = [event for event in events if event.action == "signoff.stale"]
    assert sorted(SignOff.objects.get(pk=e.object_id).role.slug for e in stale) == [
        "devops",
        "product",
    ]
    states = [
        (event.before["state"], event.after["state"])
        for event in events
        if event.action == "deployment.state_changed"
    ]
    assert states == [
        ("draft", "in_review"),
        ("in_review", "approved"),
        ("approved", "in_review"),
        ("in_review", "approved"),
        ("approved", "deployed"),
        ("deployed", "verified"),
    ]
    verified = next(
        e
        for e in events
        if e.action == "deployment.state_changed" and e.after == {"state": "verified"}
    )
    assert verified.actor == signers["security"]
