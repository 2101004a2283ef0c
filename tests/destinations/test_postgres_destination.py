"""The PostgreSQL destination against the real server at `postgres_url`.

Every test writes its own table in one schema made for this session and dropped at the
end; nothing is mocked.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from corral.destinations import (
    ALL_ACCEPTED,
    Batch,
    Destination,
    Mode,
    Operation,
    Outcome,
    Record,
    RowResult,
    create,
    postgres_copy,
)
from corral.destinations.base import ColumnBatch
from corral.destinations.postgres import PostgresDestination
from corral.errors import (
    DefinitionError,
    DestinationError,
    InternalError,
    TransientDestinationError,
)
from tests.conftest import require_or_skip

Factory = Callable[..., PostgresDestination]


@pytest.fixture(scope="session")
def schema(postgres_url: str) -> Iterator[str]:
    name = f"corral_destination_{os.getpid()}"
    try:
        connection = psycopg.connect(postgres_url, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        require_or_skip(f"PostgreSQL is not reachable (CORRAL_TEST_POSTGRES_URL): {error}")
    with connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        yield name
        connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def table() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def destination(postgres_url: str, schema: str, table: str) -> Iterator[Factory]:
    """Builds destinations on this test's table; closes them at the end."""
    built: list[PostgresDestination] = []

    def build(**config: Any) -> PostgresDestination:
        settings = {"url": postgres_url, "schema": schema, "table": table, **config}
        made = create("postgres", settings)
        assert isinstance(made, PostgresDestination)
        built.append(made)
        return made

    yield build
    for made in built:
        made.close()


def query(
    postgres_url: str, statement: sql.Composed | sql.SQL, *params: Any
) -> list[tuple[Any, ...]]:
    with psycopg.connect(postgres_url) as connection:
        return connection.execute(statement, params).fetchall()


def contents(postgres_url: str, schema: str, table: str) -> dict[str, tuple[Any, ...]]:
    rows = query(
        postgres_url, sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(schema, table))
    )
    return {row[0]: row[1:] for row in rows}


def execute(postgres_url: str, statement: sql.Composed) -> None:
    with psycopg.connect(postgres_url) as connection:
        connection.execute(statement)


def send(
    destination: PostgresDestination, operation: Operation, *records: Record
) -> list[RowResult]:
    """One result per record, as the engine reads them (ALL_ACCEPTED: every record accepted)."""
    answer = destination.send(Batch(operation, records))
    if answer is ALL_ACCEPTED:
        return [RowResult.accepted(r.key) for r in records]
    assert isinstance(answer, list)
    assert [r.key for r in answer] == [r.key for r in records]
    assert any(r.outcome is not Outcome.ACCEPTED for r in answer), "expected ALL_ACCEPTED"
    return answer


def outcomes(results: list[RowResult]) -> dict[str, tuple[Outcome, str | None]]:
    return {r.key: (r.outcome, r.reason) for r in results}


def people(*keys: str, **fields: Any) -> list[Record]:
    return [Record(key, {"email": f"{key}@example.com", **fields}) for key in keys]


def test_is_a_destination_with_a_secret_url(destination: Factory) -> None:
    made = destination()
    assert isinstance(made, Destination)
    assert PostgresDestination.catalog.name == "postgres"
    schema = PostgresDestination.catalog.config_schema()
    assert schema["properties"]["url"]["writeOnly"] is True
    assert "schema" in schema["properties"]
    assert "password" not in repr(made.config)


