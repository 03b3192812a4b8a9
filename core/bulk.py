"""Bulk writes of many rows with one prepared statement run for every row (`executemany`), or on
PostgreSQL, for a plain insert, one COPY.

`QuerySet.bulk_create` and `bulk_update` compile each batch into one statement, every value
passing through the query compiler (and `bulk_update` builds a CASE WHEN per field and row): that
was most of an import's time. Here the SQL is written once and the driver binds each row; values
of plain columns (text, numbers, booleans, foreign keys) are passed as they are, the others (JSON,
dates, …) go through the field's `get_db_prep_save`, as Django would.

What these do not do, as `bulk_create` does not either: send signals, call `save()`, run
validation. `insert_rows` does not return ids (the caller reads back what it needs).
`analyze_tables` refreshes PostgreSQL's planner statistics after a bulk write grew a table.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

from django.db import connection, models
from django.utils import timezone

# Columns whose Python values (str, int, float, bool, None and their subclasses, such as choices)
# the drivers bind as the field would store them; the others go through get_db_prep_save.
_PLAIN_FIELDS = (models.CharField, models.TextField, models.IntegerField, models.BooleanField, models.FloatField,
                 models.ForeignKey)


def _is_plain(field: models.Field) -> bool:
    return (isinstance(field, _PLAIN_FIELDS) and not isinstance(field, models.JSONField)
            and type(field).pre_save is models.Field.pre_save)


def _insertable_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key or not isinstance(f, models.AutoField)]


def insert_rows(objs: Sequence[models.Model], *, update_on_conflict: tuple[Sequence[str], Sequence[str]] | None = None,
                ) -> int:
    """INSERT the unsaved instances `objs` (all of one model; `auto_now`/`auto_now_add` filled in).

    `update_on_conflict=(unique fields, fields to update)` makes it an upsert: a row that collides
    on the unique fields gets those fields updated instead (ON CONFLICT … DO UPDATE, on SQLite and
    PostgreSQL alike). Returns the number of instances given."""
    if not objs:
        return 0
    model = type(objs[0])
    fields = _insertable_fields(model)
    # One time for every row's auto_now / auto_now_add columns, converted once (it is one write).
    now = timezone.now()
    stamped = [i for i, f in enumerate(fields) if _is_stamped(f)]
    for obj in objs:
        for i in stamped:
            setattr(obj, fields[i].attname, now)
    fixed = {i: fields[i].get_db_prep_save(now, connection) for i in stamped}
    prepared = [(i, f) for i, f in enumerate(fields) if i not in fixed and not _is_plain(f)]
    values_of = attrgetter(*(f.attname for f in fields))  # one C call per row for the plain columns
    rows = []
    for obj in objs:
        row = list(values_of(obj)) if len(fields) > 1 else [values_of(obj)]
        for i, field in prepared:
            row[i] = field.get_db_prep_save(field.pre_save(obj, True), connection)
        for i, value in fixed.items():
            row[i] = value
        rows.append(row)
    _insert(model, fields, rows, update_on_conflict)
    return len(rows)


def insert_values(model: type[models.Model], rows: Sequence[Mapping[str, Any]], *,
                  update_on_conflict: tuple[Sequence[str], Sequence[str]] | None = None,
                  now: datetime | None = None) -> int:
    """`insert_rows` for rows given as {attname: value} (`sample_id`, not `sample`), without making
    an instance of each (that was 8 % of an import's time): a column a row
    lacks takes the field's default; `auto_now`/`auto_now_add` columns are set to `now` (default:
    the current time; given by a caller that needs to know what was stored). Only for models
    whose fields need no `pre_save` of their own (not file fields)."""
    if not rows:
        return 0
    fields = _insertable_fields(model)
    now = now or timezone.now()
    # Per column: its attname (None: always the fixed value), the field converting a given value
    # (None: bound as it is), the value of a row that lacks it.
    columns: list[tuple[str | None, models.Field | None, Any]] = []
    for field in fields:
        if _is_stamped(field):
            columns.append((None, None, field.get_db_prep_save(now, connection)))
            continue
        if type(field).pre_save is not models.Field.pre_save:
            raise TypeError(f"insert_values cannot fill {field} (its pre_save does more than read the value)")
        columns.append((field.attname, None if _is_plain(field) else field,
                        field.get_db_prep_save(field.get_default(), connection)))
    params = []
    for row in rows:
        values = []
        for attname, field, default in columns:
            if attname is None or attname not in row:
                values.append(default)
            elif field is None:
                values.append(row[attname])
            else:
                values.append(field.get_db_prep_save(row[attname], connection))
        params.append(values)
    _insert(model, fields, params, update_on_conflict)
    return len(params)


def _is_stamped(field: models.Field) -> bool:
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))


def _insert(model: type[models.Model], fields: list[models.Field], rows: list[list],
            update_on_conflict: tuple[Sequence[str], Sequence[str]] | None) -> None:
    """Write prepared rows: on PostgreSQL a plain insert goes through COPY (the rows streamed in
    one command, no statement per row: an import's samples and reasonings took half the time);
    an upsert, and SQLite, through `executemany` of one INSERT."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and update_on_conflict is None:
            quote = connection.ops.quote_name
            sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
            # The driver's own cursor, so its errors are made Django's here (IntegrityError, …).
            with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        cursor.executemany(_insert_sql(model, fields, update_on_conflict), rows)


def _insert_sql(model: type[models.Model], fields: list[models.Field],
                update_on_conflict: tuple[Sequence[str], Sequence[str]] | None) -> str:
    meta, quote = model._meta, connection.ops.quote_name
    sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    if update_on_conflict is not None:
        unique, updated = update_on_conflict
        columns = [meta.get_field(name).column for name in unique]
        sql += (f" ON CONFLICT ({', '.join(quote(c) for c in columns)}) DO UPDATE SET "
                + ", ".join(f"{quote(meta.get_field(name).column)} = excluded.{quote(meta.get_field(name).column)}"
                            for name in updated))
    return sql


def update_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[tuple[int, Sequence]]) -> int:
    """UPDATE `fields` of the rows given as (pk, [values in field order]); returns how many rows
    were given. The values are stored as given: an `auto_now` field is not touched unless named.

    PostgreSQL: one statement joining the table to one array per column (UNNEST), each cast to its
    column's type so that NULLs and booleans arrive typed (one UPDATE per row cost as much as the
    work that computed the values). SQLite runs in-process, where executemany of one prepared
    statement is already the fast way."""
    rows = list(rows)
    if not rows:
        return 0
    meta, quote = model._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    prepared = [(i, f) for i, f in enumerate(columns) if not _is_plain(f)]
    params = []
    for pk, values in rows:
        row = [*values, pk]
        for i, field in prepared:
            row[i] = field.get_db_prep_save(row[i], connection)
        params.append(row)
    table, pk_column = quote(meta.db_table), quote(meta.pk.column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            names = [*(quote(f.column) for f in columns), pk_column]
            arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in (*columns, meta.pk))
            cursor.execute(f"UPDATE {table} SET " + ", ".join(f"{name} = v.{name}" for name in names[:-1])
                           + f" FROM UNNEST({arrays}) AS v({', '.join(names)}) WHERE {table}.{pk_column} = v.{pk_column}",
                           [list(column) for column in zip(*params)])
        else:
            cursor.executemany(f"UPDATE {table} SET " + ", ".join(f"{quote(f.column)} = %s" for f in columns)
                               + f" WHERE {pk_column} = %s", params)
    return len(rows)


def update_instances(objs: Iterable[models.Model], fields: Sequence[str]) -> int:
    """`update_rows` for saved instances (all of one model): `fields` (names, a foreign key by its
    own name) set to each instance's current values."""
    objs = list(objs)
    if not objs:
        return 0
    meta = type(objs[0])._meta
    attnames = [meta.get_field(name).attname for name in fields]
    return update_rows(type(objs[0]), fields, [(obj.pk, [getattr(obj, a) for a in attnames]) for obj in objs])


def analyze_tables(*models: type[models.Model]) -> None:
    """Refresh PostgreSQL's planner statistics of these models' tables (ANALYZE: it reads a sample
    of rows and blocks no reads or writes); nothing on SQLite, whose planner takes an index without
    statistics. A table that grew from empty since it was last analyzed is otherwise planned as if
    it were still tiny: a lookup of 500 ids by an indexed column scanned all 300,000 rows (45 ms
    instead of 0.7 ms), once per chunk of a bulk write, until autovacuum — where it is on — caught up."""
    if connection.vendor != "postgresql" or not models:
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models))
