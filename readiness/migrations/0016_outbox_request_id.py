"""The request an outbox row came from, for the log lines of the task it sends."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("readiness", "0015_deployment_progress_fill"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxmessage",
            name="request_id",
            field=models.CharField(
                blank=True,
                help_text=(
                    "The request that caused it (its X-Request-ID), for the task's log lines."
                ),
                max_length=128,
            ),
        ),
    ]
