"""The session store (SESSION_ENGINE): Django's database sessions, read in one SQL statement.

Every request that carries a session cookie reads its session, and every logged-in request
then reads its user (signoff.teams.authentication.AccountBackend): two reads by key, where
building and compiling the ORM's statement took about 2.5 times the CPU of running it, most
of the fixed cost of each page, htmx save and poll. Here the statement is written once per
process, its table and columns taken from the Session model's `_meta`, and only run after.

Why not another engine: `cache` and `cached_db` keep sessions in the cache, so a session
deleted in the database (a logout elsewhere, `clearsessions`, an administrator) would still
be served from the cache, and the user would still be read; `signed_cookies` cannot end a
session on the server at all. Nothing here is cached in the process: every request reads
its session row, so a flushed or deleted session is refused at once by every worker.

Everything else is Django's `db` store: the row must not have expired (`expire_date` later
than now, compared as the ORM compares it), a key with no such row leaves the session empty
with no key (a new one is made if it is saved), and writes go through the ORM.
"""

import functools

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection
from django.utils import timezone

from readiness.sql import column


class SessionStore(DatabaseSessionStore):
    def load(self):
        with connection.cursor() as cursor:
            cursor.execute(_session_sql(), [self.session_key, _expiry_now()])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return {}
        return self.decode(row[0])


@functools.cache
def _session_sql() -> str:
    meta = SessionStore.get_model_class()._meta
    return (
        f"SELECT {column(meta, 'session_data')} FROM {connection.ops.quote_name(meta.db_table)}"
        f" WHERE {column(meta, 'session_key')} = %s AND {column(meta, 'expire_date')} > %s"
    )


def _expiry_now():
    """Now, as the ORM passes it for `expire_date__gt` (a string in UTC for SQLite)."""
    field = SessionStore.get_model_class()._meta.get_field("expire_date")
    return field.get_db_prep_value(timezone.now(), connection)
