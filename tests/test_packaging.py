"""The wheel holds every package of the source tree, and each of its modules imports."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("readiness", "signoff")


def _source_modules() -> set[str]:
    modules = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_the_wheel_carries_every_module_and_each_imports_from_it(tmp_path):
    wheel_dir, site, source = tmp_path / "wheel", tmp_path / "site", tmp_path / "source"
    # Built from a copy: setuptools leaves build/ and egg-info beside what it builds.
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*command, "-q", "-w", str(wheel_dir), str(source)], cwd=source, check=True, timeout=300
    )
    (wheel,) = wheel_dir.glob("readiness-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    in_wheel = {
        name[: -len(".py")].replace("/", ".").removesuffix(".__init__")
        for name in names
        if name.endswith(".py")
    }
    assert _source_modules() - in_wheel == set()
    assert "readiness/data/production-readiness-checklist.md" in names

    # A fresh interpreter that sees the wheel's files only (not this checkout) imports every
    # module, migrations and management commands included.
    script = (
        "import importlib, sys, django\n"
        "django.setup()\n"
        "import readiness\n"
        f"assert readiness.__file__.startswith({str(site)!r}), readiness.__file__\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        failed.append(f'{name}: {type(error).__name__}: {error}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE"}
    }
    environment.update(
        PYTHONPATH=str(site),
        DJANGO_SETTINGS_MODULE="readiness.project.settings",
        DATA_DIR=str(tmp_path / "data"),
        PYTHONSAFEPATH="1",
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *sorted(in_wheel)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
