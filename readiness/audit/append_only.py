"""Append-only tables, enforced by the database itself: the SQL that migrations run.

The audit trail, the sign-offs, their revocations and the signed records are only ever
added to. The ORM never updates or deletes them, and the database refuses it too, whatever
the interface (ORM, admin, psql, sqlite3):

- PostgreSQL: a row-level trigger refuses UPDATE and DELETE (`signoff_refuse_change`,
  since signoff 0004) and a statement-level trigger refuses TRUNCATE, which row triggers
  never see (`append_only_refuse_truncate`, since signoff 0011).
- SQLite (the embedded default): triggers refuse UPDATE and DELETE (SQLite has no TRUNCATE;
  `DELETE FROM t` fires the row triggers).

Test suites flush their database between tests (TRUNCATE on PostgreSQL, DELETE on SQLite).
A test database allows that and nothing else, through a switch only tests set (see
`tests/conftest.py`): on PostgreSQL the database setting `readiness.append_only_flush =
'allowed'` lets TRUNCATE through (UPDATE and DELETE stay refused); on SQLite the presence of
the table `append_only_flush_allowed` lets DELETE through (UPDATE stays refused). No
migration, command or setting creates either in a real database.

Migrations import these functions, so what they return for a table must never change;
add new functions instead. Every statement is idempotent, so a migration may run them again
(SQLite drops a table's triggers whenever Django rebuilds the table to alter it: a migration
that alters an append-only table on SQLite must re-run `append_only_sql` for it;
tests/signoff/test_append_only.py checks every listed table keeps its triggers).
"""

FLUSH_SETTING = "readiness.append_only_flush"
FLUSH_ALLOWED = "allowed"
SQLITE_FLUSH_SWITCH_TABLE = "append_only_flush_allowed"

_ROW_FUNCTION = """
CREATE OR REPLACE FUNCTION signoff_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
"""
_TRUNCATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION append_only_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('{FLUSH_SETTING}', true) = '{FLUSH_ALLOWED}' THEN
        RETURN NULL;  -- a test database being flushed between tests
    END IF;
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
"""


def _check(table: str) -> str:
    # Table names are interpolated into DDL: allow only plain identifiers.
    if not table.replace("_", "").isalnum() or not table.isascii():
        raise ValueError(f"not a plain table name: {table!r}")
    return table


def truncate_guard_sql(table: str) -> list[str]:
    """PostgreSQL: refuse TRUNCATE on `table` (a statement-level trigger)."""
    table = _check(table)
    return [
        _TRUNCATE_FUNCTION,
        f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION append_only_refuse_truncate();",
    ]


def truncate_guard_reverse_sql(table: str) -> list[str]:
    table = _check(table)
    return [f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};"]


def row_guard_sql(table: str, vendor: str) -> list[str]:
    """Refuse UPDATE and DELETE of `table`'s rows on this database vendor."""
    table = _check(table)
    if vendor == "postgresql":
        return [
            _ROW_FUNCTION,
            f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION signoff_refuse_change();",
        ]
    if vendor == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_append_only_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END;",
            f"CREATE TRIGGER IF NOT EXISTS {table}_append_only_delete BEFORE DELETE ON {table} "
            "WHEN NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
            f"'{SQLITE_FLUSH_SWITCH_TABLE}') "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;",
        ]
    return []


def row_guard_reverse_sql(table: str, vendor: str) -> list[str]:
    table = _check(table)
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"]
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_append_only_update;",
            f"DROP TRIGGER IF EXISTS {table}_append_only_delete;",
        ]
    return []


def append_only_sql(table: str, vendor: str) -> list[str]:
    """Everything that makes a new `table` append-only on this vendor (other vendors: none)."""
    statements = row_guard_sql(table, vendor)
    if vendor == "postgresql":
        statements += truncate_guard_sql(table)
    return statements


def append_only_reverse_sql(table: str, vendor: str) -> list[str]:
    statements = row_guard_reverse_sql(table, vendor)
    if vendor == "postgresql":
        statements += truncate_guard_reverse_sql(table)
    return statements


def allow_flush_sql(vendor: str, database_name: str) -> list[str]:
    """Tests only: let a test database be flushed between tests (see the module docstring)."""
    if vendor == "postgresql":
        name = database_name.replace('"', '""')
        return [f"ALTER DATABASE \"{name}\" SET {FLUSH_SETTING} = '{FLUSH_ALLOWED}';"]
    if vendor == "sqlite":
        return [f"CREATE TABLE IF NOT EXISTS {SQLITE_FLUSH_SWITCH_TABLE} (id integer);"]
    return []


def refuse_flush_sql(vendor: str) -> list[str]:
    """Tests only: within the current transaction, behave as a real database would."""
    if vendor == "postgresql":
        return [f"SET LOCAL {FLUSH_SETTING} = 'refused';"]
    if vendor == "sqlite":
        return [f"DROP TABLE IF EXISTS {SQLITE_FLUSH_SWITCH_TABLE};"]
    return []