def test_creates_the_table_with_types_from_the_first_batch(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    values = {
        "orders": 3,
        "score": 1.5,
        "lifetime_value": Decimal("1234.56"),
        "vip": True,
        "joined": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "birthday": date(1990, 5, 17),
        "name": 'Zoë 🐄, "quoted"\nnewline\ttab \\ backslash',
        "profile": {"tier": "gold", "tags": ["a", "b"]},
        "always_null": None,
    }
    made = destination()
    made.open(Mode.UPSERT, list(values))
    results = send(made, Operation.ADD, Record("u1", values), Record("u2", dict.fromkeys(values)))
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}

    types = dict(
        query(
            postgres_url,
            sql.SQL(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s"
            ),
            schema,
            table,
        )
    )
    assert types == {
        "key": "text",
        "orders": "bigint",
        "score": "double precision",
        "lifetime_value": "numeric",
        "vip": "boolean",
        "joined": "timestamp with time zone",
        "birthday": "date",
        "name": "text",
        "profile": "jsonb",
        "always_null": "text",
    }
    primary = query(
        postgres_url,
        sql.SQL(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary"
        ),
        f"{schema}.{table}",
    )
    assert primary == [("key",)]
    rows = contents(postgres_url, schema, table)
    assert rows["u1"] == tuple(values.values())
    assert rows["u2"] == (None,) * len(values)


