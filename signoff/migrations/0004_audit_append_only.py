from django.db import migrations

# PostgreSQL refuses UPDATE and DELETE on the audit table at the database itself, whatever the
# interface (ORM, admin, psql). TRUNCATE is left to the owner (test databases are flushed so).
CREATE = """
CREATE OR REPLACE FUNCTION signoff_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER signoff_auditevent_append_only
    BEFORE UPDATE OR DELETE ON signoff_auditevent
    FOR EACH ROW EXECUTE FUNCTION signoff_refuse_change();
"""
DROP = """
DROP TRIGGER IF EXISTS signoff_auditevent_append_only ON signoff_auditevent;
DROP FUNCTION IF EXISTS signoff_refuse_change();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("signoff", "0003_audit_event")]
    operations = [migrations.RunPython(create, drop)]
