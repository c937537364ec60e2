"""Editing an item over HTTP: plain and htmx saves, bad input, conflicts, the item fragment."""

import re

import pytest
from django.utils import timezone

from readiness.checklists.forms import EVIDENCE_URL_MESSAGE
from readiness.checklists.models import ChecklistItem, DecisionSource, ItemChange, ItemStatus
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import (
    ProbeOutcome,
    ProbeResult,
    ProbeResultState,
    ProbeRun,
    ProbeRunState,
)
from tests.readiness.web.conftest import (
    HTMX,
    PLAIN_AND_HTMX,
    detail_url,
    is_full_page,
    item_form,
    item_of,
    item_url,
    save_item,
    text,
)

pytestmark = pytest.mark.django_db


# Editing an item


def test_plain_item_post_saves_and_redirects_to_the_items_row(member_client, member, deployment):
    item = item_of(deployment)
    data = item_form(
        item,
        status=ItemStatus.DONE,
        note="  Access Analyzer clean  ",
        evidence_url="https://wiki.example.com/iam",
    )
    response = member_client.post(item_url(deployment, item), data)
    assert response.status_code == 302
    assert response["Location"] == f"{detail_url(deployment)}#row-{item.pk}"
    item.refresh_from_db()
    assert (item.status, item.note, item.evidence_url) == (
        ItemStatus.DONE,
        "Access Analyzer clean",
        "https://wiki.example.com/iam",
    )
    assert (item.version, item.updated_by, item.source) == (2, member, DecisionSource.PERSON)
    change = ItemChange.objects.get(item=item)
    assert (change.version, change.changed_by, change.previous_status, change.status) == (
        2,
        member,
        ItemStatus.OPEN,
        ItemStatus.DONE,
    )
    page = member_client.get(response["Location"])
    assert "Saved “IAM Policies”." in text(page)


def test_evidence_url_without_scheme_is_saved_as_https(member_client, deployment):
    item = item_of(deployment)
    data = item_form(item, status=ItemStatus.DONE, evidence_url="wiki.example.com/iam")
    assert member_client.post(item_url(deployment, item), data).status_code == 302
    item.refresh_from_db()
    assert item.evidence_url == "https://wiki.example.com/iam"


def test_htmx_item_post_swaps_only_what_changed_and_the_progress_out_of_band(
    member_client, deployment
):
    item = item_of(deployment)
    data = item_form(item, status=ItemStatus.DONE, note="checked")
    response = member_client.post(item_url(deployment, item), data, headers=HTMX)
    assert response.status_code == 200
    assert not is_full_page(response)
    body = text(response)
    # Never the card or a field someone may be typing in (issue 17, point 1): its status
    # block, version, saved values and who/when, each by id.
    assert "<article" not in body and "<textarea" not in body and 'type="radio"' not in body
    for part in ("head", "decision", "saved", "changed"):
        assert re.search(rf'<[a-z]+[^>]*id="item-{item.pk}-{part}"[^>]*hx-swap-oob="true"', body)
    assert 'class="status-pill status-done">Done</span>' in body
    assert f'id="item-{item.pk}-saved" data-note="checked"' in body
    assert re.search(
        rf'<div[^>]*id="section-progress-{item.section_id}"[^>]*hx-swap-oob="true"', body
    )
    assert re.search(r'<div[^>]*id="overall-progress"[^>]*hx-swap-oob="true"', body)
    assert '<span class="num">1/9</span>' in body
    assert "2% complete" in body
    assert re.search(
        rf'<input type="hidden" name="item{item.pk}-version" value="2"[^>]*hx-swap-oob="true"',
        body,
    )
    item.refresh_from_db()
    assert (item.status, item.version) == (ItemStatus.DONE, 2)
    assert ItemChange.objects.filter(item=item).count() == 1


def test_marking_an_item_not_applicable_with_a_reason_is_saved(member_client, deployment):
    item = item_of(deployment, "Penetration Test")
    data = item_form(item, status=ItemStatus.NOT_APPLICABLE, na_reason="internal tool")
    response = member_client.post(item_url(deployment, item), data, headers=HTMX)
    assert response.status_code == 200
    item.refresh_from_db()
    assert (item.status, item.na_reason) == (ItemStatus.NOT_APPLICABLE, "internal tool")


