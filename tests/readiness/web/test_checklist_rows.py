"""The checklist page as compact rows (issue 17, point 3): filters and search kept in the
URL and applied by the server, the probe result chips as filters, an item's own page (the
row's card without JavaScript), the bulk status change, and queries flat in the items."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.checklists import services, targets
from readiness.checklists.models import ChecklistItem, DecisionSource, ItemStatus
from readiness.evidence.services import Upload, evidence_upload
from readiness.probe_runs import selectors as probe_run_selectors
from readiness.probe_runs.models import ProbeResult, ProbeRun, ProbeRunState
from signoff import presenters
from signoff.lifecycle.services import waiver_grant
from signoff.signatures.selectors import standings
from tests.factories import UserFactory, make_deployment
from tests.readiness.api import samples
from tests.readiness.web.conftest import HTMX, detail_url, item_form, item_of, save_item, text
from tests.signoff_helpers import give_role

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<li class="item-row" id="row-(\d+)">')


def shown(response) -> set[str]:
    """The titles of the rows a page lists."""
    ids = [int(pk) for pk in ROW.findall(text(response))]
    return set(ChecklistItem.objects.filter(pk__in=ids).values_list("title", flat=True))


def finished_run(deployment, statuses: dict[str, str]) -> ProbeRun:
    """A finished run with one result per item title: {title: probe status}."""
    run = ProbeRun.objects.create(
        deployment=deployment,
        state=ProbeRunState.SUCCEEDED,
        regions=["us-east-1"],
        accounts=[{"account_id": "123456789012", "regions": ["us-east-1"]}],
        total=len(statuses),
        completed=len(statuses),
        finished_at=timezone.now(),
    )
    for number, (title, status) in enumerate(statuses.items()):
        item = item_of(deployment, title)
        ProbeResult.objects.create(
            run=run,
            item=item,
            probe_key=f"test.probe{number}",
            account_id="123456789012",
            region="us-east-1",
            section_title=item.section.title,
            item_title=title,
            title="A test probe",
            severity="high",
            state="done",
            status=status,
            summary=f"{title}: {status}",
        )
    return run


def probe_sets(deployment, title, status):
    services.item_set_by_machine(
        item=item_of(deployment, title),
        status=status,
        source=DecisionSource.PROBE,
        reason="the probe says so",
        deployment=deployment,
    )


# The rows


def test_the_page_lists_compact_rows_without_a_single_form_widget(member_client, deployment):
    response = member_client.get(detail_url(deployment))
    body = text(response)
    assert len(ROW.findall(body)) == 56
    assert 'class="item-form"' not in body
    assert 'type="radio"' not in body
    assert len(response.content) < 100_000


def test_each_row_says_title_owner_status_and_who_changed_it_when(
    member_client, member, deployment
):
    save_item(item_of(deployment, "MFA"), member, status=ItemStatus.FAILED, note="no MFA yet")
    body = text(member_client.get(detail_url(deployment)))
    mfa = item_of(deployment, "MFA")
    row = body[body.index(f'id="row-{mfa.pk}"') :]
    row = row[: row.index("</li>")]
    assert "MFA" in row and "Security" in row and "Failed" in row and "Lee Tran" in row
    assert mfa.updated_at.strftime("%Y-%m-%d %H:%M") in row


def test_a_row_opens_to_a_link_to_the_items_own_page_and_htmx_fetches_the_card(
    member_client, deployment
):
    item = item_of(deployment, "MFA")
    url = reverse("item_update", args=[deployment.pk, item.pk])
    body = text(member_client.get(detail_url(deployment)))
    assert f'hx-get="{url}" hx-trigger="toggle once from:closest details"' in body
    assert f'<a href="{url}">Open “MFA”</a>' in body
    fragment = member_client.get(url, headers=HTMX)
    assert b"<html" not in fragment.content
    assert f'id="item-{item.pk}"'.encode() in fragment.content
    assert b'class="item-form"' in fragment.content


def test_the_items_own_page_works_without_javascript(member_client, member, deployment):
    item = item_of(deployment, "MFA")
    url = reverse("item_update", args=[deployment.pk, item.pk])
    page = member_client.get(url)
    assert page.status_code == 200 and b"<html" in page.content
    assert b'class="item-form"' in page.content
    assert f'action="{url}"'.encode() in page.content
    saved = member_client.post(url, item_form(item, status=ItemStatus.DONE))
    assert saved.status_code == 302
    assert saved["Location"] == f"{detail_url(deployment)}#row-{item.pk}"


def test_an_invalid_plain_post_shows_the_items_own_page_with_the_error(member_client, deployment):
    item = item_of(deployment, "MFA")
    url = reverse("item_update", args=[deployment.pk, item.pk])
    response = member_client.post(url, item_form(item, status=ItemStatus.NOT_APPLICABLE))
    assert response.status_code == 400
    assert "Say why this item does not apply." in text(response)
    assert not ROW.findall(text(response))  # the item's page, not the whole checklist


def test_an_htmx_save_on_the_checklist_swaps_the_rows_summary_too(member_client, deployment):
    item = item_of(deployment, "MFA")
    url = reverse("item_update", args=[deployment.pk, item.pk])
    response = member_client.post(
        url,
        item_form(item, status=ItemStatus.FAILED),
        headers={**HTMX, "HX-Current-URL": f"http://testserver{detail_url(deployment)}?show=open"},
    )
    body = text(response)
    assert f'<summary class="row-summary status-failed" id="row-{item.pk}-summary"' in body
    assert 'hx-swap-oob="true"' in body


def swapped(body: str, element_id: str) -> str:
    """The element of that id in a page or a save's answer, its out-of-band mark taken off."""
    match = re.search(rf'<(div|summary) [^>]*id="{element_id}"[^>]*>.*?</\1>', body, re.DOTALL)
    assert match, element_id
    return match.group(0).replace(' hx-swap-oob="true"', "")


