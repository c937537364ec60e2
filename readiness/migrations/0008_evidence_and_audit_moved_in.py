"""Evidence (from the api app) and the audit trail (from signoff) join the checklist layer.

State only: the tables keep their names (api_evidence, api_evidenceverdict,
signoff_auditevent), their rows, constraints and the audit table's append-only triggers.
Content types follow the models, so permissions and admin history stay attached.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import readiness.evidence.models

MOVED = [("api", "evidence"), ("api", "evidenceverdict"), ("signoff", "auditevent")]


def content_types_follow(apps, schema_editor, forward=True):
    content_type = apps.get_model("contenttypes", "ContentType")
    for old_label, model in MOVED:
        source, target = (old_label, "readiness") if forward else ("readiness", old_label)
        if not content_type.objects.filter(app_label=target, model=model).exists():
            content_type.objects.filter(app_label=source, model=model).update(app_label=target)


def content_types_return(apps, schema_editor):
    content_types_follow(apps, schema_editor, forward=False)


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("readiness", "0007_decision_source_evidence"),
        ("signoff", "0008_signed_record_append_only"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Evidence",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("cobertura", "Cobertura coverage XML"),
                                    ("junit", "JUnit XML test report"),
                                    ("trivy", "Trivy JSON report"),
                                    ("gitleaks", "Gitleaks JSON report"),
                                ],
                                max_length=10,
                            ),
                        ),
                        ("filename", models.CharField(max_length=255)),
                        (
                            "file",
                            models.FileField(
                                max_length=300,
                                upload_to=readiness.evidence.models.evidence_upload_to,
                            ),
                        ),
                        ("sha256", models.CharField(max_length=64)),
                        ("size_bytes", models.PositiveIntegerField()),
                        ("uploaded_at", models.DateTimeField()),
                        (
                            "deployment",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="evidence",
                                to="readiness.deployment",
                            ),
                        ),
                        (
                            "token",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="api.apitoken",
                            ),
                        ),
                        (
                            "uploaded_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "evidence",
                        "db_table": "api_evidence",
                        "ordering": ["-uploaded_at", "-pk"],
                    },
                ),
                migrations.CreateModel(
                    name="EvidenceVerdict",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("passed", models.BooleanField()),
                        ("summary", models.TextField()),
                        ("details", models.JSONField(default=list)),
                        ("facts", models.JSONField(default=dict)),
                        (
                            "applied",
                            models.BooleanField(
                                help_text=(
                                    "Whether it set the item; a person's or probe's decision"
                                    " stands."
                                )
                            ),
                        ),
                        ("conflict", models.TextField(blank=True)),
                        (
                            "evidence",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="verdicts",
                                to="readiness.evidence",
                            ),
                        ),
                        (
                            "item",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="evidence_verdicts",
                                to="readiness.checklistitem",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "api_evidenceverdict",
                        "ordering": ["-evidence__uploaded_at", "-pk"],
                    },
                ),
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("created_at", models.DateTimeField()),
                        ("action", models.CharField(max_length=50)),
                        ("object_type", models.CharField(max_length=50)),
                        ("object_id", models.CharField(max_length=50)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("after", models.JSONField(blank=True, null=True)),
                        ("reason", models.TextField(blank=True)),
                        ("ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("prev_hash", models.CharField(max_length=64)),
                        ("hash", models.CharField(max_length=64, unique=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                help_text="Empty for the system (a probe run, a migration).",
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "deployment",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="audit_events",
                                to="readiness.deployment",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "signoff_auditevent",
                        "ordering": ["id"],
                        "indexes": [
                            models.Index(
                                fields=["deployment", "id"], name="signoff_aud_deploym_1ec842_idx"
                            )
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
