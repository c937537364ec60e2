"""Names for the few statements written in SQL instead of built through the ORM (on hot paths
where compiling the ORM's statement cost more CPU than running it): columns taken from the
models' `_meta` and quoted for the connection's database, so that renaming a field or its
column changes the statement with it."""

import functools
from collections.abc import Collection

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models.sql import Query


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


@functools.cache
def _reader(models: tuple) -> tuple:
    """The converters of the columns `columns` gives (all of them) for each of `models` side
    by side, as Django's raw() finds them: the backend's and the fields' (from_row applies
    the fields' alone); and where each model's columns start."""
    fields = [field for model in models for field in model._meta.concrete_fields]
    compiler = connection.ops.compiler("SQLCompiler")(
        Query(models[0]), connection, DEFAULT_DB_ALIAS
    )
    converters = compiler.get_converters(
        [field.get_col(field.model._meta.db_table) for field in fields]
    )
    slices, start = [], 0
    for model in models:
        meta = model._meta
        end = start + len(meta.concrete_fields)
        attnames = [field.attname for field in meta.concrete_fields]
        slices.append((model, start, end, start + meta.concrete_fields.index(meta.pk), attnames))
        start = end
    return compiler, converters, slices


def instances(models: tuple, row) -> list:
    """The instances of `models` read side by side in `row` (each model's `columns`, all of
    them, in the order of `models`), built as the ORM builds them (`Model.from_db`); None
    for a model whose primary key is NULL (an outer join that matched no row). No relation
    is set: the caller sets those it read (`field.set_cached_value`), as select_related
    would."""
    compiler, converters, slices = _reader(models)
    if converters:
        (row,) = compiler.apply_converters([row], converters)
    return [
        None if row[pk] is None else model.from_db(connection.alias, attnames, row[start:end])
        for model, start, end, pk, attnames in slices
    ]


@functools.cache
def _insert(model, key: bool) -> tuple[str, list]:
    meta = model._meta
    quote = connection.ops.quote_name
    # What Model.save(force_insert=True) writes of a row whose key the database gives.
    fields = [field for field in meta.local_concrete_fields if field is not meta.auto_field]
    names = ", ".join(quote(field.column) for field in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES ({marks})"
    if key and connection.features.can_return_columns_from_insert:
        sql += " " + connection.ops.return_insert_columns([meta.pk])[0]
    return sql, fields


def insert(obj, *, key: bool = False) -> None:
    """Write the new row `obj` as `obj.save(force_insert=True)` writes it (each field's value
    through its pre_save and get_db_prep_save), without the ORM's compile of its INSERT.
    `key`: read back the key the database gave it and mark `obj` saved, as save() does;
    otherwise, for a row the request never reads again, `obj` stays unsaved."""
    sql, fields = _insert(type(obj), key)
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if not key:
            return
        meta = obj._meta
        if connection.features.can_return_columns_from_insert:
            (obj.pk,) = connection.ops.fetch_returned_insert_columns(cursor, ())
        else:
            obj.pk = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    obj._state.adding, obj._state.db = False, connection.alias


class ModelColumns:
    """Some concrete fields of a model, read by a statement written in SQL and made into an
    instance as the ORM's select would: each value through the converters the ORM applies to
    its column (the backend's, then the field's: a JSON document parsed, SQLite's datetimes
    made aware), the fields not read deferred (read from the database if ever used, as
    `.only()` leaves them). Where a page needs a few columns of a row, not a statement built
    and compiled by the ORM on every request."""

    def __init__(self, model, fields: tuple[str, ...] | None = None) -> None:
        meta = model._meta
        wanted = None if fields is None else {meta.get_field(name).attname for name in fields}
        # In the model's field order: Model.from_db fills the deferred fields in that order.
        self.fields = [
            field
            for field in meta.concrete_fields
            if wanted is None or field.attname in wanted or field.primary_key
        ]
        self.model = model
        self.attnames = [field.attname for field in self.fields]
        self.width = len(self.fields)
        self._converters = []
        for index, field in enumerate(self.fields):
            col = field.get_col(meta.db_table)
            found = [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]
            if found:
                self._converters.append((index, found, col))

    def select(self, alias: str) -> str:
        """The columns, in order, for a SELECT list: `alias`."column", …"""
        quote = connection.ops.quote_name
        return ", ".join(f"{alias}.{quote(field.column)}" for field in self.fields)

    def values(self, values):
        """One row's `width` values (in `select()`'s order) as the ORM reads them."""
        if self._converters:
            values = list(values)
            for index, converters, col in self._converters:
                value = values[index]
                for converter in converters:
                    value = converter(value, col, connection)
                values[index] = value
        return values

    def instance(self, values):
        """The model instance of one row's `width` values (in `select()`'s order)."""
        return self.model.from_db(connection.alias, self.attnames, self.values(values))
