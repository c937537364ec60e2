"""Browser tests: pytest-playwright driving Debian's chromium against pytest-django's live_server.

`playwright install` downloads a browser and fails here: the tests use /usr/bin/chromium
(`apt-get install -y chromium`) and fail, never skip, when it is missing.
"""

import asyncio
import os
from pathlib import Path

import pytest

# Playwright's sync API leaves its event loop set as the test thread's running loop; Django
# then refuses ORM calls from that thread unless told they are safe (they are: the calls stay
# synchronous and the loop never runs Django code).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # Without these, chromium floods the closed network with connection attempts.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    # A conftest hook sees every collected item: mark only the ones in this folder.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)
    # Browser tests last: Playwright leaves its event loop set as the main thread's running
    # loop for the rest of the session, which code that starts its own loop (pyHanko) and
    # Django's async-safety checks would otherwise meet in every later test.
    items.sort(key=lambda item: HERE in item.path.parents)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install chromium (do not run `playwright install`)",
            pytrace=False,
        )
    headless = browser_type_launch_args.get("headless", True)
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [*(["--headless"] if headless else []), *CHROMIUM_ARGS],
    }


def _thread_connections() -> dict:
    """Django's connections as code outside any event loop sees them."""
    from django.db import connections

    loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        return {alias: connections[alias] for alias in connections}
    finally:
        asyncio._set_running_loop(loop)


@pytest.fixture(scope="session", autouse=True)
def _one_django_connection_per_alias(request, django_db_setup):
    """Give the tests the connections django_db_setup prepared, also while Playwright runs.

    Between calls, Playwright's sync API leaves its event loop set as the thread's running
    loop. Django then looks its connections up in a context-local store instead of the
    thread-local one django_db_setup filled, and hands out fresh connection objects: those
    lack `_test_serialized_contents`, so `serialized_rollback` silently restored nothing (the
    default template of the data migration was gone) whenever another database test ran
    first in the session. Put the same objects in both stores.
    """
    from django.db import connections

    prepared = _thread_connections()
    request.getfixturevalue("playwright")  # from now on the loop looks running
    for alias, connection in prepared.items():
        connections[alias] = connection
