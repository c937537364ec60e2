"""Per-deployment audit chains (plus the installation's), their heads and the checkpoints.

Events written before keep their hashes: they are the legacy chain, in id order, and its
head becomes a head like any other, so the first checkpoint commits it.
"""

from django.conf import settings
from django.db import migrations, models

# The checkpoints are append-only like the events (signoff.0004 defines the function).
CHECKPOINTS_APPEND_ONLY = """
CREATE TRIGGER readiness_auditcheckpoint_append_only
    BEFORE UPDATE OR DELETE ON readiness_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION signoff_refuse_change();
"""


def legacy_head(apps, schema_editor):
    event_model = apps.get_model("readiness", "AuditEvent")
    head_model = apps.get_model("readiness", "AuditChainHead")
    legacy = event_model.objects.filter(seq__isnull=True)
    last = legacy.order_by("-id").values_list("hash", flat=True).first()
    if last:
        head_model.objects.create(chain="legacy", seq=legacy.count(), hash=last)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CHECKPOINTS_APPEND_ONLY, params=None)


def drop_legacy_head(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS readiness_auditcheckpoint_append_only "
            "ON readiness_auditcheckpoint",
            params=None,
        )
    apps.get_model("readiness", "AuditChainHead").objects.filter(chain="legacy").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("readiness", "0010_outbox"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("signoff", "0004_audit_append_only"),
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
