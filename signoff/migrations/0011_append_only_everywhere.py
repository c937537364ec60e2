from django.db import migrations

from readiness.audit.append_only import (
    append_only_reverse_sql,
    append_only_sql,
    truncate_guard_reverse_sql,
    truncate_guard_sql,
)

# The append-only tables (see readiness/audit/append_only.py). PostgreSQL already refuses
# UPDATE and DELETE of their rows (0004, 0006, 0008); this adds the TRUNCATE guard, which row
# triggers never see. SQLite had no guard at all: it gets its UPDATE and DELETE triggers here.
# A later migration adding an append-only table runs `append_only_sql` for it and depends
# on this one (it creates the TRUNCATE trigger function).
APPEND_ONLY_TABLES = [
    "signoff_auditevent",
    "signoff_signoff",
    "signoff_revocation",
    "signoff_signedrecord",
    "signoff_signedrecord_signoffs",
]


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in APPEND_ONLY_TABLES:
        if vendor == "postgresql":
            statements = truncate_guard_sql(table)
        else:
            statements = append_only_sql(table, vendor)
        for statement in statements:
            schema_editor.execute(statement, params=None)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in APPEND_ONLY_TABLES:
        if vendor == "postgresql":
            statements = truncate_guard_reverse_sql(table)
        else:
            statements = append_only_reverse_sql(table, vendor)
        for statement in statements:
            schema_editor.execute(statement, params=None)
    if vendor == "postgresql":
        # Refused (by design) while a later migration's table still uses it.
        schema_editor.execute("DROP FUNCTION IF EXISTS append_only_refuse_truncate();")


class Migration(migrations.Migration):
    dependencies = [("signoff", "0010_permissions")]
    operations = [migrations.RunPython(create, drop)]
