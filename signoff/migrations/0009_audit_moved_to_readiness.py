"""The audit trail moved to the readiness app (readiness.0008): state only; the table, its
rows and its append-only triggers stay as they are."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("readiness", "0008_evidence_and_audit_moved_in"),
        ("signoff", "0008_signed_record_append_only"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[], state_operations=[migrations.DeleteModel(name="AuditEvent")]
        ),
    ]
