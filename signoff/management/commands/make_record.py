from django.core.management.base import BaseCommand, CommandError

from readiness.checklists.models import Deployment
from signoff.records import services as records


class Command(BaseCommand):
    help = (
        "Render, sign and store the record of an approved or verified deployment now (what "
        "the worker does after the transition). Safe to re-run: the same state is stored once."
    )

    def add_arguments(self, parser):
        parser.add_argument("deployment_id", type=int)

    def handle(self, *args, deployment_id, **options):
        deployment = Deployment.objects.filter(pk=deployment_id).first()
        if deployment is None:
            raise CommandError(f"No deployment {deployment_id}.")
        record = records.record_generate(deployment_id=deployment_id)
        if record is None:
            raise CommandError(
                f"Deployment {deployment_id} is {deployment.get_state_display().lower()}: "
                "records are made when it is approved or verified."
            )
        signed = "PAdES-signed" if record.pades_signed else "not signed (no key configured)"
        self.stdout.write(
            f"record {record.number} of {deployment}: {record.file.name}, {signed}, "
            f"sha256 {record.sha256}"
        )
