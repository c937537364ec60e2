from django.db import migrations


def load_default_template(apps, schema_editor):
    from readiness.checklists import markdown_import
    from readiness.checklists.services import DEFAULT_TEMPLATE_FILE, store_parsed_template

    source = DEFAULT_TEMPLATE_FILE.read_text(encoding="utf-8")
    parsed = markdown_import.parse(source)
    template_model = apps.get_model("readiness", "ChecklistTemplate")
    if template_model.objects.filter(name=parsed.name, content_sha256=parsed.sha256).exists():
        return
    store_parsed_template(apps=apps, parsed=parsed, source=source, is_default=True)


class Migration(migrations.Migration):
    dependencies = [("readiness", "0001_initial")]
    operations = [migrations.RunPython(load_default_template, migrations.RunPython.noop)]
