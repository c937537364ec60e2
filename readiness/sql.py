"""Names for the few statements written in SQL instead of built through the ORM (on hot paths
where compiling the ORM's statement cost more CPU than running it): columns taken from the
models' `_meta` and quoted for the connection's database, so that renaming a field or its
column changes the statement with it."""

import functools
from collections.abc import Collection

from django.db import connection


def column(meta, field: str) -> str:
    """The quoted column of the model field named `field` (`team` gives `"team_id"`)."""
    return connection.ops.quote_name(meta.get_field(field).column)


def columns(meta, alias: str, fields: Collection[str] | None = None) -> str:
    """The quoted columns of the model's concrete fields (only those named in `fields`,
    when given), in the model's order, each prefixed with the table alias `alias`: the
    SELECT list whose values from_row reads back."""
    return ", ".join(f"{alias}.{column(meta, name)}" for name in _field_names(meta, fields))


def from_row(model, values, fields: Collection[str] | None = None):
    """An instance of `model` from the values of a SELECT of columns(model._meta, alias,
    fields), built as the ORM builds one (the fields' from_db_value, then Model.from_db):
    the fields not read are deferred, as with QuerySet.only()."""
    attnames, converters = _reading(model, None if fields is None else frozenset(fields))
    if converters:
        values = list(values)
        for index, field in converters:
            values[index] = field.from_db_value(values[index], None, connection)
    return model.from_db(connection.alias, attnames, values)


@functools.cache
def _reading(model, fields: frozenset[str] | None):
    """The attnames from_db takes for `fields` (None: all), and the (index, field) of the
    values to convert (a JSON column, which the connection hands over as text)."""
    read = [
        field for field in model._meta.concrete_fields if fields is None or field.name in fields
    ]
    converters = tuple(
        (index, field) for index, field in enumerate(read) if hasattr(field, "from_db_value")
    )
    attnames = None if fields is None else frozenset(field.attname for field in read)
    return attnames, converters


def _field_names(meta, fields) -> list[str]:
    return [f.name for f in meta.concrete_fields if fields is None or f.name in fields]
