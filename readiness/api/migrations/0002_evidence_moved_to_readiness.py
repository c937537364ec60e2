"""Evidence moved to the readiness app (readiness.0008): state only, the tables stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("readiness", "0008_evidence_and_audit_moved_in"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(model_name="evidenceverdict", name="evidence"),
                migrations.RemoveField(model_name="evidenceverdict", name="item"),
                migrations.DeleteModel(name="Evidence"),
                migrations.DeleteModel(name="EvidenceVerdict"),
            ],
        ),
    ]
