"""Keeping a sync's delivered state in the shape its next plan compares against.

The planner (`corral.activation.planner`) diffs the source rows against the state by key
and hash. Before each plan the state must have the columns the mapping produces, keys of
the type the source plans, and hashes computed as the warehouse computes them now. When
any of these changed (a first run, a new mapping, an older Corral's text keys or hashes,
an engine upgrade that changed DuckDB's `hash`), the state is rewritten beside itself and
renamed over it, keeping what was delivered, so nothing is sent again that need not be.
`Planner.prepare` finishes a rename that was interrupted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlglot import exp

from corral.activation.mapping import HASH, KEY, UNSTABLE_HASH_DIALECTS, Field, row_hash
from corral.errors import WarehouseError
from corral.sql.build import column, conjunction, create_as, literal
from corral.sql.dialects import sqlglot_dialect
from corral.warehouse.base import ColumnInfo, TableRef, Warehouse

logger = logging.getLogger(__name__)

_HASH_SAMPLE = 100  # state rows checked against a fresh hash before each plan


class StateUpgrades:
    """The planner's state upgrades; `Planner` provides the attributes declared here."""

    warehouse: Warehouse
    sync: str
    schema: str
    dry_run: bool
    state: TableRef
    state_next: TableRef
    current: TableRef
    _hash_type: exp.DataType
    _maybe_added: exp.Expr

    def _ensure_state(
        self, fields: Sequence[Field], rows: exp.Expr, key_type: str | None = None
    ) -> tuple[TableRef, list[ColumnInfo] | None]:
        """The state to plan against, created empty on the first run and migrated when
        the mapping or the key's type changed (a dry run migrates a copy and leaves the
        real state alone); with its columns when it was left as it was.

        `rows` is this run's source rows: the `current` table or the source query."""
        wanted = [KEY, HASH, *(f.column for f in fields)]

        def source() -> exp.Expr:  # built only when needed: copying the source costs
            return exp.alias_(rows.copy(), "r", table=True, quoted=True)

        def empty() -> exp.Select:
            return (
                exp.select(*(column(c) for c in wanted))
                .from_(source(), copy=False)
                .where(exp.EQ(this=literal(1), expression=literal(0)), copy=False)
            )

        try:
            stored = self.warehouse.columns(self.state)
        except WarehouseError:  # the first run
            self.warehouse.execute(create_as(self.state.to_expression(), empty()))
            return self.state, None
        have = [c.name for c in stored]
        stored_key = next((c for c in stored if c.name == KEY), None)
        if have == wanted and stored_key is not None and stored_key.type == key_type:
            return self.state, stored
        key_only = exp.select(column(KEY)).from_(source(), copy=False)
        key = self.warehouse.query_columns(key_only)[0]
        typed_key = exp.alias_(exp.cast(column(KEY), self._type_of(key)), KEY, quoted=True)
        # Built beside the state and renamed over it (`prepare` finishes an interrupted
        # rename); a dry run keeps its copy.
        target = self.state_next
        if self.dry_run:
            target = TableRef(self.current.name.replace("_current", "_state_migrated"), self.schema)
        if have == wanted:
            if stored_key is not None and stored_key.type == key.type:
                return self.state, stored
            # Keys planned as text by an older Corral, now as the source has them: every
            # delivered row keeps its hash, so nothing is sent again.
            logger.info("sync %r: the state's keys take the source's type", self.sync)
            self.warehouse.drop_table(target)
            as_stored = [typed_key, *(column(c) for c in have if c != KEY)]
            self.warehouse.execute(
                create_as(
                    target.to_expression(), exp.select(*as_stored).from_(self.state.to_expression())
                )
            )
        else:
            # Keep what was delivered, with no hash, so every row is planned as a change
            # and removals still know what they remove.
            logger.info(
                "sync %r: the mapping changed; every delivered row will be updated", self.sync
            )
            common = [c for c in wanted if c in have and c != HASH]
            self.warehouse.drop_table(target)
            self.warehouse.execute(create_as(target.to_expression(), empty()))
            self.warehouse.execute(
                exp.insert(
                    exp.select(
                        *(typed_key.copy() if c == KEY else column(c) for c in common)
                    ).from_(self.state.to_expression()),
                    target.to_expression(),
                    columns=[exp.to_identifier(c, quoted=True) for c in common],
                )
            )
        if self.dry_run:
            return target, None
        self.warehouse.drop_table(self.state)
        self._rename(target, self.state)
        return self.state, None

    def _fresh_hashes(
        self, state: TableRef, fields: Sequence[Field], stored: list[ColumnInfo] | None = None
    ) -> TableRef:
        """The state to plan against, rehashed if the warehouse now hashes rows differently.

        The state holds each delivered row's fields, so its hashes can be computed again as
        the source query computes them. A sample of rows tells whether they would differ:
        after an engine upgrade changed the hash function, or after Corral's hash changed,
        every row does; a state whose hashes have another type (text, from a Corral that
        hashed DuckDB rows as text) is rehashed without looking. Rows with no hash (in
        doubt, or from a changed mapping) keep none, and rows maybe added keep that mark.
        The state is written anew beside itself and renamed over it (`prepare` finishes an
        interrupted rename); a dry run rehashes a copy and leaves the real state alone.
        `stored`: the state's columns, when the caller has just read them."""
        if self.warehouse.dialect not in UNSTABLE_HASH_DIALECTS:
            return state
        fresh = row_hash([column(f.column) for f in fields], self.warehouse.dialect)
        hashes = next(c for c in stored or self.warehouse.columns(state) if c.name == HASH)
        typed = (
            exp.DataType.build(hashes.native_type, dialect=self.warehouse.dialect).this
            == self._hash_type.this
        )
        # The mark of a row maybe added, as the stored hashes spell it.
        marked = self._maybe_added if typed else literal("")
        has_hash = conjunction(
            [
                exp.Not(this=exp.Is(this=column(HASH), expression=exp.Null())),
                exp.NEQ(this=column(HASH), expression=marked.copy()),
            ]
        )
        if typed:
            sample = (
                exp.select(column(HASH), *(column(f.column) for f in fields))
                .from_(state.to_expression())
                .where(has_hash.copy())
                .limit(_HASH_SAMPLE)
            )
            stale = (
                exp.select(literal(1))
                .from_(exp.Subquery(this=sample, alias=exp.TableAlias(this=exp.to_identifier("h"))))
                .where(exp.NEQ(this=column(HASH), expression=fresh.copy()))
                .limit(1)
            )
            if not self.warehouse.query(stale).num_rows:
                return state
        logger.info("sync %r: the warehouse hashes rows differently now; rehashing", self.sync)
        is_marked = exp.EQ(this=column(HASH), expression=marked.copy())
        rehashed = exp.Case(
            ifs=[
                exp.If(this=exp.Is(this=column(HASH), expression=exp.Null()), true=exp.Null()),
                exp.If(this=is_marked, true=self._maybe_added.copy()),
            ],
            default=fresh,
        )
        rows = exp.select(
            column(KEY),
            exp.alias_(exp.cast(rehashed, self._hash_type.copy()), HASH, quoted=True),
            *(column(f.column) for f in fields),
        ).from_(state.to_expression())
        if self.dry_run:
            copy = TableRef(self.current.name.replace("_current", "_state_rehashed"), self.schema)
            self.warehouse.drop_table(copy)
            self.warehouse.execute(create_as(copy.to_expression(), rows))
            return copy
        self.warehouse.drop_table(self.state_next)
        self.warehouse.execute(create_as(self.state_next.to_expression(), rows))
        self.warehouse.drop_table(self.state)
        self._rename(self.state_next, self.state)
        return self.state

    def _rename(self, source: TableRef, target: TableRef) -> None:
        self.warehouse.execute(
            exp.Alter(
                this=source.to_expression(),
                kind="TABLE",
                actions=[exp.AlterRename(this=target.to_expression())],
            )
        )

    def _type_of(self, info: ColumnInfo) -> exp.DataType:
        return exp.DataType.build(info.native_type, dialect=sqlglot_dialect(self.warehouse.dialect))
