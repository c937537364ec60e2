from django.db import migrations

# Sign-offs and revocations are append-only at the database, like the audit trail (0004,
# which created the shared trigger function). Waivers are not: withdrawing one is an update.
TABLES = ("signoff_signoff", "signoff_revocation")


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION signoff_refuse_change();",
            params=None,
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};", params=None
        )


class Migration(migrations.Migration):
    dependencies = [("signoff", "0005_signoffs_waivers")]
    operations = [migrations.RunPython(create, drop)]
