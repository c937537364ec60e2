"""The audit page of a deployment: who may read it, its filters, exports and chain banner."""

import csv
import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.audit.services import audit_record
from readiness.checklists import services
from readiness.checklists.models import ChecklistItem, ItemStatus
from tests.factories import PASSWORD, TeamFactory, UserFactory, make_deployment
from tests.readiness.audit.test_audit import raw
from tests.signoff_helpers import give_role

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
PLAIN_AND_HTMX = pytest.mark.parametrize(
    "headers", [pytest.param({}, id="plain"), pytest.param(HTMX, id="htmx")]
)
# Session, user, deployment, the filter choices (2), the count, the page, the chain walk;
# the same whether the deployment has 5 events or 60.
# The page verifies its deployment's chain: its events and its head row.
AUDIT_PAGE_MAX = 9
AUDIT_PARTIAL_MAX = 7
AUDIT_EXPORT_MAX = 6


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def audit_url(deployment, **query) -> str:
    url = reverse("deployment_audit", kwargs={"pk": deployment.pk})
    if query:
        url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    return url


def an_item(deployment, title="MFA") -> ChecklistItem:
    return ChecklistItem.objects.get(section__deployment=deployment, title=title)


def add_events(deployment, *, actor, count: int, action="item.checked", **fields):
    item = an_item(deployment)
    with transaction.atomic():
        for number in range(count):
            audit_record(
                actor=actor,
                action=action,
                obj=item,
                deployment=deployment,
                before={"status": "open"},
                after={"status": "done", "number": number},
                **fields,
            )


def row_count(response) -> int:
    return response.content.decode().count('<tr id="event-')


def test_anonymous_visitors_are_sent_to_log_in(deployment):
    response = Client().get(audit_url(deployment))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@PLAIN_AND_HTMX
def test_another_teams_member_gets_a_404(deployment, outsider, headers):
    response = logged_in(outsider).get(audit_url(deployment), headers=headers)
    assert response.status_code == 404
    export = logged_in(outsider).get(audit_url(deployment, format="json"), headers=headers)
    assert export.status_code == 404


def test_a_staff_user_outside_the_team_gets_a_404(deployment):
    # The audit page follows the deployment's visibility: staff read other teams in the admin.
    staff = UserFactory(username="ada", is_staff=True)
    assert logged_in(staff).get(audit_url(deployment)).status_code == 404


def test_a_member_sees_the_events_newest_first_with_who_what_and_the_hash(deployment, member):
    give_role(member, deployment.team, "security")  # MFA is Security's
    services.item_update(
        item=an_item(deployment),
        user=member,
        expected_version=1,
        status=ItemStatus.DONE,
        note="checked in IAM",
        evidence_url="",
        na_reason="",
    )
    response = logged_in(member).get(audit_url(deployment))
    assert response.status_code == 200
    page = response.content.decode()
    created, updated = AuditEvent.objects.filter(deployment=deployment).order_by("id")
    assert page.index(f'id="event-{updated.pk}"') < page.index(f'id="event-{created.pk}"')
    assert "Lee Tran" in page
    assert "status: open → done" in page
    assert "note: — → checked in IAM" in page
    assert "checklist item #" in page
    assert updated.hash[:12] in page
    assert "audit chain verifies." in page
    assert f"Its {AuditEvent.objects.filter(deployment=deployment).count()} events" in page
    assert "<html" in page


def test_events_of_the_system_show_system_and_the_client_address(deployment, member):
    with transaction.atomic():
        audit_record(
            actor=None,
            action="item.set_by_probe",
            obj=an_item(deployment),
            deployment=deployment,
            before={"status": "open"},
            after={"status": "failed"},
            reason="MFA is off for 2 users",
        )
    client = logged_in(member)
    client.post(reverse("signoff_request", kwargs={"pk": deployment.pk}), REMOTE_ADDR="203.0.113.7")
    page = client.get(audit_url(deployment)).content.decode()
    assert '<span class="muted">system</span>' in page
    assert "MFA is off for 2 users" in page
    assert "203.0.113.7" in page