def test_a_save_swaps_in_its_waiver_probe_chips_and_flags_as_the_card_and_row_show_them(
    member_client, member, deployment
):
    save_item(item_of(deployment, "Unit Tests"), member, status=ItemStatus.FAILED)
    finished_run(deployment, {"Unit Tests": "pass"})
    waiver_grant(
        item=item_of(deployment, "Unit Tests"),
        user=member,
        reason="accepted until the audit",
        expires_at=timezone.now() + timedelta(days=7),
    )
    evidence_upload(  # 85% coverage against a person's failed: CI evidence disagrees
        deployment=deployment,
        user=member,
        kind="cobertura",
        upload=Upload("coverage.xml", samples.cobertura(850, 1000)),
    )
    item = item_of(deployment, "Unit Tests")
    url = reverse("item_update", args=[deployment.pk, item.pk])
    saved = text(
        member_client.post(
            url,
            item_form(item, note="still done"),
            headers={**HTMX, "HX-Current-URL": f"http://testserver{detail_url(deployment)}"},
        )
    )
    card = text(member_client.get(url, headers=HTMX))
    page = text(member_client.get(detail_url(deployment)))
    decision = swapped(saved, f"item-{item.pk}-decision")
    assert "Waived until" in decision and "Probe disagrees" in decision
    assert decision == swapped(card, f"item-{item.pk}-decision")
    assert swapped(saved, f"item-{item.pk}-head") == swapped(card, f"item-{item.pk}-head")
    row = swapped(saved, f"row-{item.pk}-summary")
    for flag in ("probe-chip probe-pass", "Probe disagrees", "CI evidence disagrees", "Waived"):
        assert flag in row
    assert row == swapped(page, f"row-{item.pk}-summary")