@PLAIN_AND_HTMX
@pytest.mark.parametrize("na_reason", [None, "", "   "])
def test_not_applicable_without_a_reason_is_400_and_saves_nothing(
    member_client, deployment, headers, na_reason
):
    item = item_of(deployment, "Penetration Test")
    data = item_form(item, status=ItemStatus.NOT_APPLICABLE, na_reason=na_reason, note="x")
    response = member_client.post(item_url(deployment, item), data, headers=headers)
    assert response.status_code == 400
    assert is_full_page(response) == (not headers)
    assert "Say why this item does not apply." in text(response)
    assert f'id="item-{item.pk}"' in text(response)
    item.refresh_from_db()
    assert (item.status, item.note, item.version) == (ItemStatus.OPEN, "", 1)
    assert not ItemChange.objects.exists()


@PLAIN_AND_HTMX
@pytest.mark.parametrize(
    "evidence_url",
    [
        "javascript:alert(1)",
        "not a url",
        "ftp://x",
        "ftp://files.example.com/evidence.pdf",
        "https://",
        "data:text/html,<script>alert(1)</script>",
    ],
)
def test_an_invalid_evidence_url_is_400_and_saves_nothing(
    member_client, deployment, headers, evidence_url
):
    item = item_of(deployment)
    data = item_form(item, status=ItemStatus.DONE, evidence_url=evidence_url)
    response = member_client.post(item_url(deployment, item), data, headers=headers)
    assert response.status_code == 400
    # One message, once, saying what a link must be.
    assert text(response).count(EVIDENCE_URL_MESSAGE) == 1
    assert "Enter a valid URL." not in text(response)
    item.refresh_from_db()
    assert (item.status, item.evidence_url, item.version) == (ItemStatus.OPEN, "", 1)
    assert not ItemChange.objects.exists()


@PLAIN_AND_HTMX
@pytest.mark.parametrize(
    ("values", "field"),
    [
        pytest.param({"status": "bogus"}, "status", id="unknown-status"),
        pytest.param({"status": None}, "status", id="missing-status"),
        pytest.param({"version": None}, "version", id="missing-version"),
        pytest.param({"version": "abc"}, "version", id="garbage-version"),
        pytest.param({"version": "1.5"}, "version", id="fractional-version"),
        pytest.param({"version": "0"}, "version", id="zero-version"),
        pytest.param({"version": "-3"}, "version", id="negative-version"),
        pytest.param({"note": "n" * 5001}, "note", id="note-too-long"),
    ],
)
def test_invalid_item_input_is_400_and_saves_nothing(
    member_client, deployment, headers, values, field
):
    item = item_of(deployment)
    data = item_form(item, **{"status": ItemStatus.DONE, **values})
    response = member_client.post(item_url(deployment, item), data, headers=headers)
    assert response.status_code == 400
    assert is_full_page(response) == (not headers)
    assert f'id="item-{item.pk}"' in text(response)
    item.refresh_from_db()
    assert (item.status, item.version) == (ItemStatus.OPEN, 1)
    assert not ItemChange.objects.exists()


@PLAIN_AND_HTMX
def test_a_note_over_the_limit_shows_the_error(member_client, deployment, headers):
    item = item_of(deployment)
    data = item_form(item, status=ItemStatus.DONE, note="n" * 5001)
    response = member_client.post(item_url(deployment, item), data, headers=headers)
    assert response.status_code == 400
    assert "Ensure this value has at most 5000 characters (it has 5001)." in text(response)


@PLAIN_AND_HTMX
@pytest.mark.parametrize("version", ["2", "99999999999999999999"])
def test_a_version_the_item_never_had_is_refused_without_a_500(
    member_client, deployment, headers, version
):
    member_client.raise_request_exception = False
    item = item_of(deployment)
    data = item_form(item, status=ItemStatus.DONE, version=version)
    response = member_client.post(item_url(deployment, item), data, headers=headers)
    assert response.status_code in (400, 409)
    item.refresh_from_db()
    assert (item.status, item.version) == (ItemStatus.OPEN, 1)


