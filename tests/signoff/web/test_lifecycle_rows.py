"""The sign-off table's rows, built in Python (signoff.presenters.standing_rows_html): the
same HTML, byte for byte, as the template loop they replaced, kept here, rendered over the
standings with every change line made; on a deployment with every kind of row (stale with
more lines than shown and with fewer, lines attributed to a person, fresh with a comment,
revoked, not signed with blockers) and text to escape."""

from pathlib import Path

import pytest
from django.template import engines
from django.test import Client
from django.urls import reverse

from readiness.checklists import services as readiness_services
from readiness.checklists.models import ChecklistItem, ItemStatus
from signoff import presenters
from signoff.lifecycle import services
from signoff.signatures.models import SignOff
from signoff.signatures.selectors import read_changes, standings
from tests.factories import make_deployment
from tests.signoff.lifecycle.test_drift import _approved, _open_ssh_to_the_world, _reprobe
from tests.signoff_helpers import complete_items, role, sign, signers_for

pytestmark = pytest.mark.django_db

# signoff/lifecycle.html's rows before they were built in Python.
TEMPLATE_ROWS = (Path(__file__).parent / "lifecycle_rows_template.txt").read_text().strip()


@pytest.fixture
def every_kind_of_row(member, team):
    signers = signers_for(team)
    deployment = make_deployment(user=member, team=team)
    complete_items(deployment, "tech-lead")
    complete_items(deployment, "devops")
    complete_items(deployment, "security")
    services.signoff_request(deployment=deployment, user=signers["tech-lead"])
    for slug in ("tech-lead", "devops"):
        sign(deployment, signers[slug], slug)
    sign(
        deployment,
        signers["security"],
        "security",
        meaning="approve_with_conditions",
        comment='Rotate <keys> & "secrets" within a week; ' + "then audit them again. " * 6,
    )
    devops = SignOff.objects.filter(deployment=deployment, role=role("devops")).latest("sequence")
    services.signoff_revoke(signoff=devops, user=signers["devops"], reason="Wrong build")
    # Tech Lead: more changes than the row shows, some by a person (attributed, linked).
    owned = list(
        ChecklistItem.objects.filter(
            section__deployment=deployment, owner_role=role("tech-lead")
        ).order_by("section__position", "position")
    )
    assert len(owned) > 3
    for number, item in enumerate(owned[:4]):
        readiness_services.item_update(
            item=item,
            user=signers["tech-lead"],
            expected_version=item.version,
            status=ItemStatus.OPEN if number % 2 else ItemStatus.DONE,
            note=f'<b>checked</b> & "noted" {number}',
            evidence_url="",
            na_reason="",
            reason="re-checked after the <review>",
        )
    deployment.refresh_from_db()
    return deployment, signers


def _template_rows(deployment, user) -> str:
    """The rows as the template rendered them, every change line made."""
    found = standings([deployment])[deployment.pk]
    held = presenters.roles_of(user=user, team=deployment.team)
    for standing in found:
        standing.held = standing.role.pk in held
    read_changes([standing for standing in found if standing.status == "stale"])
    template = engines["django"].from_string(TEMPLATE_ROWS)
    return template.render({"standings": found, "deployment": deployment})


def test_the_rows_are_the_html_the_template_rendered(every_kind_of_row, member):
    deployment, signers = every_kind_of_row
    user = signers["tech-lead"]
    context = presenters.lifecycle_context(deployment, user=user)
    rows = str(context["standing_rows_html"])
    statuses = {standing.role.slug: standing.status for standing in context["standings"]}
    assert statuses == {
        "tech-lead": "stale",
        "security": "approve_with_conditions",
        "devops": "revoked",
        "product": "missing",
    }
    tech_lead = next(s for s in context["standings"] if s.role.slug == "tech-lead")
    assert tech_lead.change_count > 3
    assert any(line.by for line in tech_lead.first_change_lines(3))
    assert "&lt;b&gt;checked&lt;/b&gt; &amp; &quot;noted&quot;" in rows
    assert "more on the Tech Lead page" in rows
    assert rows == _template_rows(deployment, user)


def test_a_stale_row_with_no_more_lines_than_shown_is_the_templates(every_kind_of_row):
    deployment, signers = every_kind_of_row
    item = (
        ChecklistItem.objects.filter(section__deployment=deployment, owner_role=role("security"))
        .order_by("section__position", "position")
        .first()
    )
    readiness_services.item_update(
        item=item,
        user=signers["security"],
        expected_version=item.version,
        status=item.status,
        note="one change",
        evidence_url="",
        na_reason="",
        reason="a note",
    )
    deployment.refresh_from_db()
    user = signers["security"]
    context = presenters.lifecycle_context(deployment, user=user)
    security = next(s for s in context["standings"] if s.role.slug == "security")
    assert security.status == "stale" and security.change_count == 1
    rows = str(context["standing_rows_html"])
    assert "more on the Security page" not in rows
    assert rows == _template_rows(deployment, user)


def test_the_first_lines_and_count_are_those_of_every_line_made(every_kind_of_row):
    deployment, signers = every_kind_of_row
    context = presenters.lifecycle_context(deployment, user=signers["tech-lead"])
    tech_lead = next(s for s in context["standings"] if s.role.slug == "tech-lead")
    first = tech_lead.first_change_lines(3)
    count = tech_lead.change_count
    everything = tech_lead.change_lines  # made now, in full
    assert count == len(everything) > 3
    assert first == everything[:3]


def test_the_checklist_page_shows_the_rows(every_kind_of_row):
    deployment, signers = every_kind_of_row
    client = Client()
    client.force_login(signers["tech-lead"])
    page = client.get(reverse("deployment_detail", args=[deployment.pk])).content.decode()
    assert _template_rows(deployment, signers["tech-lead"]) in page


def test_rows_of_drift_quote_what_fails_as_the_template_did(aws, deployment, team, member):
    signers = _approved(deployment, team, member, aws)
    group = _open_ssh_to_the_world(aws)
    _reprobe()
    deployment.refresh_from_db()
    user = signers["security"]
    context = presenters.lifecycle_context(deployment, user=user)
    security = next(s for s in context["standings"] if s.role.slug == "security")
    assert security.status == "stale"
    # The failing finding's detail, read for the line shown.
    assert any(group in str(line) for line in security.first_change_lines(3))
    assert str(context["standing_rows_html"]) == _template_rows(deployment, user)
