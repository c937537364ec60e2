"""Fill the progress counters of the deployments that existed before them.

Batches of ids, each committed on its own (the migration is not atomic), so a large table
is never locked whole and an interrupted run just starts again: recounting is idempotent.
"""

from django.db import migrations, transaction

from readiness.checklists.progress import counter_expressions

BATCH = 1000


def fill(apps, schema_editor):
    deployment_model = apps.get_model("readiness", "Deployment")
    item_model = apps.get_model("readiness", "ChecklistItem")
    expressions = counter_expressions(item_model)
    last_id = 0
    while True:
        ids = list(
            deployment_model.objects.filter(pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return
        last_id = ids[-1]
        with transaction.atomic(using=schema_editor.connection.alias):
            deployment_model.objects.filter(pk__in=ids).update(**expressions)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("readiness", "0014_deployment_progress"),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop, atomic=False),
    ]
