"""The append-only tables refuse every change but an INSERT at the database itself, on
PostgreSQL and on the embedded SQLite alike; only a test database may be flushed."""

import importlib
import uuid
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from readiness.audit.append_only import refuse_flush_sql
from readiness.audit.models import AuditEvent
from signoff.lifecycle import services
from signoff.records.models import SignedRecord
from tests.signoff_helpers import complete_items, sign, signers_for

APPEND_ONLY_TABLES = importlib.import_module(
    "signoff.migrations.0011_append_only_everywhere"
).APPEND_ONLY_TABLES
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def execute(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def as_a_real_database():
    """Within this test's transaction, the test database's flush switch is off."""
    for statement in refuse_flush_sql(connection.vendor):
        execute(statement)


@pytest.fixture
def every_table_filled(deployment, team, member):
    """At least one row in each append-only table: audit events, a sign-off, its
    revocation, a stored record holding the sign-off."""
    signers = signers_for(team)
    complete_items(deployment, "security")
    services.signoff_request(deployment=deployment, user=member)
    signoff = sign(deployment, signers["security"], "security")
    services.signoff_revoke(signoff=signoff, user=signers["security"], reason="typo")
    record = SignedRecord.objects.create(
        deployment=deployment,
        record_id=uuid.uuid4(),
        number=1,
        deployment_state="approved",
        state_digest="0" * 64,
        file="records/1/record.pdf",
        sha256="1" * 64,
        size_bytes=1,
        page_size="A4",
        created_at=timezone.now(),
    )
    record.signoffs.add(signoff)
    with connection.cursor() as cursor:
        for table in APPEND_ONLY_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            assert cursor.fetchone()[0] > 0, table
    return deployment


def test_the_list_names_every_table_the_earlier_migrations_guarded():
    # 0004, 0006 and 0008 made these append-only on PostgreSQL; 0011 lists them all.
    assert set(APPEND_ONLY_TABLES) == {
        "signoff_auditevent",
        "signoff_signoff",
        "signoff_revocation",
        "signoff_signedrecord",
        "signoff_signedrecord_signoffs",
    }
    assert AuditEvent._meta.db_table in APPEND_ONLY_TABLES
    assert SignedRecord._meta.db_table in APPEND_ONLY_TABLES


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_every_append_only_table_has_its_triggers(table):
    # SQLite drops a table's triggers when Django rebuilds it for an ALTER: this catches a
    # later migration that forgot to put them back.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass "
                "AND NOT tgisinternal AND tgenabled = 'O'",
                [table],
            )
            expected = {f"{table}_append_only", f"{table}_no_truncate"}
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [table],
            )
            expected = {f"{table}_append_only_update", f"{table}_append_only_delete"}
        assert {name for (name,) in cursor.fetchall()} == expected


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_updating_rows_through_raw_sql_is_refused(every_table_filled, table):
    as_a_real_database()
    # Every column set to itself: the trigger refuses the statement, not the values.
    column = "id" if table != "signoff_signedrecord_signoffs" else "signoff_id"
    with (
        pytest.raises(DatabaseError, match=f"{table} is append-only: UPDATE refused"),
        transaction.atomic(),
    ):
        execute(f"UPDATE {table} SET {column} = {column}")


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_deleting_rows_through_raw_sql_is_refused(every_table_filled, table):
    as_a_real_database()
    with (
        pytest.raises(DatabaseError, match=f"{table} is append-only: DELETE refused"),
        transaction.atomic(),
    ):
        execute(f"DELETE FROM {table}")


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_truncate_is_refused_on_postgresql(every_table_filled, table):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE: DELETE without WHERE is refused instead")
    as_a_real_database()
    # The fixture's rows leave deferred foreign-key checks pending, which TRUNCATE refuses.
    execute("SET CONSTRAINTS ALL IMMEDIATE")
    # CASCADE, so that a foreign key pointing at the table is not what refuses it.
    with (
        pytest.raises(DatabaseError, match=f"{table} is append-only: TRUNCATE refused"),
        transaction.atomic(),
    ):
        execute(f"TRUNCATE {table} CASCADE")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        assert cursor.fetchone()[0] > 0


def test_the_orm_cannot_update_or_delete_audit_events_either(deployment):
    as_a_real_database()
    event = AuditEvent.objects.get(deployment=deployment)
    for attempt in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(reason="x"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert AuditEvent.objects.get(pk=event.pk).hash == event.hash


def test_the_test_database_may_be_flushed_and_only_so(every_table_filled):
    # The switch the test database carries (tests/conftest.py) lets a flush through...
    if connection.vendor == "postgresql":
        execute("SET CONSTRAINTS ALL IMMEDIATE")
    with transaction.atomic():
        execute(
            "TRUNCATE " + ", ".join(APPEND_ONLY_TABLES) + " CASCADE"
            if connection.vendor == "postgresql"
            else "DELETE FROM signoff_auditevent"
        )
        transaction.set_rollback(True)
    # ...never an edit of a row.
    with pytest.raises(DatabaseError, match="append-only: UPDATE refused"), transaction.atomic():
        execute("UPDATE signoff_auditevent SET reason = 'edited'")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_transactional_test_writing_append_only_rows_is_flushed_afterwards(deployment):
    # pytest-django empties the database after this test (TRUNCATE or DELETE); the next
    # test starting from no rows is the proof, and this one fails loudly if flushing breaks.
    assert AuditEvent.objects.filter(deployment=deployment).exists()


def test_only_the_tests_switch_a_database_to_flushable():
    # No application code, migration or command turns the switch on in a real database.
    users = [
        path.relative_to(ROOT)
        for package in ("readiness", "signoff")
        for path in (ROOT / package).rglob("*.py")
        if "allow_flush_sql(" in path.read_text() or "append_only_flush_allowed" in path.read_text()
    ]
    assert users == [Path("readiness/audit/append_only.py")]
