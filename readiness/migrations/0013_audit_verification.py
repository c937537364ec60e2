"""Where the trail's periodic verification keeps its outcome (for /metrics)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("readiness", "0012_audit_object_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditVerification",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("checked_at", models.DateTimeField()),
                ("source", models.CharField(help_text="schedule or verify_audit", max_length=20)),
                ("ok", models.BooleanField()),
                ("events", models.PositiveBigIntegerField()),
                ("chains", models.PositiveIntegerField()),
                ("checkpoints", models.PositiveIntegerField()),
                ("duration_seconds", models.FloatField()),
                (
                    "problem",
                    models.TextField(blank=True, help_text="The first problem found, if any."),
                ),
            ],
            options={
                "ordering": ["id"],
                "indexes": [
                    models.Index(fields=["checked_at"], name="audit_verification_time_idx")
                ],
            },
        ),
    ]
