"""Per-deployment audit chains (plus the installation's), their heads and the checkpoints.

Events written before keep their hashes: they are the legacy chain, in id order, and its
head becomes a head like any other, so the first checkpoint commits it.
"""

from django.conf import settings
from django.db import migrations, models

from readiness.audit.append_only import append_only_reverse_sql, append_only_sql


def legacy_head(apps, schema_editor):
    event_model = apps.get_model("readiness", "AuditEvent")
    head_model = apps.get_model("readiness", "AuditChainHead")
    legacy = event_model.objects.filter(seq__isnull=True)
    last = legacy.order_by("-id").values_list("hash", flat=True).first()
    if last:
        head_model.objects.create(chain="legacy", seq=legacy.count(), hash=last)
    vendor = schema_editor.connection.vendor
    # The checkpoints are append-only like the events; on SQLite, the events' triggers are
    # made again in case altering the table rebuilt it (that drops a table's triggers).
    statements = append_only_sql("readiness_auditcheckpoint", vendor)
    if vendor == "sqlite":
        statements += append_only_sql("signoff_auditevent", vendor)
    for statement in statements:
        schema_editor.execute(statement, params=None)


def drop_legacy_head(apps, schema_editor):
    for statement in append_only_reverse_sql(
        "readiness_auditcheckpoint", schema_editor.connection.vendor
    ):
        schema_editor.execute(statement, params=None)
    apps.get_model("readiness", "AuditChainHead").objects.filter(chain="legacy").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("readiness", "0010_outbox"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("signoff", "0011_append_only_everywhere"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("chain", models.CharField(max_length=40, unique=True)),
                ("seq", models.PositiveBigIntegerField()),
                ("hash", models.CharField(max_length=64)),
                ("checkpointed_seq", models.PositiveBigIntegerField(blank=True, null=True)),
                ("checkpointed_hash", models.CharField(blank=True, max_length=64)),
            ],
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField()),
                (
                    "tree_size",
                    models.PositiveIntegerField(help_text="Chains committed by the root."),
                ),
                ("root", models.CharField(max_length=64)),
                (
                    "leaves",
                    models.JSONField(
                        help_text="[chain, seq, head hash] of the chains that changed."
                    ),
                ),
                (
                    "events",
                    models.PositiveBigIntegerField(help_text="Events on all chains at the time."),
                ),
                ("prev_hash", models.CharField(max_length=64)),
                ("hash", models.CharField(max_length=64, unique=True)),
            ],
            options={
                "ordering": ["id"],
            },
        ),
        migrations.AddField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(
                blank=True,
                help_text="Position on its chain (1 first); empty on the legacy single chain.",
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("deployment__isnull", False), ("seq__isnull", False)),
                fields=("deployment", "seq"),
                name="audit_one_event_per_deployment_chain_position",
            ),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("deployment__isnull", True), ("seq__isnull", False)),
                fields=("seq",),
                name="audit_one_event_per_installation_chain_position",
            ),
        ),
        migrations.RunPython(legacy_head, drop_legacy_head),
    ]