@pytest.mark.parametrize("newer", ["partial", "cancelled", "failed", "none"])
def test_a_saved_items_results_are_those_of_the_run_the_card_shows(deployment, newer):
    older = finished_run(deployment, {"MFA": "pass"})
    ProbeRun.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1))
    if newer != "none":
        run = finished_run(deployment, {"MFA": "fail", "Health Checks": "fail"})
        changes = {
            "partial": {"partial": True},
            "cancelled": {"state": ProbeRunState.CANCELLED},
            "failed": {"state": ProbeRunState.FAILED},
        }[newer]
        ProbeRun.objects.filter(pk=run.pk).update(**changes)
    mfa = item_of(deployment, "MFA")
    card = probe_run_selectors.results_by_item(
        probe_run_selectors.latest_finished_run(deployment), item_ids=[mfa.pk]
    )[mfa.pk]
    saved = probe_run_selectors.latest_result_statuses(deployment, item_id=mfa.pk)
    assert saved == [(r.probe_key, r.status, r.state) for r in card]
    assert [r.status for r in saved] == ["fail" if newer == "failed" else "pass"]


# Filters and search


def test_filters_list_only_their_items_and_count_each(member_client, member, deployment):
    save_item(item_of(deployment, "MFA"), member, status=ItemStatus.FAILED)
    save_item(item_of(deployment, "Load Testing"), member, status=ItemStatus.DONE)
    failed = member_client.get(detail_url(deployment), {"show": "failed"})
    assert shown(failed) == {"MFA"}
    body = text(failed)
    assert 'href="?show=failed" aria-current="page">Failed <span class="num">1</span>' in body
    assert 'href="?show=open">Open <span class="num">54</span>' in body
    assert "Showing 1 of 56 items" in body
    open_items = shown(member_client.get(detail_url(deployment), {"show": "open"}))
    assert len(open_items) == 54 and "MFA" not in open_items and "Load Testing" not in open_items


def test_mine_lists_the_items_of_the_roles_the_reader_holds(client, team, deployment):
    tia = UserFactory(username="tia")
    give_role(tia, team, "tech-lead")
    client.force_login(tia)
    mine = shown(client.get(detail_url(deployment), {"show": "mine"}))
    tech_lead_items = set(
        ChecklistItem.objects.filter(
            section__deployment=deployment, owner_role__slug="tech-lead"
        ).values_list("title", flat=True)
    )
    assert mine == tech_lead_items and "Load Testing" in mine and "MFA" not in mine


def test_probe_disagrees_and_overridden_filters(member_client, member, deployment):
    # MFA: a person marked it done, the latest run failed it.
    save_item(item_of(deployment, "MFA"), member, status=ItemStatus.DONE)
    # Health Checks: a probe failed it and a person overrode that with a reason.
    probe_sets(deployment, "Health Checks", ItemStatus.FAILED)
    save_item(
        item_of(deployment, "Health Checks"),
        member,
        status=ItemStatus.DONE,
        reason="the probe read the staging balancer",
    )
    finished_run(deployment, {"MFA": "fail", "Health Checks": "pass"})
    disagrees = member_client.get(detail_url(deployment), {"show": "disagrees"})
    assert shown(disagrees) == {"MFA"}
    assert "Probe disagrees" in text(disagrees)
    overridden = member_client.get(detail_url(deployment), {"show": "overridden"})
    assert shown(overridden) == {"Health Checks"}


def test_a_note_edit_after_an_override_keeps_the_item_overridden(member_client, member, deployment):
    probe_sets(deployment, "Health Checks", ItemStatus.FAILED)
    save_item(item_of(deployment, "Health Checks"), member, note="looking", reason="")
    assert not shown(member_client.get(detail_url(deployment), {"show": "overridden"}))
    save_item(item_of(deployment, "Health Checks"), member, status=ItemStatus.DONE, reason="fixed")
    save_item(item_of(deployment, "Health Checks"), member, note="fixed on Monday")
    overridden = shown(member_client.get(detail_url(deployment), {"show": "overridden"}))
    assert overridden == {"Health Checks"}