def test_the_htmx_request_gets_only_the_events_fragment(deployment, member):
    response = logged_in(member).get(audit_url(deployment), headers=HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="events">')
    assert "<html" not in page
    assert "deployment.created" in page


def test_the_page_holds_fifty_events_and_pages_on(deployment, member):
    add_events(deployment, actor=member, count=59)  # plus deployment.created: 60
    client = logged_in(member)
    first = client.get(audit_url(deployment))
    assert row_count(first) == 50
    assert "Page 1 of 2" in first.content.decode()
    second = client.get(audit_url(deployment, page=2))
    assert row_count(second) == 10
    assert "deployment.created" in second.content.decode()
    # A page number past the end shows the last page rather than failing.
    assert client.get(audit_url(deployment, page=99)).status_code == 200


@PLAIN_AND_HTMX
def test_filtering_by_action_keeps_only_that_action(deployment, member, headers):
    add_events(deployment, actor=member, count=3)
    response = logged_in(member).get(audit_url(deployment, action="item.checked"), headers=headers)
    assert response.status_code == 200
    assert row_count(response) == 3
    assert "<code>deployment.created</code>" not in response.content.decode()


def test_the_action_filter_offers_the_actions_present(deployment, member):
    add_events(deployment, actor=member, count=1)
    page = logged_in(member).get(audit_url(deployment)).content.decode()
    assert '<option value="item.checked">' in page
    assert '<option value="deployment.created">' in page
    assert '<option value="signoff.signed">' not in page


def test_filtering_by_actor_separates_people_from_the_system(deployment, member):
    other = UserFactory(username="sam", first_name="Sam", last_name="Okafor")
    deployment.team.members.add(other)
    add_events(deployment, actor=other, count=2)
    add_events(deployment, actor=None, count=3)
    client = logged_in(member)
    assert row_count(client.get(audit_url(deployment, actor=other.pk))) == 2
    assert row_count(client.get(audit_url(deployment, actor="system"))) == 3
    assert row_count(client.get(audit_url(deployment, actor=member.pk))) == 1
    assert row_count(client.get(audit_url(deployment))) == 6


def test_the_date_range_includes_the_whole_last_day(deployment, member):
    add_events(deployment, actor=member, count=2)
    today = timezone.now().date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    client = logged_in(member)
    assert row_count(client.get(audit_url(deployment, date_from=today, date_to=today))) == 3
    assert row_count(client.get(audit_url(deployment, date_to=yesterday))) == 0
    assert row_count(client.get(audit_url(deployment, date_from=tomorrow))) == 0
    assert row_count(client.get(audit_url(deployment, date_from=yesterday))) == 3


def test_the_widest_date_range_a_date_can_name_selects_everything(deployment, member):
    add_events(deployment, actor=member, count=2)
    response = logged_in(member).get(
        audit_url(deployment, date_from="0001-01-01", date_to="9999-12-31")
    )
    assert response.status_code == 200
    assert row_count(response) == 3


@PLAIN_AND_HTMX
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"action": "nope"}, "Select a valid choice"),
        ({"actor": "999999"}, "Select a valid choice"),
        ({"actor": "'; drop table"}, "Select a valid choice"),
        ({"date_from": "2026-13-45"}, "Enter a valid date"),
        ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "“To” is before “From”."),
        ({"format": "xml"}, "Unknown export format “xml”: use csv or json."),
    ],
)
def test_invalid_filters_are_a_400_with_the_errors(deployment, member, headers, query, message):
    response = logged_in(member).get(audit_url(deployment, **query), headers=headers)
    assert response.status_code == 400
    page = response.content.decode()
    assert "These filters cannot be applied." in page
    assert message in page
    assert 'id="event-' not in page


def test_invalid_filters_do_not_export(deployment, member):
    response = logged_in(member).get(audit_url(deployment, format="csv", action="nope"))
    assert response.status_code == 400
    assert "Content-Disposition" not in response


def tricky_events(deployment, member):
    """Events whose reason, values and actor name a spreadsheet would run as formulas."""
    member.first_name = "@Lee"
    member.save()
    with transaction.atomic():
        audit_record(
            actor=member,
            action="item.updated",
            obj=an_item(deployment),
            deployment=deployment,
            before={"note": ""},
            after={"note": "+SUM(A1:A9)"},
            reason='=HYPERLINK("http://evil.example","click")',
        )
        audit_record(
            actor=member,
            action="item.updated",
            obj=an_item(deployment, "CloudTrail"),
            deployment=deployment,
            after={"note": "fine"},
            reason="-2+3",
        )


