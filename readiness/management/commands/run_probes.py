import time

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from readiness.checklists.models import Deployment
from readiness.probe_runs import selectors as probe_run_selectors
from readiness.probe_runs import services as probe_runs
from readiness.probe_runs.models import ProbeRun


class Command(BaseCommand):
    help = (
        "Start a probe run for a deployment on the Celery workers (or join the active one); "
        "--wait follows it to the end. --account and --region (each repeatable) read part of "
        "the target: such a run is partial (its failures fail items, its passes mark none done)."
    )

    def add_arguments(self, parser):
        parser.add_argument("deployment_id", type=int)
        parser.add_argument("--user", help="Team member the run is recorded for (default: owner)")
        parser.add_argument(
            "--account", action="append", dest="accounts", help="an account id of the target"
        )
        parser.add_argument(
            "--region", action="append", dest="regions", help="a region of the target"
        )
        parser.add_argument("--wait", action="store_true")
        parser.add_argument("--timeout", type=float, default=300.0)

    def handle(self, *args, deployment_id, user, accounts, regions, wait, timeout, **options):
        try:
            deployment = Deployment.objects.select_related("owner", "team").get(pk=deployment_id)
        except Deployment.DoesNotExist:
            raise CommandError(f"no deployment {deployment_id}", returncode=2) from None
        requester = deployment.owner
        if user:
            requester = deployment.team.members.filter(username=user).first()
            if requester is None:
                raise CommandError(f"{user} is not in team {deployment.team}", returncode=2)
        try:
            run, created = probe_runs.probe_run_start(
                deployment=deployment, user=requester, accounts=accounts, regions=regions
            )
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(
                " ".join(getattr(exc, "messages", [str(exc)])), returncode=2
            ) from exc
        # Named as the deployment's pages name it: a started run is read again for its
        # number (a joined one comes numbered).
        if getattr(run, "number", None) is None:
            run = probe_run_selectors.numbered(ProbeRun.objects.filter(pk=run.pk)).get()
        name = probe_run_selectors.run_name(run)
        verb = "Started" if created else "Joined active"
        read = ", ".join(account["account_id"] for account in run.accounts)
        self.stdout.write(
            f"{verb} {name[0].lower()}{name[1:]}: {run.total} checks in {', '.join(run.regions)} "
            f"of {read}" + (" (partial: part of the target)" if run.partial else "")
        )
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while run.is_active:
            if time.monotonic() > deadline:
                raise CommandError(
                    f"{name} still running after {timeout:g} s ({run.completed}/{run.total})"
                )
            time.sleep(0.2)
            run = ProbeRun.objects.get(pk=run.pk)
        counts: dict[str, int] = {}
        for status in run.results.values_list("status", flat=True):
            counts[status] = counts.get(status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        state = run.get_state_display().lower()
        self.stdout.write(f"{name} {state} in {run.duration_seconds:.2f} s: {summary}")
        if run.error:
            self.stdout.write(run.error)
