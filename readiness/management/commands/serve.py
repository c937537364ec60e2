import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Run the web server (gunicorn) and a Celery worker together in the foreground; "
        "Ctrl-C stops both. This is what `make run` uses; production runs them as separate "
        "services (docker-compose.yml)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=8, help="Celery worker threads")
        parser.add_argument(
            "--demo-aws",
            action="store_true",
            help="Start a moto server (an emulated AWS account with demo resources) on "
            "127.0.0.1 and point the workers and the demo deployment at it.",
        )
        parser.add_argument("--moto-port", type=int, default=5055)

    def handle(self, *args, bind: str, concurrency: int, demo_aws: bool, moto_port: int, **options):
        python = sys.executable
        env = os.environ.copy()
        moto = None
        if demo_aws:
            moto, env = self._start_demo_aws(moto_port, env)
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
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
            "worker": [
                python,
                "-m",
                "celery",
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
        processes = {
            name: subprocess.Popen(command, env=environments[name])
            for name, command in commands.items()
        }
        if moto is not None:
            processes["moto"] = moto
        self.stdout.write(
            self.style.SUCCESS(f"Readiness is starting on http://{bind}/ (Ctrl-C stops)")
        )
        exit_code = 0
        # `kill`, systemd and `timeout` send SIGTERM: stop the children as Ctrl-C would.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while all(process.poll() is None for process in processes.values()):
                time.sleep(0.5)
            # One of them died on its own: stop the other too rather than run half an app.
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with code {process.returncode}")
                    exit_code = process.returncode or 1
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        sys.exit(exit_code)

    def _start_demo_aws(self, port: int, env: dict):
        from readiness.checklists.models import Deployment
        from readiness.dev.demo_aws import (
            DEMO_ACCOUNT,
            DEMO_ENV,
            DEMO_REGIONS,
            seed_account,
            start_moto_server,
        )

        endpoint = f"http://127.0.0.1:{port}"
        log_path = str(settings.DATA_DIR / "moto.log")
        self.stdout.write(f"Starting the demo AWS account (moto) on {endpoint} …")
        moto = start_moto_server(port, log_path=log_path)
        seed_account(endpoint)
        updated = Deployment.objects.filter(service="payments-api", aws_account_id="").update(
            aws_account_id=DEMO_ACCOUNT, aws_regions=list(DEMO_REGIONS)
        )
        if updated:
            self.stdout.write(f"Pointed {updated} demo deployment(s) at the emulated account.")
        env = {**env, **DEMO_ENV, "AWS_ENDPOINT_URL": endpoint}
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        return moto, env
