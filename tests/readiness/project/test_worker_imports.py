"""What a Celery worker imports when it starts: the probes' worker memory budget (docs,
bench/worker_memory.py) holds only while the record and emulator libraries stay out."""

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# As `celery -A readiness worker` loads the app: Django set up through Celery's fixup, every
# task module imported, the worker's own initialisation (where the system checks would run).
SCRIPT = """
import json, sys
from readiness.project.celery import app
app.loader.init_worker()
print(json.dumps({"tasks": sorted(app.tasks), "modules": sorted(sys.modules)}))
"""
# Only a record being drawn, signed or read needs these (WeasyPrint's fontTools and Pillow
# with it), and moto only the emulator's own process: some 60 MB in every worker; the API
# alone needs django-ninja and its pydantic (~12 MB).
HEAVY = ("weasyprint", "fontTools", "pyhanko", "pypdf", "moto", "PIL", "ninja", "pydantic")


def test_a_worker_starts_without_the_record_or_emulator_libraries(tmp_path):
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "readiness.project.settings",
        "DATA_DIR": str(tmp_path),
    }
    environment.pop("CELERY_SKIP_CHECKS", None)  # what project/celery.py sets, not the caller
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert {"readiness.probe_results_execute", "signoff.record_generate"} <= set(loaded["tasks"])
    top_level = {name.partition(".")[0] for name in loaded["modules"]}
    assert not top_level & set(HEAVY), sorted(top_level & set(HEAVY))


def test_a_prefork_pool_freezes_the_parents_objects_before_each_child():
    # Left to the garbage collector, a child's first collections write to every object it
    # inherited and copy those pages: ~45 MB more per child (bench/worker_memory.py).
    from celery.signals import worker_before_create_process

    import readiness.project.celery  # noqa: F401  (connects the receiver)

    gc.unfreeze()
    try:
        worker_before_create_process.send(sender=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
