"""Names for the few statements written in SQL instead of built through the ORM (on hot paths
where compiling the ORM's statement cost more CPU than running it): columns taken from the
models' `_meta` and quoted for the connection's database, so that renaming a field or its
column changes the statement with it."""

from django.db import connection


def column(meta, field: str) -> str:
    """The quoted column of the model field named `field` (`team` gives `"team_id"`)."""
    return connection.ops.quote_name(meta.get_field(field).column)