def test_waived_lists_items_with_a_waiver_in_force(member_client, member, deployment):
    waiver_grant(
        item=item_of(deployment, "MFA"),
        user=member,
        reason="accepted until the audit",
        expires_at=timezone.now() + timedelta(days=7),
    )
    assert shown(member_client.get(detail_url(deployment), {"show": "waived"})) == {"MFA"}


def test_search_matches_every_word_in_title_description_section_and_owner(
    member_client, deployment
):
    def search(q):
        return shown(member_client.get(detail_url(deployment), {"q": q}))

    assert search("mfa") == {"MFA"}
    assert search("MFA security") == {"MFA"}
    assert search("mfa devops") == set()
    assert "Health Checks" in search("load balancer")  # its description
    security = search("security")
    assert "MFA" in security and "IAM Policies" in security


def test_filters_and_search_combine_and_stay_in_the_links(member_client, member, deployment):
    save_item(item_of(deployment, "MFA"), member, status=ItemStatus.FAILED)
    save_item(item_of(deployment, "Health Checks"), member, status=ItemStatus.FAILED)
    response = member_client.get(detail_url(deployment), {"show": "failed", "q": "mfa"})
    assert shown(response) == {"MFA"}
    body = text(response)
    assert 'href="?show=open&amp;q=mfa"' in body  # a filter link keeps the search
    assert 'name="show" value="failed"' in body  # the search form keeps the filter
    assert 'value="mfa"' in body


def test_a_filter_matching_nothing_says_so(member_client, deployment):
    response = member_client.get(detail_url(deployment), {"show": "failed"})
    assert response.status_code == 200 and not shown(response)
    assert "No item matches these filters." in text(response)


@pytest.mark.parametrize(
    "query",
    [
        {"show": "everything"},
        {"probe": "maybe"},
        {"q": "x" * 5000},
        {"q": "a\x00b"},
        {"show": ["failed", "open"]},
    ],
)
def test_odd_filter_values_list_every_item(member_client, deployment, query):
    response = member_client.get(detail_url(deployment), query)
    assert response.status_code == 200
    if "show" in query and isinstance(query["show"], list):
        return  # the last value wins, as Django reads a repeated parameter
    assert len(shown(response)) == 56


# The probe chips


def test_probe_chips_filter_the_items_by_result(member_client, member, deployment):
    targets.deployment_set_aws_target(
        deployment=deployment,
        user=member,
        accounts=[targets.AccountSpec(account_id="123456789012", regions=["us-east-1"])],
    )
    finished_run(deployment, {"MFA": "fail", "IAM Policies": "pass", "Health Checks": "error"})
    assert shown(member_client.get(detail_url(deployment), {"probe": "fail"})) == {"MFA"}
    assert shown(member_client.get(detail_url(deployment), {"probe": "error"})) == {"Health Checks"}
    body = text(member_client.get(detail_url(deployment)))
    assert f'href="{detail_url(deployment)}?probe=fail"' in body  # the run's result chip
    assert f'href="{detail_url(deployment)}?probe=pass"' in body


# Bulk


def bulk_url(deployment, query: str = "") -> str:
    return reverse("items_bulk", args=[deployment.pk]) + (f"?{query}" if query else "")


