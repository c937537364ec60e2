from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from readiness.checklists import markdown_import, services


class Command(BaseCommand):
    help = (
        "Import a Markdown checklist as a template. Safe to re-run: the same name and content "
        "finds the existing version; changed content makes a new version."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--name", default="", help="Template name (default: the '# Title').")

    def handle(self, *args, file: Path, name: str, **options):
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from exc
        try:
            source = markdown_import.decode(raw)
            result = services.template_import(source=source, name=name)
        except markdown_import.TemplateImportError as error:
            details = "\n".join(f"  {file}: {e}" for e in error.errors)
            raise CommandError(f"nothing imported:\n{details}") from error
        template = result.template
        count = sum(section.items.count() for section in template.sections.all())
        verb = "Imported" if result.created else "Already imported"
        self.stdout.write(
            f"{verb}: {template} ({template.sections.count()} sections, {count} items)"
        )
