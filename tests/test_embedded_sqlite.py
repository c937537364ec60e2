"""The statements written in SQL (readiness/sql.py and the hot reads and writes built on it)
run on SQLite too, the embedded default of `make run`: the suite itself runs on PostgreSQL
in CI, where a clause SQLite lacks (DISTINCT ON), a value it cannot take (an integer past 64
bits from a URL) or a conversion only its backend makes (datetimes stored as text) would go
unnoticed. This runs the tests of those reads and writes, and of the pages and saves that use
them, on a new SQLite database in a pytest of its own.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ON_SQLITE = [
    "tests/readiness/test_sql_reads.py",
    "tests/readiness/checklists/test_item_visible_to.py",
    "tests/signoff/lifecycle/test_active_waivers.py",
    "tests/signoff/lifecycle/test_lifecycle_reads.py",
    "tests/signoff/lifecycle/test_signoff_reads.py",
    "tests/signoff/teams/test_session_reads.py",
    "tests/readiness/web/test_item_editing.py",
    "tests/readiness/web/test_checklist_page.py",
    "tests/readiness/web/test_checklist_rows.py",
    "tests/readiness/web/test_hostile_input.py::test_ids_too_big_for_the_database_are_a_404",
]


def test_the_statements_written_in_sql_run_on_the_embedded_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'readiness.sqlite3'}",
        "DATA_DIR": str(tmp_path),
    }
    # conftest.py refuses SQLite under CI=true, rightly for the suite as a whole.
    env.pop("CI", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *ON_SQLITE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