def test_upsert_adds_and_changes_and_a_resend_changes_nothing(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination()
    made.open(Mode.UPSERT, ["email", "orders"])
    send(made, Operation.ADD, *people("a", "b", orders=1))
    changes = [Record("b", {"email": "new@example.com", "orders": 2}), *people("c", orders=3)]
    send(made, Operation.CHANGE, *changes)
    assert contents(postgres_url, schema, table) == {
        "a": ("a@example.com", 1),
        "b": ("new@example.com", 2),
        "c": ("c@example.com", 3),
    }

    # The engine may resend any batch after a crash, even an add batch already applied.
    again = destination()
    again.open(Mode.UPSERT, ["email", "orders"])
    send(again, Operation.CHANGE, *changes)
    results = send(again, Operation.ADD, *people("a", "b", orders=1))
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert contents(postgres_url, schema, table) == {
        "a": ("a@example.com", 1),
        "b": ("b@example.com", 1),
        "c": ("c@example.com", 3),
    }


def test_a_created_table_leaves_room_on_each_page_for_changed_rows(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination()
    made.open(Mode.UPSERT, ["email", "orders"])
    send(made, Operation.ADD, *people(*(f"k{i}" for i in range(200)), orders=1))
    options = query(
        postgres_url,
        sql.SQL("SELECT reloptions FROM pg_class WHERE oid = %s::regclass"),
        f"{schema}.{table}",
    )
    assert options == [(["fillfactor=90"],)]

    # With room on the page, a changed row is rewritten beside the old one and the key
    # index gains no entry: PostgreSQL counts it as a heap-only (HOT) update.
    changes = [
        Record(f"k{i}", {"email": "new@example.com", "orders": 2}) for i in range(0, 200, 20)
    ]
    send(made, Operation.CHANGE, *changes)
    # A session publishes its counts when it ends (or after ten idle seconds).
    made.close()
    deadline = time.monotonic() + 10
    while True:
        counts = query(
            postgres_url,
            sql.SQL(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                " WHERE relid = %s::regclass"
            ),
            f"{schema}.{table}",
        )
        if counts[0][0] >= len(changes) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert counts == [(len(changes), len(changes))]


def test_a_created_table_orders_keys_by_their_bytes(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    """The engine sends keys sorted by their bytes; the key column compares them the same
    way (collation "C"), whatever the database's default collation."""
    made = destination()
    made.open(Mode.UPSERT, ["email"])
    send(made, Operation.ADD, *people("b", "B", "10", "9", "a"))
    collation = query(
        postgres_url,
        sql.SQL(
            "SELECT c.collname FROM pg_attribute AS a JOIN pg_collation AS c"
            " ON c.oid = a.attcollation WHERE a.attrelid = %s::regclass AND a.attname = 'key'"
        ),
        f"{schema}.{table}",
    )
    assert collation == [("C",)]
    in_index_order = query(
        postgres_url,
        sql.SQL("SELECT key FROM {} ORDER BY key").format(sql.Identifier(schema, table)),
    )
    assert [key for (key,) in in_index_order] == ["10", "9", "B", "a", "b"]


def test_the_fill_factor_is_a_setting_in_range(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination(fill_factor=100)
    made.open(Mode.UPSERT, ["email"])
    send(made, Operation.ADD, *people("a"))
    options = query(
        postgres_url,
        sql.SQL("SELECT reloptions FROM pg_class WHERE oid = %s::regclass"),
        f"{schema}.{table}",
    )
    assert options == [(["fillfactor=100"],)]
    with pytest.raises(DefinitionError, match="fill_factor"):
        destination(fill_factor=5)


def test_new_rows_are_copied_straight_into_the_table_and_the_rest_merged(
    destination: Factory,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    schema: str,
    table: str,
) -> None:
    merged: list[int] = []  # the batches that went through staging, by size
    isolate = PostgresDestination._isolate

    def counting(self: PostgresDestination, *args: Any, **kwargs: Any) -> dict[str, str]:
        if kwargs.get("first"):
            merged.append(len(args[3]))
        return isolate(self, *args, **kwargs)

    monkeypatch.setattr(PostgresDestination, "_isolate", counting)
    made = destination()
    made.open(Mode.UPSERT, ["email", "orders"])
    new = [*people("a", "b", orders=1), Record("c", {"email": "c@example.com"})]  # no orders
    assert made.send(Batch(Operation.ADD, new)) is ALL_ACCEPTED
    assert merged == []
    assert contents(postgres_url, schema, table) == {
        "a": ("a@example.com", 1),
        "b": ("b@example.com", 1),
        "c": ("c@example.com", None),
    }

    # A key the table has fails the COPY, which leaves nothing behind: the batch is merged.
    again = [*people("b", orders=2), *people("d", orders=4)]
    assert made.send(Batch(Operation.ADD, again)) is ALL_ACCEPTED
    assert merged == [2]
    assert contents(postgres_url, schema, table) == {
        "a": ("a@example.com", 1),
        "b": ("b@example.com", 2),
        "c": ("c@example.com", None),
        "d": ("d@example.com", 4),
    }

    # Only add batches are copied straight in.
    assert made.send(Batch(Operation.CHANGE, people("e", orders=5))) is ALL_ACCEPTED
    assert merged == [2, 1]
    updating = destination()
    updating.open(Mode.UPDATE, ["orders"])
    assert updating.send(Batch(Operation.CHANGE, people("a", orders=9))) is ALL_ACCEPTED
    assert contents(postgres_url, schema, table)["a"] == ("a@example.com", 9)


def test_copied_values_arrive_as_they_were(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    """Values that COPY's text format escapes or spells in its own way."""
    texts = ["", "\\N", "\\", "tab\there", "line\nnext\r\n", "NaN", "Zoë 🐄", None]
    numbers = [Decimal("1E+2"), Decimal("-0.00"), Decimal("1e-30"), Decimal("NaN"), None]
    made = destination()
    made.open(Mode.UPSERT, ["text", "number"])
    records = [
        Record(f"r{i}", {"text": texts[i % len(texts)], "number": numbers[i % len(numbers)]})
        for i in range(40)
    ]
    assert made.send(Batch(Operation.ADD, records)) is ALL_ACCEPTED
    rows = contents(postgres_url, schema, table)
    for record in records:
        text, number = rows[record.key]
        assert text == record.fields["text"]
        expected = record.fields["number"]
        assert number == expected or (number.is_nan() and expected.is_nan())


def test_upsert_never_removes(destination: Factory) -> None:
    made = destination()
    made.open(Mode.UPSERT, ["email"])
    with pytest.raises(InternalError, match="removals in upsert mode"):
        made.send(Batch(Operation.REMOVE, people("a")))


def test_duplicate_keys_in_a_batch_keep_the_last(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination()
    made.open(Mode.UPSERT, ["email"])
    records = [
        Record("a", {"email": "first"}),
        Record("b", {"email": "b"}),
        Record("a", {"email": "last"}),
    ]
    results = send(made, Operation.ADD, *records)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3
    assert contents(postgres_url, schema, table) == {"a": ("last",), "b": ("b",)}
    send(made, Operation.CHANGE, *records)
    assert contents(postgres_url, schema, table) == {"a": ("last",), "b": ("b",)}


def test_insert_adds_new_rows_and_leaves_existing_ones(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination()
    made.open(Mode.INSERT, ["email"])
    send(made, Operation.ADD, *people("a", "b"))
    results = send(made, Operation.ADD, Record("b", {"email": "changed"}), *people("c"))
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}  # a resend must not fail
    assert contents(postgres_url, schema, table) == {
        "a": ("a@example.com",),
        "b": ("b@example.com",),
        "c": ("c@example.com",),
    }


def test_update_changes_existing_rows_and_rejects_the_others(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    seed = destination()
    seed.open(Mode.UPSERT, ["email", "orders"])
    send(seed, Operation.ADD, *people("a", "b", orders=1))

    made = destination()
    made.open(Mode.UPDATE, ["orders"])
    batch = [Record("a", {"orders": 5}), Record("zz", {"orders": 9}), Record("b", {"orders": 6})]
    for _ in range(2):  # the resend gives the same answers
        assert outcomes(send(made, Operation.CHANGE, *batch)) == {
            "a": (Outcome.ACCEPTED, None),
            "zz": (Outcome.REJECTED, "no such row"),
            "b": (Outcome.ACCEPTED, None),
        }
    assert contents(postgres_url, schema, table) == {
        "a": ("a@example.com", 5),
        "b": ("b@example.com", 6),
    }


def test_update_without_fields_only_checks_the_rows_exist(destination: Factory) -> None:
    seed = destination()
    seed.open(Mode.UPSERT, ["email"])
    send(seed, Operation.ADD, *people("a"))
    made = destination()
    made.open(Mode.UPDATE, [])
    results = send(made, Operation.ADD, Record("a", {}), Record("b", {}))
    assert outcomes(results) == {
        "a": (Outcome.ACCEPTED, None),
        "b": (Outcome.REJECTED, "no such row"),
    }


def test_mirror_adds_changes_and_removes(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination()
    made.open(Mode.MIRROR, ["email"])
    send(made, Operation.ADD, *people("a", "b", "c"))
    send(made, Operation.CHANGE, Record("a", {"email": "changed"}))
    for _ in range(2):  # removing twice, or a row that is gone, is fine
        results = send(made, Operation.REMOVE, *people("b", "c", "never-there"))
        assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert contents(postgres_url, schema, table) == {"a": ("changed",)}


def test_removing_from_a_table_that_does_not_exist_is_done(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination()
    made.open(Mode.MIRROR, ["email"])
    assert {r.outcome for r in send(made, Operation.REMOVE, *people("a"))} == {Outcome.ACCEPTED}
    assert query(postgres_url, sql.SQL("SELECT to_regclass(%s)"), f"{schema}.{table}") == [(None,)]


def test_bad_rows_are_rejected_with_the_reason_and_the_rest_land(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination()
    made.open(Mode.UPSERT, ["email", "orders", "birthday"])
    send(
        made,
        Operation.ADD,
        Record("seed", {"email": "s", "orders": 1, "birthday": date(2000, 1, 1)}),
    )

    good = [Record(f"g{i}", {"email": f"g{i}", "orders": i, "birthday": None}) for i in range(40)]
    bad: dict[str, dict[str, Any]] = {
        "text-in-bigint": {"email": "x", "orders": "lots", "birthday": None},
        "too-big": {"email": "x", "orders": 2**70, "birthday": None},
        "not-a-date": {"email": "x", "orders": 1, "birthday": "2026-02-30"},
        "unadaptable": {"email": object(), "orders": 1, "birthday": None},
    }
    records = good[:10] + [Record(k, v) for k, v in bad.items()] + good[10:]
    results = outcomes(send(made, Operation.ADD, *records))

    assert {k for k, (outcome, _) in results.items() if outcome is Outcome.REJECTED} == set(bad)
    assert 'invalid input syntax for type bigint: "lots"' in str(results["text-in-bigint"][1])
    assert "(column orders)" in str(results["text-in-bigint"][1])
    assert "out of range" in str(results["too-big"][1])
    assert "out of range" in str(results["not-a-date"][1])
    assert "cannot adapt type 'object'" in str(results["unadaptable"][1])
    rows = contents(postgres_url, schema, table)
    assert set(rows) == {"seed"} | {r.key for r in good}
    assert rows["g7"] == ("g7", 7, None)


def test_isolating_stops_when_most_rows_are_refused(
    destination: Factory,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    schema: str,
    table: str,
) -> None:
    monkeypatch.setattr("corral.destinations.postgres._MAX_ATTEMPTS", 30)
    made = destination()
    made.open(Mode.UPSERT, ["orders"])
    send(made, Operation.ADD, Record("seed", {"orders": 1}))
    records = [Record(f"r{i}", {"orders": f"text {i}"}) for i in range(200)]
    results = send(made, Operation.ADD, *records, Record("fine", {"orders": 2}))

    reasons = [r.reason for r in results if r.outcome is Outcome.REJECTED]
    assert len(reasons) >= 200
    assert any(str(reason).startswith("invalid input syntax") for reason in reasons)
    assert any(str(reason).startswith("not tried: too many rows") for reason in reasons)
    assert "seed" in contents(postgres_url, schema, table)


def test_constraint_violations_are_row_rejections(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    execute(
        postgres_url,
        sql.SQL(
            "CREATE TABLE {} (id text PRIMARY KEY, email text NOT NULL,"
            " age integer CHECK (age >= 0), note text DEFAULT 'kept')"
        ).format(sql.Identifier(schema, table)),
    )
    made = destination(key_column="id", create_table=False)
    made.open(Mode.UPSERT, ["email", "age"])
    results = outcomes(
        send(
            made,
            Operation.ADD,
            Record("ok", {"email": "ok@example.com", "age": 30}),
            Record("no-email", {"email": None, "age": 30}),
            Record("negative", {"email": "n@example.com", "age": -1}),
        )
    )
    assert results["ok"] == (Outcome.ACCEPTED, None)
    assert results["no-email"][0] is Outcome.REJECTED
    assert 'null value in column "email"' in str(results["no-email"][1])
    assert "check constraint" in str(results["negative"][1])
    assert contents(postgres_url, schema, table) == {"ok": ("ok@example.com", 30, "kept")}


def test_a_missing_table_or_column_without_create_table_is_an_error(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination(create_table=False)
    made.open(Mode.UPSERT, ["email"])
    with pytest.raises(DestinationError, match="does not exist"):
        made.send(Batch(Operation.ADD, people("a")))

    execute(
        postgres_url,
        sql.SQL("CREATE TABLE {} (key text PRIMARY KEY)").format(sql.Identifier(schema, table)),
    )
    made = destination(create_table=False)
    made.open(Mode.UPSERT, ["email"])
    with pytest.raises(DestinationError, match="has no column email"):
        made.send(Batch(Operation.ADD, people("a")))


def test_create_table_adds_missing_columns(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination()
    made.open(Mode.UPSERT, ["email"])
    send(made, Operation.ADD, *people("a"))
    made = destination()
    made.open(Mode.UPSERT, ["email", "orders"])
    send(made, Operation.ADD, *people("b", orders=2))
    assert contents(postgres_url, schema, table) == {
        "a": ("a@example.com", None),
        "b": ("b@example.com", 2),
    }


def test_a_key_column_without_a_unique_index_is_an_error(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    execute(
        postgres_url,
        sql.SQL("CREATE TABLE {} (key text, email text)").format(sql.Identifier(schema, table)),
    )
    made = destination()
    made.open(Mode.UPSERT, ["email"])
    send(made, Operation.ADD, *people("a"), *people("a"))  # a COPY needs no unique key
    assert contents(postgres_url, schema, table) == {"a": ("a@example.com",)}
    with pytest.raises(DestinationError, match="not unique") as raised:
        made.send(Batch(Operation.CHANGE, people("a")))
    assert raised.value.hint is not None and "primary key" in raised.value.hint


def test_identifiers_are_quoted(destination: Factory, postgres_url: str, schema: str) -> None:
    odd_table = 'Odd "table"; DROP TABLE x; --'
    made = destination(table=odd_table, key_column="Customer Key")
    made.open(Mode.MIRROR, ["e-mail", 'say "hi"', "select"])
    records = [Record("a", {"e-mail": "a@example.com", 'say "hi"': "hi", "select": 1})]
    send(made, Operation.ADD, *records)
    send(made, Operation.CHANGE, *records)
    assert contents(postgres_url, schema, odd_table) == {"a": ("a@example.com", "hi", 1)}
    send(made, Operation.REMOVE, *records)
    assert contents(postgres_url, schema, odd_table) == {}


def test_concurrent_batches(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    made = destination(concurrency=4)
    made.open(Mode.UPSERT, ["email", "n"])
    batches = [
        Batch(
            Operation.ADD, [Record(f"{b}-{i}", {"email": f"{b}-{i}", "n": i}) for i in range(500)]
        )
        for b in range(12)
    ]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(made.send, batches + batches[:4]))  # four sent twice, at once
    assert all(a is ALL_ACCEPTED for a in answers)
    counted = query(
        postgres_url,
        sql.SQL("SELECT count(*), sum(n) FROM {}").format(sql.Identifier(schema, table)),
    )
    assert counted == [(12 * 500, 12 * sum(range(500)))]


def test_check(destination: Factory, postgres_url: str, schema: str, table: str) -> None:
    result = destination().check()
    assert result.ok and "can create" in result.message
    assert not destination(create_table=False).check().ok

    execute(
        postgres_url,
        sql.SQL("CREATE TABLE {} (key text PRIMARY KEY)").format(sql.Identifier(schema, table)),
    )
    result = destination().check()
    assert result.ok and "can write" in result.message

    result = destination(schema="no_such_schema_here").check()
    assert not result.ok and "does not exist" in result.message

    result = destination(url="postgresql://nobody@127.0.0.1:1/nothing", timeout=2).check()
    assert not result.ok and "cannot connect to 127.0.0.1:1/nothing" in result.message


def test_an_unreachable_server_is_transient(destination: Factory) -> None:
    made = destination(url="postgresql://nobody@127.0.0.1:1/nothing", timeout=1)
    made.open(Mode.UPSERT, ["email"])
    with pytest.raises(TransientDestinationError, match=re.escape("127.0.0.1:1/nothing")):
        made.send(Batch(Operation.ADD, people("a")))


def test_the_key_column_cannot_also_be_a_field(destination: Factory) -> None:
    with pytest.raises(DestinationError, match="key column"):
        destination().open(Mode.UPSERT, ["key", "email"])


# The columnar path: the same rows as Arrow columns must land as the records do.

TYPES = {
    "text": pa.string(),
    "orders": pa.int64(),
    "score": pa.float64(),
    "value": pa.decimal128(12, 2),
    "vip": pa.bool_(),
    "birthday": pa.date32(),
    "seen": pa.timestamp("us"),
    "joined": pa.timestamp("us", tz="UTC"),
    "opens": pa.time64("us"),
}
TEXTS = ["", "\\N", "\\", '"quoted", comma', "tab\there", "line\nnext\r\n", "Zoë 🐄", None]


def typed_records(count: int) -> list[Record]:
    """Records of every scalar type, with the values COPY formats spell their own way."""
    floats = [1.5, float("inf"), -0.0, 1 / 3, 1e300, None]
    records = []
    for i in range(count):
        fields = {
            "text": TEXTS[i % len(TEXTS)],
            "orders": None if i % 4 == 3 else i - 10,
            "score": floats[i % len(floats)],
            "value": None if i % 5 == 4 else Decimal(f"{i}.25"),
            "vip": [True, False, None][i % 3],
            "birthday": date(1990, 1, 1 + i % 28),
            "seen": datetime(2026, 1, 2, 3, 4, 5, i),
            "joined": datetime(2026, 1, 2, 3, 4, i % 60, tzinfo=UTC),
            "opens": time_of_day(9, i % 60),
        }
        records.append(Record(f"k{i}", fields))
    return records


def column_batch(
    operation: Operation, records: list[Record], types: dict[str, pa.DataType]
) -> ColumnBatch:
    fields = pa.RecordBatch.from_pydict(
        {name: [r.fields.get(name) for r in records] for name in types},
        schema=pa.schema(list(types.items())),
    )
    return ColumnBatch(operation, pa.array([r.key for r in records], pa.string()), fields)


def test_columns_arrive_as_the_same_records_do(
    destination: Factory,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    schema: str,
    table: str,
) -> None:
    written: list[bool] = []  # whether each columnar COPY was formatted as CSV by Arrow
    csv = postgres_copy._csv

    def spying(*args: Any) -> memoryview | None:
        text = csv(*args)
        written.append(text is not None)
        return text

    monkeypatch.setattr(postgres_copy, "_csv", spying)
    by_rows, by_columns = destination(table=f"{table}_r"), destination(table=f"{table}_c")
    for made in (by_rows, by_columns):
        made.open(Mode.MIRROR, list(TYPES))
    added = typed_records(60)
    changed = [Record(r.key, {**r.fields, "text": "changed"}) for r in added[::7]]
    removed = added[1::9]

    for operation, records in (
        (Operation.ADD, added),
        (Operation.CHANGE, changed),
        (Operation.REMOVE, removed),
    ):
        assert by_rows.send(Batch(operation, records)) is ALL_ACCEPTED
        assert by_columns.send_columns(column_batch(operation, records, TYPES)) is ALL_ACCEPTED

    expected = contents(postgres_url, schema, f"{table}_r")
    assert len(expected) == 60 - len(removed)
    assert expected["k7"][0] == "changed"
    assert repr(contents(postgres_url, schema, f"{table}_c")) == repr(expected)
    assert written and all(written)


def test_a_columnar_resend_and_nested_values(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    """Nested values go to jsonb; a resent add batch hits existing keys and is merged;
    a batch that holds a key twice keeps the last."""
    types = {"email": pa.string(), "tags": pa.list_(pa.string())}
    made = destination()
    made.open(Mode.UPSERT, list(types))
    records = [Record(f"k{i}", {"email": f"{i}@x", "tags": ["a", str(i)]}) for i in range(5)]
    assert made.send_columns(column_batch(Operation.ADD, records, types)) is ALL_ACCEPTED

    resent = [Record(r.key, {**r.fields, "email": "again"}) for r in records[:3]]
    twice = [*resent, Record("k0", {"email": "last", "tags": None})]
    assert made.send_columns(column_batch(Operation.ADD, twice, types)) is ALL_ACCEPTED

    rows = contents(postgres_url, schema, table)
    assert rows["k0"] == ("last", None)
    assert rows["k1"] == ("again", ["a", "1"])
    assert rows["k4"] == ("4@x", ["a", "4"])


def test_refused_rows_of_a_columnar_batch_are_rejected_alone(
    destination: Factory, postgres_url: str, schema: str, table: str
) -> None:
    execute(
        postgres_url,
        sql.SQL("CREATE TABLE {} (key text PRIMARY KEY, age integer CHECK (age >= 0))").format(
            sql.Identifier(schema, table)
        ),
    )
    made = destination(create_table=False)
    made.open(Mode.UPSERT, ["age"])
    records = [Record(f"k{i}", {"age": -1 if i in (3, 17) else i}) for i in range(30)]

    for operation in (Operation.ADD, Operation.CHANGE):
        answer = made.send_columns(column_batch(operation, records, {"age": pa.int64()}))

        assert isinstance(answer, list)
        assert [r.key for r in answer] == [r.key for r in records]
        assert {r.key for r in answer if r.outcome is Outcome.REJECTED} == {"k3", "k17"}
        assert "check constraint" in str(answer[3].reason)
        assert set(contents(postgres_url, schema, table)) == {
            r.key for r in records if r.key not in ("k3", "k17")
        }
