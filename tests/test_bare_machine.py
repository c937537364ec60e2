"""`make test` on a bare machine: scripts/system-deps.sh installs the Debian packages the suite
needs when it may, and otherwise prints the command to run and stops.

The script runs with a PATH holding only a stand-in apt-get (and sudo): the machine's own
packages stay untouched, and every tool the test suite calls looks missing.
"""

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What `make test` needs beyond WeasyPrint's libraries (on this image already).
TEST_PACKAGES = ["chromium", "npm", "poppler-utils", "libnss3-tools", "redis-server", "curl"]
# The commands each package brings, as the script checks for them.
PROVIDES = {
    "chromium": ["chromium"],
    # Debian's npm depends on nodejs, which brings node.
    "npm": ["npm", "node"],
    "poppler-utils": ["pdftotext", "pdftoppm", "pdfsig", "pdfinfo", "pdfdetach"],
    "libnss3-tools": ["certutil"],
    "redis-server": ["redis-server"],
    "curl": ["curl"],
    "postgresql-client": ["pg_isready"],
    "redis-tools": ["redis-cli"],
    "docker-compose": ["docker-compose"],
}
BASH = shutil.which("bash") or "/bin/bash"


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def machine():
    """A copy of the script beside an existing venv, and an empty bin folder for PATH.

    In a folder of /tmp that anyone may enter: the test also runs it as `nobody`.
    """
    folder = Path(tempfile.mkdtemp(prefix="bare-machine-"))
    folder.chmod(0o755)
    (folder / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "system-deps.sh", folder / "scripts" / "system-deps.sh")
    (folder / ".venv" / "bin").mkdir(parents=True)
    _executable(folder / ".venv" / "bin" / "python", "#!/bin/sh\nexit 0\n")
    (folder / "bin").mkdir()
    for path in folder.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
    yield folder
    shutil.rmtree(folder)


def _apt_get(machine: Path, *, installs: bool) -> Path:
    """A stand-in apt-get that logs its arguments and, if told to, puts the commands of each
    package it is asked for into the bin folder, as Debian's would into /usr/bin."""
    log = machine / "apt-get.log"
    install = ""
    if installs:
        table = " ".join(f"[{package}]='{' '.join(cmds)}'" for package, cmds in PROVIDES.items())
        install = f"""
declare -A provides=({table})
if [[ $1 == install ]]; then
  for arg in "$@"; do
    for command in ${{provides[$arg]:-}}; do
      printf '#!/bin/sh\\n' > {machine}/bin/$command
      /bin/chmod 755 {machine}/bin/$command
    done
  done
fi"""
    _executable(
        machine / "bin" / "apt-get",
        f'#!{BASH}\necho "$*" >> {log}\n{install}\nexit 0\n',
    )
    return log


def _run(machine: Path, profile: str, *, user: str | None = None) -> subprocess.CompletedProcess:
    drop = {"user": user, "group": "nogroup", "extra_groups": []} if user else {}
    return subprocess.run(
        [BASH, str(machine / "scripts" / "system-deps.sh"), profile],
        **drop,
        env={"PATH": str(machine / "bin"), "HOME": str(machine)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_the_right_to_install_it_prints_the_apt_command_and_stops(machine):
    log = _apt_get(machine, installs=True)
    # As root, drop to `nobody`; a developer's own account has no sudo on this PATH either.
    user = "nobody" if os.geteuid() == 0 else None
    result = _run(machine, "test", user=user)
    assert result.returncode == 1, result.stderr
    packages = " ".join(TEST_PACKAGES)
    assert "make test needs Debian packages that are not installed: " + packages in result.stderr
    assert (
        f"sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends {packages}'"
    ) in result.stderr
    assert not log.exists(), "apt-get must not be tried without the right to install"


def test_with_the_right_to_install_it_installs_what_is_missing_and_passes(machine):
    log = _apt_get(machine, installs=True)
    if os.geteuid() != 0:
        # Passwordless sudo: the other way the script may install.
        _executable(machine / "bin" / "sudo", f'#!{BASH}\n[[ $1 == -n ]] && shift\nexec "$@"\n')
    result = _run(machine, "test")
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        "update -qq",
        "install -y -qq --no-install-recommends " + " ".join(TEST_PACKAGES),
    ]
    # Once installed, a second run finds everything and asks apt for nothing.
    log.unlink()
    assert _run(machine, "test").returncode == 0
    assert not log.exists()


def test_ci_also_installs_the_service_clients_and_docker_compose(machine):
    log = _apt_get(machine, installs=True)
    if os.geteuid() != 0:
        _executable(machine / "bin" / "sudo", f'#!{BASH}\n[[ $1 == -n ]] && shift\nexec "$@"\n')
    assert _run(machine, "ci").returncode == 0
    extra = ["postgresql-client", "redis-tools", "docker-compose"]
    assert log.read_text().splitlines()[-1].endswith(" ".join(TEST_PACKAGES + extra))


def test_when_apt_brings_nothing_it_fails_naming_what_is_still_missing(machine):
    _apt_get(machine, installs=False)
    if os.geteuid() != 0:
        _executable(machine / "bin" / "sudo", f'#!{BASH}\n[[ $1 == -n ]] && shift\nexec "$@"\n')
    result = _run(machine, "test")
    assert result.returncode == 1
    assert "still missing: " + " ".join(TEST_PACKAGES) in result.stderr


def test_make_run_needs_none_of_the_test_tools(machine):
    log = _apt_get(machine, installs=True)
    result = _run(machine, "run", user="nobody" if os.geteuid() == 0 else None)
    assert result.returncode == 0, result.stderr
    assert not log.exists()


def test_make_test_checks_the_system_packages_before_anything_else():
    # `make -n` prints the recipes in the order make would run them, running none.
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "test", "PYTHON=python3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith("make")]
    assert "scripts/system-deps.sh test" in lines[0]
    assert "pytest" in lines[-1]


def test_ci_installs_through_the_same_script_and_runs_the_readme_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/system-deps.sh ci" in ci
    assert "apt-get" not in ci
    assert "\nmake test " in ci
