import json

import boto3
from django.core.management.base import BaseCommand, CommandError

from readiness.probe_runs.services import probe_settings
from readiness.probes.base import ATTENTION_STATUSES
from readiness.probes.runner import run_all, select
from readiness.probes.session import known_regions


class Command(BaseCommand):
    help = (
        "Run the AWS probes now, in this process, with the ambient credentials and endpoint "
        "(AWS_PROFILE, AWS_ENDPOINT_URL, ...). Exit code 0 when the probes ran, even if some "
        "failed; 2 on bad arguments."
    )

    def add_arguments(self, parser):
        parser.add_argument("--region", action="append", required=True, dest="regions")
        parser.add_argument("--only", action="append", default=[], metavar="KEY")
        parser.add_argument("--format", choices=["json", "table"], default="table")
        parser.add_argument("--list", action="store_true", help="List the probes and exit.")

    def handle(self, *args, regions, only, format, list, **options):
        known = set(known_regions())
        unknown = [region for region in regions if region not in known]
        if unknown:
            raise CommandError(f"unknown region: {', '.join(unknown)}", returncode=2)
        try:
            probes = select(only)
        except KeyError as exc:
            raise CommandError(f"unknown probe: {exc.args[0]}", returncode=2) from None
        if list:
            for probe in probes:
                self.stdout.write(f"{probe.key:<32} {probe.section} / {probe.item}")
            return
        executions = run_all(
            session=boto3.Session(),
            regions=regions,
            keys=[p.key for p in probes],
            settings=probe_settings(),
        )
        rows = [
            {
                "probe": execution.probe.key,
                "section": execution.probe.section,
                "item": execution.probe.item,
                "region": execution.region,
                "status": str(execution.result.status),
                "summary": execution.result.summary,
                "resources": [finding.as_json() for finding in execution.result.findings],
                "remediation": execution.probe.remediation,
                "duration_ms": execution.duration_ms,
            }
            for execution in executions
        ]
        if format == "json":
            self.stdout.write(json.dumps(rows, indent=2))
            return
        width = max((len(row["probe"]) for row in rows), default=10)
        for row in rows:
            self.stdout.write(
                f"{row['status'].upper():<15}{row['probe']:<{width + 2}}{row['region']:<16}"
                f"{row['summary']}"
            )
            for resource in row["resources"]:
                if resource["status"] in ATTENTION_STATUSES:
                    self.stdout.write(f"{'':15}  - {resource['id']}: {resource['reason']}")
