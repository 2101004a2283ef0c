"""How rows become COPY data for the PostgreSQL destination.

A columnar batch whose column types Arrow's CSV writer formats as PostgreSQL reads them
goes as CSV in one piece; everything else (records, JSON columns, nested and binary
values) is written row by row by psycopg, which formats each row in C.
"""

from __future__ import annotations

import io
import json
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql

from corral.destinations.base import ColumnBatch, Record


@dataclass(frozen=True)
class CopyColumns:
    """The target's columns that a run writes: the key first, then the mapped fields."""

    names: tuple[str, ...]
    json: frozenset[str]  # json/jsonb columns, whose values are sent as JSON text

    @property
    def fields(self) -> tuple[str, ...]:
        return self.names[1:]


@dataclass(frozen=True)
class ColumnarRows:
    """A columnar batch whose keys are distinct, COPYed from its columns."""

    batch: ColumnBatch

    def __len__(self) -> int:
        return len(self.batch)


def row_keys(rows: Sequence[Record] | ColumnarRows) -> list[str]:
    if isinstance(rows, ColumnarRows):
        keys: list[str] = rows.batch.keys.to_pylist()
        return keys
    return [record.key for record in rows]


def copy_rows(
    cursor: psycopg.Cursor[Any],
    table: sql.Identifier,
    columns: CopyColumns,
    records: Sequence[Record] | ColumnarRows,
) -> None:
    """COPY the rows into `table`: Arrow's CSV writer formats a columnar batch whose types
    it writes as PostgreSQL reads them; psycopg formats the others row by row."""
    names = sql.SQL(", ").join(map(sql.Identifier, columns.names))
    if isinstance(records, ColumnarRows):
        text = _csv(columns, records.batch)
        if text is not None:
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, names)
            with cursor.copy(statement) as copy:
                copy.write(text)
            return
    with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, names)) as copy:
        _write_rows(copy, columns, records)


def _csv(columns: CopyColumns, batch: ColumnBatch) -> memoryview | None:
    """The batch's COPY rows as CSV, or None when a column needs formatting in Python.

    Arrow writes every string quoted and NULL as nothing, which is how PostgreSQL's CSV
    format tells an empty string from NULL; numbers, booleans, dates and times come out
    as PostgreSQL reads them (a naive timestamp is read in the session's zone, UTC, as
    psycopg sends it). JSON columns, nested and binary values take the row path.
    """
    names = batch.fields.schema.names
    if columns.json or any(name not in names for name in columns.fields):
        return None
    arrays = [batch.keys, *(batch.fields.column(names.index(n)) for n in columns.fields)]
    if not all(_csv_ready(array.type) for array in arrays):
        return None
    table = pa.Table.from_arrays(arrays, names=[str(n) for n in range(len(arrays))])
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return sink.getbuffer()


def _csv_ready(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_date(kind)
        or pa.types.is_time(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_null(kind)
    )


def _write_rows(
    copy: psycopg.Copy, columns: CopyColumns, records: Sequence[Record] | ColumnarRows
) -> None:
    # psycopg formats each row in C: measured, this beats building the COPY text in Python
    # a column at a time, and binary COPY, by a quarter, and the rows stream as they go.
    rows = (
        _column_rows(columns, records.batch)
        if isinstance(records, ColumnarRows)
        else _rows(columns, records)
    )
    for row in rows:
        copy.write_row(row)


def _column_rows(columns: CopyColumns, batch: ColumnBatch) -> Iterator[tuple[Any, ...]]:
    """The COPY rows of a columnar batch: one Python list per column, zipped into rows."""
    values: list[list[Any]] = [batch.keys.to_pylist()]
    names = batch.fields.schema.names
    for name in columns.fields:
        column = batch.fields.column(names.index(name)).to_pylist() if name in names else None
        if column is None:
            column = [None] * len(batch)
        elif name in columns.json:
            column = [json_text(value) for value in column]
        values.append(column)
    return zip(*values, strict=True)


def _rows(columns: CopyColumns, records: Sequence[Record]) -> Iterator[tuple[Any, ...]]:
    """The COPY rows: the key, then the fields in order (None where a record lacks one)."""
    fields = columns.fields
    if columns.json:
        converters = [json_text if f in columns.json else _same for f in fields]
        for record in records:
            values = [record.fields.get(f) for f in fields]
            yield (record.key, *[convert(v) for convert, v in zip(converters, values, strict=True)])
        return
    if len(fields) < 2:  # itemgetter of one name returns the value, not a tuple
        for record in records:
            yield (record.key, *[record.fields.get(f) for f in fields])
        return
    # itemgetter looks the fields up in C, several times faster than a loop of .get();
    # records that lack a field take the slow path.
    getter = operator.itemgetter(*fields)
    for record in records:
        try:
            yield (record.key, *getter(record.fields))
        except KeyError:
            yield (record.key, *[record.fields.get(f) for f in fields])


def _same(value: Any) -> Any:
    return value


def json_text(value: Any) -> Any:
    if value is None:
        return None
    return json.dumps(value, default=str, ensure_ascii=False)
