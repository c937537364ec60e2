import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run the web server (gunicorn) and a Celery worker together in the foreground; "
        "Ctrl-C stops both. This is what `make run` uses; production runs them as separate "
        "services (docker-compose.yml)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")

    def handle(self, *args, bind: str, concurrency: int, **options):
        python = sys.executable
        commands = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "readiness.wsgi",
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
                "--concurrency",
                str(concurrency),
            ],
        }
        processes = {
            name: subprocess.Popen(command, env=os.environ.copy())
            for name, command in commands.items()
        }
        self.stdout.write(
            self.style.SUCCESS(f"Readiness is starting on http://{bind}/ (Ctrl-C stops)")
        )
        exit_code = 0
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
