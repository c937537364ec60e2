import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


def _interrupt(signum, frame):
    raise KeyboardInterrupt


# As root, Celery warns that the worker has superuser privileges (a SecurityWarning, on every
# start). The demo cannot drop them: its three processes share one SQLite database in WAL mode,
# whose -shm file the first opener creates, so all of them (and the migrate and seed_demo
# that `make run` runs before) must be one account; and the venv's interpreter often lives
# where no other account may read it (pyenv under a 0700 /root, as on this project's
# machines). The danger Celery warns about is unpickling messages as root: this worker
# accepts JSON only (CELERY_ACCEPT_CONTENT), which is also why C_FORCE_ROOT is not needed,
# and the demo listens on loopback. So the demo's worker ignores that one warning and
# serve says once, itself, that it runs as root. Production runs as a user (Dockerfile).
ROOT_WORKER = (
    "import sys, warnings\n"
    "from celery.exceptions import SecurityWarning\n"
    "warnings.filterwarnings('ignore', category=SecurityWarning)\n"
    "from celery.__main__ import main\n"
    "sys.argv[0] = 'celery'\n"
    "sys.exit(main())\n"
)


class Command(BaseCommand):
    help = (
        "Run the web server (gunicorn) and a Celery worker together in the foreground; "
        "Ctrl-C stops both. This is what `make run` uses; production runs them as separate "
        "services (docker-compose.yml)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind", default="127.0.0.1:8000", help="web address, HOST:PORT (make run PORT=…)"
        )
        parser.add_argument("--concurrency", type=int, default=8, help="Celery worker threads")
        parser.add_argument(
            "--demo-aws",
            action="store_true",
            help="Start a moto server (an emulated AWS account with demo resources) on "
            "127.0.0.1 and point the workers and the demo deployment at it.",
        )
        parser.add_argument(
            "--moto-port",
            type=int,
            default=5055,
            help="port of the AWS emulator on 127.0.0.1 (make run EMULATOR_PORT=…)",
        )

    def handle(self, *args, bind: str, concurrency: int, demo_aws: bool, moto_port: int, **options):
        # Ctrl-C (SIGINT) and `kill`, systemd or `timeout` (SIGTERM) stop everything the same
        # way, from the first line on: even while the emulator starts, nothing is left behind
        # and the exit status is 0 (make reports a non-zero one as "Error 1").
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        processes: dict[str, subprocess.Popen] = {}
        exit_code = 0
        try:
            self._run(processes, bind, concurrency, demo_aws, moto_port)
            # One of them died on its own: stop the others too rather than run half an app.
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with code {process.returncode}")
                    exit_code = process.returncode or 1
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self._stop(processes)
        if exit_code:
            sys.exit(exit_code)
        self.stdout.write("Stopped.")

    def _run(self, processes: dict, bind: str, concurrency: int, demo_aws: bool, moto_port: int):
        python = sys.executable
        env = os.environ.copy()
        if demo_aws:
            env = self._start_demo_aws(moto_port, env, processes)
        as_root = os.geteuid() == 0
        commands = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "readiness.project.wsgi",
                "--bind",
                bind,
                "--workers",
                "2",
                # Threads and the workers' hooks, as the image and compose run them.
                "--config",
                "python:readiness.project.gunicorn_conf",
                "--access-logfile",
                "-",
                # Nothing here uses gunicorn's control interface, and its default socket
                # (~/.gunicorn/gunicorn.ctl) is one per account: a second checkout's server
                # took it over from the first's.
                "--no-control-socket",
            ],
            "worker": [
                python,
                *(["-c", ROOT_WORKER] if as_root else ["-m", "celery"]),
                "-A",
                "readiness",
                "worker",
                "--loglevel",
                "INFO",
                # Probes wait on AWS: threads share one process's clients (see docker-compose).
                "--pool",
                "threads",
                "--concurrency",
                str(concurrency),
                # One machine, one worker: it also runs the beat schedule (the run sweeper).
                "--beat",
                "--schedule",
                str(settings.DATA_DIR / "celerybeat-schedule"),
            ],
        }
        environments = {"web": env, "worker": {**env, "MALLOC_ARENA_MAX": "2"}}
        for name, command in commands.items():
            # A process group of their own: a terminal's Ctrl-C reaches this command alone,
            # which stops them in order (web first, then the worker finishes its tasks).
            processes[name] = subprocess.Popen(command, env=environments[name], process_group=0)
        if as_root:
            self.stdout.write(
                "Running as root (the demo's processes share one SQLite database, so they "
                "run as one account); run make run as an ordinary user anywhere that matters."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Readiness is starting on http://{bind}/ — log in at http://{bind}/login/ "
                "(Ctrl-C stops)"
            )
        )
        while all(process.poll() is None for process in processes.values()):
            time.sleep(0.5)

    def _stop(self, processes: dict) -> None:
        # The app first (the worker finishes the task at hand), then the emulator it may call.
        for group in (("web", "worker"), ("moto",)):
            running = [processes[name] for name in group if name in processes]
            for process in running:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in running:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def _start_demo_aws(self, port: int, env: dict, processes: dict) -> dict:
        from readiness.dev.demo_aws import (
            DEMO_ENV,
            start_moto_server,
        )

        endpoint = f"http://127.0.0.1:{port}"
        log_path = str(settings.DATA_DIR / "moto.log")
        self.stdout.write(f"Starting the demo AWS organization (moto) on {endpoint} …")
        processes["moto"] = start_moto_server(port, log_path=log_path)
        pointed = demo_target(endpoint)
        if pointed:
            self.stdout.write(
                f"Pointed {pointed} demo deployment(s) at the emulated organization's accounts."
            )
        env = {**env, **DEMO_ENV, "AWS_ENDPOINT_URL": endpoint}
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        return env


def demo_target(endpoint: str) -> int:
    """Seed the emulated organization and point the demo deployment (a draft with no AWS
    target, or with the one account earlier versions gave it) at its three accounts, through
    the services (audited, as a person would); returns how many deployments were pointed."""
    from readiness.checklists import targets
    from readiness.checklists.models import Deployment
    from readiness.dev.demo_aws import (
        DEMO_ACCOUNT,
        DEMO_REGIONS,
        MEMBER_ROLE_PATTERN,
        ORGANIZATION_READER,
        seed_account,
        seed_organization,
    )

    seed_account(endpoint)
    accounts = seed_organization(endpoint)
    specs = [
        targets.AccountSpec(
            account_id=account.account_id,
            name=account.name,
            regions=list(DEMO_REGIONS),
            role_arn=account.role_arn,
        )
        for account in accounts
    ]
    demo = Deployment.objects.filter(service="payments-api", state="draft").select_related(
        "team", "owner"
    )
    pointed = 0
    for deployment in demo:
        # No target yet, or the single emulated account an earlier version pointed it at.
        if set(deployment.aws_accounts.values_list("account_id", flat=True)) - {DEMO_ACCOUNT}:
            continue
        targets.deployment_set_aws_target(
            deployment=deployment, user=deployment.owner, accounts=specs
        )
        targets.aws_organization_save(
            deployment=deployment,
            user=deployment.owner,
            role_arn=f"arn:aws:iam::{DEMO_ACCOUNT}:role/{ORGANIZATION_READER}",
            member_role_pattern=MEMBER_ROLE_PATTERN,
        )
        pointed += 1
    return pointed