@PLAIN_AND_HTMX
def test_changing_a_probe_set_status_without_a_reason_is_400(member_client, deployment, headers):
    item = item_of(deployment)
    ChecklistItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.FAILED, source=DecisionSource.PROBE, status_reason="2 roles with *:*"
    )
    item.refresh_from_db()
    response = member_client.post(
        item_url(deployment, item), item_form(item, status=ItemStatus.DONE), headers=headers
    )
    assert response.status_code == 400
    assert "Say why you override the probe" in text(response)
    item.refresh_from_db()
    assert (item.status, item.version) == (ItemStatus.FAILED, 1)


@PLAIN_AND_HTMX
def test_a_stale_edit_is_409_shows_the_current_values_and_keeps_the_other_users_edit(
    member_client, colleague, deployment, headers
):
    item = item_of(deployment)
    stale = item_form(item, status=ItemStatus.FAILED, note="my note")
    save_item(
        item_of(deployment),
        colleague,
        status=ItemStatus.DONE,
        note="Checked by Kim",
        evidence_url="https://wiki.example.com/kim",
    )
    response = member_client.post(item_url(deployment, item), stale, headers=headers)
    assert response.status_code == 409
    assert is_full_page(response) == (not headers)
    body = text(response)
    assert "Not saved" in body
    assert "Kim Ode saved it" in body
    assert "Status: <strong>Done</strong>" in body
    assert "Note: Checked by Kim" in body
    assert "https://wiki.example.com/kim" in body
    assert "Your edit (not saved): status failed" in body
    # The form now carries the current version, so saving again is possible.
    assert f'name="item{item.pk}-version" value="2"' in body
    item.refresh_from_db()
    assert (item.status, item.note, item.version, item.updated_by) == (
        ItemStatus.DONE,
        "Checked by Kim",
        2,
        colleague,
    )
    assert ItemChange.objects.filter(item=item).count() == 1


@PLAIN_AND_HTMX
def test_an_edit_made_stale_by_a_probe_run_is_409_not_500(member_client, deployment, headers):
    member_client.raise_request_exception = False
    item = item_of(deployment)
    stale = item_form(item, status=ItemStatus.FAILED, note="my note")
    run = ProbeRun.objects.create(
        deployment=deployment, state=ProbeRunState.SUCCEEDED, finished_at=timezone.now()
    )
    ProbeResult.objects.create(
        run=run,
        item=item,
        probe_key="iam.least_privilege",
        region="global",
        section_title="Security",
        item_title="IAM Policies",
        title="Least privilege",
        severity="high",
        state=ProbeResultState.DONE,
        status=ProbeOutcome.PASS,
        summary="no wildcard policies",
    )
    assert probe_runs.apply_run(run) == 1
    response = member_client.post(item_url(deployment, item), stale, headers=headers)
    assert response.status_code == 409
    body = text(response)
    assert "Not saved" in body
    assert "Status: <strong>Done</strong>" in body
    item.refresh_from_db()
    assert (item.status, item.source, item.version) == (
        ItemStatus.DONE,
        DecisionSource.PROBE,
        2,
    )


def test_saving_again_after_a_conflict_succeeds(member_client, member, colleague, deployment):
    item = item_of(deployment)
    stale = item_form(item, status=ItemStatus.FAILED)
    save_item(item_of(deployment), colleague, status=ItemStatus.DONE)
    assert member_client.post(item_url(deployment, item), stale).status_code == 409
    fresh = item_form(item_of(deployment), status=ItemStatus.FAILED)
    assert member_client.post(item_url(deployment, item), fresh).status_code == 302
    item.refresh_from_db()
    assert (item.status, item.version, item.updated_by) == (ItemStatus.FAILED, 3, member)


def test_htmx_get_of_an_item_returns_its_fragment(member_client, deployment):
    item = item_of(deployment)
    response = member_client.get(item_url(deployment, item), headers=HTMX)
    assert response.status_code == 200
    assert not is_full_page(response)
    body = text(response)
    assert f'id="item-{item.pk}"' in body
    assert body.count("<article") == 1
    assert "hx-swap-oob" not in body


def test_plain_get_of_an_item_is_its_own_page_with_its_form(member_client, deployment):
    item = item_of(deployment)
    response = member_client.get(item_url(deployment, item))
    assert response.status_code == 200 and is_full_page(response)
    assert f'id="item-{item.pk}"' in text(response)
    assert f'name="item{item.pk}-status"' in text(response)
    assert f'href="{detail_url(deployment)}#row-{item.pk}"' in text(response)