def read_csv(response) -> list[dict]:
    text = response.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_export_is_a_download_of_every_matching_event(deployment, member):
    add_events(deployment, actor=member, count=59)
    response = logged_in(member).get(audit_url(deployment, format="csv", action="item.checked"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.now().date().isoformat()
    assert response["Content-Disposition"] == (
        f'attachment; filename="deployment-{deployment.pk}-audit-{today}.csv"'
    )
    assert "no-store" in response["Cache-Control"]
    rows = read_csv(response)
    assert len(rows) == 59  # past the page size: the export is not one page
    assert {row["action"] for row in rows} == {"item.checked"}
    first = AuditEvent.objects.filter(action="item.checked").order_by("id").first()
    assert rows[0]["id"] == str(first.pk)
    assert rows[0]["hash"] == first.hash and rows[0]["prev_hash"] == first.prev_hash
    assert rows[0]["changes"] == "status: open → done; number: — → 0"
    assert rows[0]["actor_name"] == "Lee Tran"


def test_the_csv_export_defuses_formulas(deployment, member):
    tricky_events(deployment, member)
    rows = read_csv(logged_in(member).get(audit_url(deployment, format="csv")))
    hyperlink, minus = rows[-2], rows[-1]
    assert hyperlink["reason"] == '\'=HYPERLINK("http://evil.example","click")'
    assert hyperlink["actor_name"] == "'@Lee Tran"
    assert hyperlink["changes"] == "note: — → +SUM(A1:A9)"  # starts with "note", so safe
    assert minus["reason"] == "'-2+3"
    assert minus["changes"] == "note: fine"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value


def test_the_json_export_lets_an_auditor_recompute_every_hash(deployment, member):
    tricky_events(deployment, member)
    add_events(deployment, actor=None, count=2)
    response = logged_in(member).get(audit_url(deployment, format="json"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="deployment-{deployment.pk}-audit-'
    )
    assert response["Content-Disposition"].endswith('.json"')
    document = json.loads(response.content)
    assert document["deployment"]["id"] == deployment.pk
    events = document["events"]
    stored = list(AuditEvent.objects.filter(deployment=deployment).order_by("id"))
    assert [event["id"] for event in events] == [event.pk for event in stored]
    hashed = (
        "prev_hash",
        "created_at",
        "actor_id",
        "action",
        "object_type",
        "object_id",
        "deployment_id",
        "before",
        "after",
        "reason",
        "ip",
    )
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    for event in events:
        keys = (*hashed, "seq") if "seq" in event else hashed
        payload = json.dumps(
            {key: event[key] for key in keys}, sort_keys=True, separators=(",", ":")
        )
        assert hashlib.sha256(payload.encode()).hexdigest() == event["hash"]
    # The JSON keeps the values as written: escaping is the CSV's business only.
    assert events[1]["reason"].startswith("=HYPERLINK")
    assert events[-1]["actor"] is None and events[-1]["actor_name"] == "system"


def test_the_json_export_applies_the_filters(deployment, member):
    add_events(deployment, actor=None, count=2)
    document = json.loads(
        logged_in(member).get(audit_url(deployment, format="json", actor="system")).content
    )
    assert document["filters"]["actor"] == "system"
    assert [event["actor_id"] for event in document["events"]] == [None, None]


def test_the_banner_reports_a_tampered_chain(deployment, member):
    add_events(deployment, actor=member, count=2)
    target = AuditEvent.objects.filter(action="item.checked").order_by("id").first()
    raw("UPDATE signoff_auditevent SET reason = %s WHERE id = %s", ["nothing to see", target.pk])
    page = logged_in(member).get(audit_url(deployment)).content.decode()
    assert "audit chain does not verify." in page
    assert f"event #{target.pk} (item.checked" in page
    assert "was edited after it was written" in page
    assert "audit chain verifies." not in page


def test_the_banner_reports_a_removed_event(deployment, member):
    add_events(deployment, actor=member, count=2)
    removed, following = AuditEvent.objects.filter(action="item.checked").order_by("id")
    raw("DELETE FROM signoff_auditevent WHERE id = %s", [removed.pk])
    page = logged_in(member).get(audit_url(deployment)).content.decode()
    assert "audit chain does not verify." in page
    assert f"event #{following.pk}" in page and "was removed" in page


def queries_of(client, url, **headers) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url, headers=headers)
    assert response.status_code == 200
    return len(context.captured_queries)


def two_deployments(events_small=5, events_large=60):
    """Two deployments of one member's team with 5 and 60 events by several people."""
    member = UserFactory(username="kim", first_name="Kim", last_name="Lam")
    people = [UserFactory() for _ in range(4)]
    team = TeamFactory(slug="queries", members=[member, *people])
    small = make_deployment(user=member, team=team)
    large = make_deployment(user=member, team=team, service="ledger")
    add_events(small, actor=member, count=events_small - 1)
    for number in range(events_large - 1):
        add_events(large, actor=people[number % 4] if number % 5 else None, count=1)
    return member, small, large


@pytest.mark.parametrize(
    ("headers", "query", "ceiling"),
    [
        pytest.param({}, {}, AUDIT_PAGE_MAX, id="page"),
        pytest.param(HTMX, {}, AUDIT_PARTIAL_MAX, id="htmx"),
        pytest.param({}, {"format": "csv"}, AUDIT_EXPORT_MAX, id="csv"),
        pytest.param({}, {"format": "json"}, AUDIT_EXPORT_MAX, id="json"),
    ],
)
def test_the_audit_page_reads_as_many_queries_for_5_events_as_for_60(
    django_assert_max_num_queries, headers, query, ceiling
):
    member, small, large = two_deployments()
    client = logged_in(member)
    assert AuditEvent.objects.filter(deployment=large).count() == 60
    small_count = queries_of(client, audit_url(small, **query), **headers)
    large_count = queries_of(client, audit_url(large, **query), **headers)
    assert small_count == large_count
    with django_assert_max_num_queries(ceiling):
        client.get(audit_url(large, **query), headers=headers)
