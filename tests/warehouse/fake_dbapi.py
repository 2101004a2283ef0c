"""A tiny PEP 249 driver that records the SQL it is sent and answers from a script.

Vendor adapters are tested against it by installing it in `sys.modules` under the
driver's own module name; it checks what Corral sends, not what a vendor would answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pyarrow as pa

Description = list[tuple[Any, ...]]


class Error(Exception):
    pass


class ProgrammingError(Error):
    pass


@dataclass
class Answer:
    """What the fake returns for one statement."""

    description: Description | None = None
    rows: Sequence[tuple[Any, ...]] = ()


def default_answer(sql: str) -> Answer:
    if "no_such_table" in sql:
        raise ProgrammingError("Table 'no_such_table' does not exist or not authorized.")
    if sql.upper().startswith("SELECT"):
        return Answer([("id", "bigint"), ("name", "varchar")], [(1, "Ada"), (2, None)])
    return Answer()


@dataclass
class FakeDriver:
    """State shared by every connection the fake module hands out."""

    answer: Callable[[str], Answer] = default_answer
    executed: list[str] = field(default_factory=list)
    connects: list[dict[str, Any]] = field(default_factory=list)
    commits: int = 0
    open_connections: int = 0
    most_open: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connect(self, **kwargs: Any) -> FakeConnection:
        with self.lock:
            self.connects.append(kwargs)
            self.open_connections += 1
            self.most_open = max(self.most_open, self.open_connections)
        return FakeConnection(self)

    def module(self, name: str) -> ModuleType:
        module = ModuleType(name)
        module.connect = self.connect  # type: ignore[attr-defined]
        module.Error = Error  # type: ignore[attr-defined]
        module.ProgrammingError = ProgrammingError  # type: ignore[attr-defined]
        return module


class FakeConnection:
    def __init__(self, driver: FakeDriver) -> None:
        self.driver = driver

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.driver)

    def commit(self) -> None:
        self.driver.commits += 1

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        with self.driver.lock:
            self.driver.open_connections -= 1


class FakeCursor:
    def __init__(self, driver: FakeDriver) -> None:
        self.driver = driver
        self.description: Description | None = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str) -> None:
        with self.driver.lock:
            self.driver.executed.append(sql)
        answer = self.driver.answer(sql)
        self.description = answer.description
        self._rows = list(answer.rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    # Snowflake's and Databricks' Arrow fetches, answered from the same rows.
    def _arrow(self, rows: list[tuple[Any, ...]]) -> pa.Table:
        names = [d[0] for d in self.description or []]
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})

    def fetch_arrow_all(self) -> pa.Table | None:
        rows = self.fetchall()
        return self._arrow(rows) if rows else None

    def fetch_arrow_batches(self) -> Any:
        while rows := self.fetchmany(7):
            yield self._arrow(rows)

    def fetchall_arrow(self) -> pa.Table:
        return self._arrow(self.fetchall())

    def fetchmany_arrow(self, size: int) -> pa.Table:
        return self._arrow(self.fetchmany(size))

    def close(self) -> None:
        pass
