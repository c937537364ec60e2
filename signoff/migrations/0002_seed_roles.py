from django.db import migrations
from django.utils.text import slugify

from readiness.checklists.ownership import DEFAULT_SECTION_OWNERS, SEED_ROLES

DESCRIPTIONS = {
    "Tech Lead": "Owns Performance, Testing and Operational.",
    "Security": "Owns Security and Compliance.",
    "DevOps": "Owns Reliability, Monitoring & Observability, Cost Optimization and Deployment.",
    "Product": "Reads the whole checklist's summary and signs for the release.",
}


def seed_roles(apps, schema_editor):
    role_model = apps.get_model("signoff", "Role")
    roles = {}
    for position, name in enumerate(SEED_ROLES, start=1):
        roles[name], _ = role_model.objects.get_or_create(
            name=name,
            defaults={
                "slug": slugify(name),
                "position": position,
                "description": DESCRIPTIONS[name],
            },
        )
    item_model = apps.get_model("readiness", "TemplateItem")
    for section, role in DEFAULT_SECTION_OWNERS.items():
        item_model.objects.filter(section__title=section, owner_role__isnull=True).update(
            owner_role=roles[role]
        )


class Migration(migrations.Migration):
    dependencies = [("signoff", "0001_roles"), ("readiness", "0004_item_owner_role")]
    operations = [migrations.RunPython(seed_roles, migrations.RunPython.noop)]