def test_bulk_sets_the_items_and_returns_to_the_same_filters(member_client, member, deployment):
    mfa, health = item_of(deployment, "MFA"), item_of(deployment, "Health Checks")
    response = member_client.post(
        bulk_url(deployment, "show=open&q=a"),
        {"items": [mfa.pk, health.pk], "status": "done", "reason": "checked together"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"{detail_url(deployment)}?show=open&q=a"
    assert {item_of(deployment, t).status for t in ("MFA", "Health Checks")} == {"done"}
    events = AuditEvent.objects.filter(action="item.updated")
    assert {event.object_id for event in events} == {str(mfa.pk), str(health.pk)}
    page = member_client.get(response["Location"])
    assert "Set 2 items to Done." in text(page)


def test_a_refused_bulk_change_says_why_changes_nothing_and_keeps_the_selection(
    client, team, deployment
):
    tia = UserFactory(username="tia")
    give_role(tia, team, "tech-lead")
    client.force_login(tia)
    load, mfa = item_of(deployment, "Load Testing"), item_of(deployment, "MFA")
    response = client.post(
        bulk_url(deployment),
        {"items": [load.pk, mfa.pk], "status": "done", "reason": "looks fine"},
    )
    assert response.status_code == 403
    body = text(response)
    assert "Nothing was changed: “MFA” is owned by Security" in body
    assert re.search(rf'value="{load.pk}" form="bulk-form"[^>]*checked', body)
    assert {item_of(deployment, t).status for t in ("MFA", "Load Testing")} == {"open"}
    assert not AuditEvent.objects.filter(action="item.updated").exists()
    # Security's item has no box for her to tick at all.
    assert not re.search(rf'value="{mfa.pk}" form="bulk-form"', body)


def test_bulk_without_a_reason_or_items_is_400(member_client, deployment):
    mfa = item_of(deployment, "MFA")
    no_reason = member_client.post(
        bulk_url(deployment), {"items": [mfa.pk], "status": "done", "reason": " "}
    )
    assert no_reason.status_code == 400
    assert "Say why these items change." in text(no_reason)
    nothing = member_client.post(bulk_url(deployment), {"status": "done", "reason": "x"})
    assert nothing.status_code == 400
    assert "Select the items to change first." in text(nothing)
    assert item_of(deployment, "MFA").status == "open"


def test_bulk_with_an_item_of_another_deployment_is_400(member_client, member, team, deployment):
    other = make_deployment(user=member, team=team, service="ledger")
    response = member_client.post(
        bulk_url(deployment),
        {"items": [item_of(other, "MFA").pk], "status": "done", "reason": "x"},
    )
    assert response.status_code == 400
    assert item_of(other, "MFA").status == "open"


# Queries


def queries_of(request) -> int:
    with CaptureQueriesContext(connection) as context:
        response = request()
    assert response.status_code == 200
    return len(context.captured_queries)


@pytest.mark.parametrize(
    "query",
    [{}, {"show": "failed"}, {"show": "overridden", "q": "mfa"}, {"probe": "fail"}],
    ids=["all", "failed", "overridden+search", "probe"],
)
def test_filtered_page_queries_do_not_grow_with_the_items(member_client, member, team, query):
    small = make_deployment(user=member, team=team, service="small")
    large = make_deployment(user=member, team=team, service="large")
    ChecklistItem.objects.filter(section__deployment=small).exclude(
        pk__in=ChecklistItem.objects.filter(section__deployment=small).order_by("pk")[:10]
    ).delete()
    for deployment in (small, large):
        for title in ("MFA", "Health Checks"):
            if ChecklistItem.objects.filter(section__deployment=deployment, title=title).exists():
                probe_sets(deployment, title, ItemStatus.FAILED)
        finished_run(deployment, {"MFA": "fail"})

    def page(deployment):
        return lambda: member_client.get(detail_url(deployment), query)

    page(small)()
    assert queries_of(page(small)) == queries_of(page(large))


# The sign-off block reuses what the rows read


def test_the_sign_off_block_binds_what_the_rows_read_as_its_own_read_would(member, deployment):
    """The page's standings take the items, waivers in force and newest CI evidence its rows
    read (DeploymentReads) rather than reading them again: the same states and digests."""
    finished_run(deployment, {"MFA": "fail", "Health Checks": "pass"})
    waiver_grant(
        item=item_of(deployment, "MFA"),
        user=member,
        reason="accepted until the audit",
        expires_at=timezone.now() + timedelta(days=7),
    )
    evidence_upload(
        deployment=deployment,
        user=member,
        kind="cobertura",
        upload=Upload("coverage.xml", samples.cobertura(850, 1000)),
    )
    page = presenters.checklist_context(deployment, user=member)["standings"]
    own = standings([deployment])[deployment.pk]
    assert [(s.role.pk, s.state, s.digest) for s in page] == [
        (s.role.pk, s.state, s.digest) for s in own
    ]
    bound = json.dumps([s.state for s in page])
    assert '"ci_evidence": {' in bound and '"waiver": {' in bound and "test.probe0" in bound


@pytest.mark.parametrize("newest", ["errors", "partial", "none"])
def test_the_sign_off_block_binds_the_latest_run_the_rows_read_as_its_own_read_would(
    member, deployment, newest
):
    """The rows' read of the newest run gives the standings its results too: an errored
    result keeps the verdict before it, and a newer partial run (the rows then read the
    run before it) or no run at all bind what the standings' own read binds."""
    if newest != "none":
        finished_run(deployment, {"MFA": "fail", "Health Checks": "pass"})
    if newest == "errors":
        finished_run(deployment, {"MFA": "error", "Health Checks": "fail"})
    if newest == "partial":
        partial = finished_run(deployment, {"MFA": "pass"})
        ProbeRun.objects.filter(pk=partial.pk).update(partial=True)
    page = presenters.checklist_context(deployment, user=member)["standings"]
    own = standings([deployment])[deployment.pk]
    assert [(s.role.pk, s.state, s.digest) for s in page] == [
        (s.role.pk, s.state, s.digest) for s in own
    ]
    bound = json.dumps([s.state for s in page])
    assert ('"status": "error"' in bound) is False
    assert ('"status": "fail"' in bound) is (newest != "none")


def test_rows_show_the_newest_whole_run_not_a_newer_partial_one(member_client, deployment):
    """The panel reports the newest run; the rows' chips come from the newest run over the
    whole target (finished_runs), never from a newer partial run."""
    finished_run(deployment, {"MFA": "pass"})
    partial = finished_run(deployment, {"MFA": "fail"})
    ProbeRun.objects.filter(pk=partial.pk).update(partial=True)
    row = text(member_client.get(detail_url(deployment)))
    mfa = row[row.index(f'id="row-{item_of(deployment, "MFA").pk}"') :]
    chips = mfa[: mfa.index("</summary>")]
    assert "probe-pass" in chips and "probe-fail" not in chips


def test_rows_escape_what_people_typed_on_the_page_and_in_a_saves_swap(
    member_client, member, deployment
):
    """The rows are built as strings in the presenter, not by the template engine: each value
    a person or a template author wrote is escaped there, on the page and in a save's swap."""
    item = item_of(deployment, "MFA")
    ChecklistItem.objects.filter(pk=item.pk).update(
        title='MFA <img src=x onerror="alert(1)">', qualifier="<i>q</i> & r"
    )
    member.first_name, member.last_name = "<b>Lee</b>", "Tran & Co"
    member.save(update_fields=["first_name", "last_name"])
    item.refresh_from_db()
    save_item(item, member, status=ItemStatus.FAILED, note="no MFA yet")
    page = text(member_client.get(detail_url(deployment)))
    url = reverse("item_update", args=[deployment.pk, item.pk])
    item.refresh_from_db()
    swap = text(
        member_client.post(
            url,
            item_form(item, status=ItemStatus.DONE),
            headers={**HTMX, "HX-Current-URL": f"http://testserver{detail_url(deployment)}"},
        )
    )
    for body in (page, swap):
        row = body[body.index(f'id="row-{item.pk}') :]
        row = row[: row.index("</summary>")]
        assert "MFA &lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in row
        assert "&lt;i&gt;q&lt;/i&gt; &amp; r" in row
        assert "&lt;b&gt;Lee&lt;/b&gt; Tran &amp; Co" in row
        assert "<img" not in row and "<i>" not in row and "<b>" not in row
    assert 'aria-label="Select “MFA &lt;img src=x onerror=&quot;alert(1)&quot;&gt;”"' in page
