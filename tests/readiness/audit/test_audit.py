import importlib

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from readiness.audit.append_only import append_only_reverse_sql, refuse_flush_sql
from readiness.audit.models import AuditEvent
from readiness.audit.services import GENESIS, event_hash
from readiness.audit.verification import verify_all
from readiness.checklists import services
from readiness.checklists.models import ChecklistItem, ItemStatus
from tests.factories import set_aws_target


def edit_item(deployment, user, title="MFA", status=ItemStatus.DONE, reason=""):
    item = ChecklistItem.objects.get(section__deployment=deployment, title=title)
    return services.item_update(
        item=item,
        user=user,
        expected_version=item.version,
        status=status,
        note="checked in IAM",
        evidence_url="",
        na_reason="",
        reason=reason,
    )


APPEND_ONLY_TABLES = importlib.import_module(
    "signoff.migrations.0011_append_only_everywhere"
).APPEND_ONLY_TABLES


def raw(sql, params=()):
    """Tamper as someone with database access would, past the ORM (and the triggers)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # a superuser can switch user triggers off
            cursor.execute("SET session_replication_role = replica")
        else:  # the file's owner can drop them (this test's transaction puts them back)
            for table in (*APPEND_ONLY_TABLES, "readiness_auditcheckpoint"):
                for statement in append_only_reverse_sql(table, "sqlite"):
                    cursor.execute(statement)
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")


def rewrite_from(deployment, seq: int, reason: str) -> None:
    """Rewrite a deployment's chain from position `seq` on, every later hash recomputed and
    the head row moved, as someone with the database and this code could: the chain alone
    verifies again; only what committed a head (checkpoints, records) can tell."""
    events = list(AuditEvent.objects.filter(deployment=deployment).order_by("seq"))
    previous = events[seq - 2].hash
    for event in events[seq - 1 :]:
        if event.seq == seq:
            event.reason = reason
        event.prev_hash, old = previous, event.hash
        event.hash = event_hash(event)
        raw(
            "UPDATE signoff_auditevent SET reason = %s, prev_hash = %s, hash = %s WHERE hash = %s",
            [event.reason, event.prev_hash, event.hash, old],
        )
        previous = event.hash
    raw(
        "UPDATE readiness_auditchainhead SET hash = %s WHERE chain = %s",
        [previous, f"deployment:{deployment.pk}"],
    )


@pytest.mark.django_db
def test_changes_write_chained_events_with_before_and_after(deployment, member):
    edit_item(deployment, member)
    events = list(AuditEvent.objects.filter(deployment=deployment).order_by("id"))
    assert [e.action for e in events] == ["deployment.created", "item.updated"]
    created, updated = events
    assert created.actor == member and created.after["service"] == "payments-api"
    assert updated.before["status"] == "open" and updated.after["status"] == "done"
    assert updated.after["note"] == "checked in IAM"
    assert updated.prev_hash == created.hash and updated.hash == event_hash(updated)
    assert AuditEvent.objects.order_by("id").first().prev_hash == GENESIS


@pytest.mark.django_db
def test_verify_audit_reports_an_intact_chain(deployment, member):
    edit_item(deployment, member)
    out = __import__("io").StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().startswith(
        f"audit trail intact: {AuditEvent.objects.count()} events on 1 chains"
    )


@pytest.mark.django_db
def test_verify_audit_names_an_event_edited_through_raw_sql(deployment, member):
    edit_item(deployment, member)
    target = AuditEvent.objects.get(action="item.updated")
    raw(
        "UPDATE signoff_auditevent SET reason = %s WHERE id = %s",
        ["nothing to see", target.pk],
    )
    with pytest.raises(CommandError, match=f"event #{target.pk} .* was edited"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_verify_audit_names_the_event_after_a_removed_one(deployment, member):
    edit_item(deployment, member, "MFA")
    edit_item(deployment, member, "CloudTrail")
    removed, following = AuditEvent.objects.filter(action="item.updated").order_by("id")
    raw("DELETE FROM signoff_auditevent WHERE id = %s", [removed.pk])
    report = verify_all()
    assert not report.ok
    assert report.problem.startswith(f"deployment:{deployment.pk}: event #{following.pk}")
    assert "an event before it was removed" in report.problem


@pytest.mark.django_db
def test_the_database_refuses_to_update_or_delete_audit_events(deployment):
    event = AuditEvent.objects.get(deployment=deployment)
    with connection.cursor() as cursor:  # as a real database: no test flush switch
        for statement in refuse_flush_sql(connection.vendor):
            cursor.execute(statement)
    for attempt in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(reason="x"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert AuditEvent.objects.get(pk=event.pk).hash == event.hash


@pytest.mark.django_db
def test_an_edit_through_the_page_records_the_client_address(member_client, deployment):
    item = ChecklistItem.objects.get(section__deployment=deployment, title="MFA")
    prefix = f"item{item.pk}"
    member_client.post(
        f"/deployments/{deployment.pk}/items/{item.pk}/",
        {f"{prefix}-status": "done", f"{prefix}-version": item.version},
        REMOTE_ADDR="203.0.113.9",
    )
    event = AuditEvent.objects.get(action="item.updated")
    assert event.ip == "203.0.113.9"


@pytest.mark.django_db
def test_probe_runs_and_aws_targets_are_audited(deployment, member):
    from readiness.probe_runs import services as probe_runs

    set_aws_target(deployment, user=member)
    probe_runs.probe_run_start(deployment=deployment, user=member)
    actions = list(
        AuditEvent.objects.filter(deployment=deployment).values_list("action", flat=True)
    )
    assert actions == ["deployment.created", "deployment.aws_target_set", "probe_run.started"]
    assert verify_all().ok
