"""Names for the few statements written in SQL instead of built through the ORM (on hot paths
where compiling the ORM's statement cost more CPU than running it): columns taken from the
models' `_meta` and quoted for the connection's database, so that renaming a field or its
column changes the statement with it. The rows such statements read become model instances
as the ORM makes them (ModelColumns: each column through the backend's converters and the
field's, so that SQLite's datetimes and booleans come out as from PostgreSQL)."""

import functools
from collections.abc import Collection

from django.db import connection
from django.db.models.base import Model, ModelState
from django.db.models.signals import post_init, pre_init


def column(meta, field: str) -> str:
    """The quoted column of the model field named `field` (`team` gives `"team_id"`)."""
    return connection.ops.quote_name(meta.get_field(field).column)


def holds(model, field: str, value: int) -> bool:
    """Whether the integer `value` fits the column of `model`'s `field`. Statements written in
    SQL are sent ids and versions a URL or a form gave: where the ORM's lookup matches no row
    for a value past the column's range, SQLite refuses the parameter (OverflowError)."""
    internal_type = model._meta.get_field(field).get_internal_type()
    low, high = connection.ops.integer_field_range(internal_type)
    return (low is None or value >= low) and (high is None or value <= high)


def columns(meta, alias: str, fields: Collection[str] | None = None) -> str:
    """The quoted SELECT list, each column prefixed with the table alias `alias`, of the
    model's concrete fields (only those named in `fields`, and the key, when given), in the
    model's order: the values from_row reads back."""
    return model_columns(meta.model, _key(fields)).select(alias)


def from_row(model, values, fields: Collection[str] | None = None):
    """An instance of `model` from the values of a SELECT of columns(model._meta, alias,
    fields), built as the ORM builds one (ModelColumns.instance)."""
    return model_columns(model, _key(fields)).instance(values)


def instances(models: tuple, row) -> list:
    """The instances of `models` read side by side in `row` (each model's `columns`, all of
    them, in the order of `models`), built as the ORM builds them; None for a model whose
    primary key is NULL (an outer join that matched no row). No relation is set: the caller
    sets those it read (`field.set_cached_value`), as select_related would."""
    found, start = [], 0
    for model in models:
        reader = model_columns(model)
        values = row[start : start + reader.width]
        start += reader.width
        found.append(None if values[reader.key_index] is None else reader.instance(values))
    return found


def _key(fields: Collection[str] | None) -> tuple[str, ...] | None:
    return None if fields is None else tuple(fields)


@functools.cache
def model_columns(model, fields: tuple[str, ...] | None = None) -> "ModelColumns":
    """The ModelColumns of `model` (all its concrete fields, or `fields` and the key), made
    once per process: finding the converters of each column is the costly part."""
    return ModelColumns(model, fields)


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
        self.key_index = self.fields.index(meta.pk)
        # Model.from_db builds an instance through Model.__init__, which sets each field's
        # value one by one and sends pre_init and post_init: most of a read's CPU on the
        # checklist page. `instance` fills the attributes itself, as __init__ would leave
        # them, unless the model builds its instances its own way.
        self._own_init = model.__init__ is not Model.__init__ or (
            model.from_db.__func__ is not Model.from_db.__func__
        )
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
        """The model instance of one row's `width` values (in `select()`'s order), as
        Model.from_db builds it: the fields not read deferred (absent from its __dict__)."""
        # Asked on every read, not once: a receiver may be connected after the first read
        # (ImageField connects one; so could an app loaded later, or a test). Both answers
        # are a dict lookup in the signals' sender cache.
        if (
            self._own_init
            or pre_init.has_listeners(self.model)
            or post_init.has_listeners(self.model)
        ):
            return self.model.from_db(connection.alias, self.attnames, self.values(values))
        obj = self.model.__new__(self.model)
        state = ModelState()
        state.adding, state.db = False, connection.alias
        attributes = obj.__dict__
        attributes["_state"] = state
        # Not strict: from_db, too, reads the first values of a longer row.
        attributes.update(zip(self.attnames, self.values(values), strict=False))
        return obj
