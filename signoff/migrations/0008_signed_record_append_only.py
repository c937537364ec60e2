from django.db import migrations

# A stored record is immutable: its row, the sign-offs it holds and the file it names never
# change (the shared trigger function comes from 0004).
TABLES = ("signoff_signedrecord", "signoff_signedrecord_signoffs")


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
    dependencies = [("signoff", "0007_signed_record")]
    operations = [migrations.RunPython(create, drop)]
