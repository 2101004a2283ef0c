"""The in-warehouse planner: what changed since the last delivery, and what was delivered.

Per sync, in Corral's own schema (default `corral_planner`), never in customer tables:

    <sync>_state     key, hash and fields of every row the destination accepted
    <sync>_current   this run's source rows (key, hash, fields), kept for the membership
                     log of audience syncs; other syncs plan from the source query directly
    <sync>_previous  the last run's source rows, until its membership changes are logged
    <sync>_plan      rows to add, change or remove: current FULL OUTER JOIN state on key
    <sync>_acks      keys whose batch is on its way (op `sending`, with the batch's
                     number), and what the destination accepted in the running (or a
                     crashed) run: keys one by one, or whole batches (one row with no key)
    <sync>_rejected  rows the destination rejected in the last run, with reasons
    membership_log   enter and exit events of every audience sync, shared

A run builds `current` and `plan` in SQL, streams the plan to the destination, appends
accepted keys to `acks` as they come back, and finally folds `acks` into `state`. The
fold is idempotent, so a run that dies anywhere leaves a state that the next run first
completes from the surviving acks: nothing accepted is sent again unless its ack was
lost with the process, and then the destination's idempotent modes absorb the resend.

Keys are also recorded just before their batch is sent. A key sent by a run that died
before the answer came is in doubt: the destination may hold it or not. The recovering
fold drops its hash from the state (a row the dead run was adding joins the state with
the hash mark `maybe_added`), so the next plan sends it again if it is still in the source,
or removes it if it left; without that, a row added and never acknowledged would stay at
the destination after leaving the audience, and a change would stick after its source
went back to the delivered value.

Two parts live beside this module: `state_upgrades` keeps the state in the shape and hash
the next plan compares against, and `records` keeps the rejected rows and the membership
log.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from corral.activation.mapping import (
    HASH,
    KEY,
    OP,
    Field,
    hash_type,
)
from corral.activation.records import MEMBERSHIP_SCHEMA, REJECTED_SCHEMA, RunRecords
from corral.activation.state_upgrades import StateUpgrades
from corral.errors import WarehouseError
from corral.sql.build import column, conjunction, create_as, literal
from corral.sql.dialects import canonical_dialect
from corral.warehouse.base import ColumnInfo, TableRef, Warehouse

logger = logging.getLogger(__name__)

DEFAULT_SCHEMA = "corral_planner"
SEQ = "__seq"
SENDING = "sending"  # the op of an acks row written before its key's batch is sent
_LISTS_TABLES = frozenset({"duckdb", "postgres"})  # warehouses with information_schema.tables
# Warehouses whose text sorts by the database's collation unless told otherwise; the
# others compare the bytes.
_COLLATED_TEXT = frozenset({"postgres", "greenplum"})

_ACKS = pa.schema([(KEY, pa.string()), (OP, pa.string()), (SEQ, pa.int64())])


@dataclass(frozen=True)
class PlanCounts:
    added: int
    changed: int
    removed: int
    members: int
    delivered_before: int


def sync_slug(name: str) -> str:
    """A table-name-safe prefix for a sync: its name, slugged, with a short hash."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:32] or "sync"
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"s_{slug}_{digest}"


class Planner(StateUpgrades, RunRecords):
    """The planner tables of one sync in one warehouse."""

    def __init__(
        self,
        warehouse: Warehouse,
        sync: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        dry_run: bool = False,
        keep_current: bool = True,
    ):
        self.warehouse = warehouse
        self.sync = sync
        self.schema = schema
        self.dry_run = dry_run
        # Writing every source row to `current` costs more than the diff itself, and only
        # the membership log (current against previous) reads it after the plan.
        self.keep_current = keep_current
        prefix = sync_slug(sync)
        # A dry run plans into tables of its own, so it disturbs nothing a real run reads.
        run = f"{prefix}_dry" if dry_run else prefix
        self.state = TableRef(f"{prefix}_state", schema)
        self.state_next = TableRef(f"{prefix}_state_next", schema)
        self.current = TableRef(f"{run}_current", schema)
        self.previous = TableRef(f"{prefix}_previous", schema)
        self.plan_table = TableRef(f"{run}_plan", schema)
        self.plan_next = TableRef(f"{run}_plan_next", schema)
        self.acks = TableRef(f"{prefix}_acks", schema)
        self.rejected = TableRef(f"{prefix}_rejected", schema)
        self.membership_log = TableRef("membership_log", schema)
        # Spark's file tables take no DELETE; there the fold rebuilds the state instead.
        self._rebuild_on_fold = warehouse.dialect == "spark"
        # The planner schema's tables as `prepare` listed them, for the plan that follows
        # to skip dropping tables that are not there; None when not known.
        self._listed: set[str] | None = None
        self._hash_type = hash_type(warehouse.dialect)
        # The hash of a row a dead run may have added: no text hash is empty, and a numeric
        # hash is 0 once in 2^64 rows, which would only send that row once more as an add.
        text = self._hash_type.is_type("text")
        self._maybe_added = literal("") if text else exp.cast(literal(0), self._hash_type)

    # -- setting up and recovering ------------------------------------------------------------

    def prepare(self) -> bool:
        """Create what is missing and finish what a crashed run left; True if it folded acks."""
        names = self._table_names()
        self._listed = names

        def exists(table: TableRef) -> bool:
            return table.name in names if names is not None else self._exists(table)

        if not names:  # none of the sync's tables yet (or no listing): maybe no schema either
            self.warehouse.ensure_schema(self.schema)
        if not exists(self.state) and exists(self.state_next):
            self._rename(self.state_next, self.state)  # a rebuild died just before its rename
        elif exists(self.state_next):
            self.warehouse.drop_table(self.state_next)  # a rebuild died half-way: redo it
        for table, schema in (
            (self.acks, _ACKS),
            (self.rejected, REJECTED_SCHEMA),
            (self.membership_log, MEMBERSHIP_SCHEMA),
        ):
            if not exists(table):
                self.warehouse.create_table(table, schema.empty_table())
        if not self.dry_run and self._count(self.acks, exists=True) and exists(self.plan_table):
            logger.info("sync %r: completing the state from a run that stopped early", self.sync)
            self.fold(recovering=True)
            return True
        return False

    # -- planning -----------------------------------------------------------------------------

    def plan(
        self, source: exp.Select, fields: Sequence[Field], *, key_type: str | None = None
    ) -> PlanCounts:
        """Build `plan` from the source rows against state (through `current` if kept).

        `key_type`: the family of the source's key (see `planned_key_type`), when the
        caller knows it; otherwise the planner asks the warehouse."""
        listed, self._listed = self._listed, None

        def drop(table: TableRef) -> None:
            if listed is None or table.name in listed:
                self.warehouse.drop_table(table)

        if self.dry_run or not self.keep_current:
            drop(self.current)
        elif self._exists(self.current):
            self.warehouse.drop_table(self.previous)
            self._rename(self.current, self.previous)
        if self.keep_current:
            self.warehouse.execute(create_as(self.current.to_expression(), source))
            rows: exp.Expr = self.current.to_expression()
        else:
            rows = exp.Subquery(this=source.copy())
        state, stored = self._ensure_state(fields, rows, key_type)
        state = self._fresh_hashes(state, fields, stored)

        c, s = "c", "s"
        added = exp.Is(this=column(KEY, s), expression=exp.Null())
        removed = exp.Is(this=column(KEY, c), expression=exp.Null())
        maybe_added = exp.EQ(this=column(HASH, s), expression=self._maybe_added.copy())
        operation = exp.Case(
            ifs=[
                exp.If(this=added.copy(), true=literal("add")),
                exp.If(this=removed.copy(), true=literal("remove")),
                exp.If(this=maybe_added, true=literal("add")),
            ],
            default=literal("change"),
        )
        key = exp.Case(
            ifs=[exp.If(this=removed.copy(), true=column(KEY, s))], default=column(KEY, c)
        )
        changed = exp.NEQ(this=column(HASH, c), expression=column(HASH, s))
        missing_hash = exp.Is(this=column(HASH, s), expression=exp.Null())
        # Only the state's key and hash join: a hash table of two narrow columns builds
        # several times faster than one of every delivered field. Removed rows, which have
        # no source side, take what was delivered from the state afterwards.
        delivered = exp.select(column(KEY), column(HASH)).from_(state.to_expression())
        # Built in place (copy=False): each copy of a compiled audience's source query
        # costs about a millisecond, and nothing else holds these parts.
        select = (
            exp.select(
                exp.alias_(operation, OP, quoted=True),
                exp.alias_(key, KEY, quoted=True),
                *(column(name, c) for name in (HASH, *(f.column for f in fields))),
            )
            .from_(exp.alias_(rows, c, table=True, quoted=True, copy=False), copy=False)
            .join(
                exp.Subquery(this=delivered, alias=exp.TableAlias(this=exp.to_identifier(s))),
                on=exp.EQ(this=column(KEY, c), expression=column(KEY, s)),
                join_type="FULL OUTER",
                copy=False,
            )
            .where(exp.or_(added, removed, changed, missing_hash), copy=False)
        )
        drop(self.plan_next)
        if self.warehouse.dialect == "duckdb":  # one statement and one commit instead of two
            self.warehouse.execute(create_as(self.plan_table.to_expression(), select, replace=True))
        else:
            drop(self.plan_table)
            self.warehouse.execute(create_as(self.plan_table.to_expression(), select))
        counts = self.counts()
        if counts.removed:
            self._removed_from(state, fields)
        return counts

    def _removed_from(self, state: TableRef, fields: Sequence[Field]) -> None:
        """Give the plan's removed rows what was last delivered (a destination may need it
        to remove them): the plan is written again, its removed rows from the state.

        Built beside the plan and renamed over it; no run has sent anything yet, so one
        that dies here leaves nothing to recover, and the next plans again."""
        columns = [KEY, HASH, *(f.column for f in fields)]
        remove = literal("remove")
        kept = (
            exp.select(column(OP), *(column(c) for c in columns))
            .from_(self.plan_table.to_expression())
            .where(exp.NEQ(this=column(OP), expression=remove.copy()))
        )
        removed_keys = (
            exp.select(column(KEY))
            .from_(self.plan_table.to_expression())
            .where(exp.EQ(this=column(OP), expression=remove.copy()))
        )
        removed = (
            exp.select(exp.alias_(remove.copy(), OP, quoted=True), *(column(c) for c in columns))
            .from_(state.to_expression())
            .where(exp.In(this=column(KEY), query=exp.Subquery(this=removed_keys)))
        )
        self.warehouse.execute(
            create_as(self.plan_next.to_expression(), exp.union(kept, removed, distinct=False))
        )
        self.warehouse.drop_table(self.plan_table)
        self._rename(self.plan_next, self.plan_table)

    def counts(self) -> PlanCounts:
        """What the plan holds, after `plan`; `members` is counted from `current` when kept."""
        count = exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True)
        by_op = (
            exp.select(column(OP), count.copy())
            .from_(self.plan_table.to_expression())
            .group_by(column(OP))
        )
        # The state's size in the same query, as the row whose op is NULL (`plan` made it).
        state = exp.select(
            exp.alias_(exp.cast(exp.Null(), exp.DataType.Type.TEXT), OP, quoted=True), count
        ).from_(self.state.to_expression())
        rows = self.warehouse.query(exp.union(by_op, state, distinct=False)).to_pylist()
        found = {row[OP]: int(row["n"]) for row in rows}
        added, removed = found.get("add", 0), found.get("remove", 0)
        delivered_before = found[None]
        if self.keep_current:
            members = self._count(self.current)
        else:
            # Keys are unique on both sides of the diff: every delivered row stays or goes.
            members = delivered_before - removed + added
        return PlanCounts(
            added=added,
            changed=found.get("change", 0),
            removed=removed,
            members=members,
            delivered_before=delivered_before,
        )

    def rows(
        self, operation: str, batch_size: int, *, in_key_order: bool = False
    ) -> Iterator[pa.RecordBatch]:
        """The plan's rows of one operation, in Arrow batches; `in_key_order`, sorted by
        the bytes of the key as text (the order in which destinations receive keys)."""
        select = (
            exp.select(exp.Star())
            .from_(self.plan_table.to_expression())
            .where(exp.EQ(this=column(OP), expression=literal(operation)))
        )
        if in_key_order:
            select = select.order_by(_text_in_byte_order(column(KEY), self.warehouse.dialect))
        yield from self.warehouse.stream(select, batch_size=batch_size)

    def sample(self, operation: str, limit: int) -> list[dict[str, object]]:
        select = (
            exp.select(exp.Star())
            .from_(self.plan_table.to_expression())
            .where(exp.EQ(this=column(OP), expression=literal(operation)))
            .order_by(column(KEY))
            .limit(limit)
        )
        rows: list[dict[str, object]] = self.warehouse.query(select).to_pylist()
        return rows

    # -- acknowledging and folding ------------------------------------------------------------

    def acknowledge(
        self, keys: Sequence[str] | pa.Array, operations: Sequence[str] | pa.Array, seq: int
    ) -> None:
        """Record keys the destination accepted; they reach the state at the next fold.

        Keys and operations may be Arrow arrays, which reach the warehouse as they are."""
        if not len(keys):
            return
        data = pa.table(
            [strings(keys), strings(operations), pa.repeat(pa.scalar(seq, pa.int64()), len(keys))],
            schema=_ACKS,
        )
        self.warehouse.append(self.acks, data)

    def intend(self, keys: Sequence[str] | pa.Array, batch: int) -> None:
        """Record keys about to be sent in the run's batch number `batch` (from 1): if the
        run dies before their answer, they are in doubt."""
        self.acknowledge(keys, pa.repeat(pa.scalar(SENDING), len(keys)), batch)

    def acknowledge_batch(self, batch: int, operation: str) -> None:
        """Record that the destination accepted every key of the batch `batch` (as given to
        `intend`): one row, whatever the batch's size."""
        data = pa.table(
            [pa.nulls(1, pa.string()), pa.array([operation]), pa.array([batch], pa.int64())],
            schema=_ACKS,
        )
        self.warehouse.append(self.acks, data)

    def fold(self, *, recovering: bool = False) -> None:
        """Move acknowledged rows into the state; safe to repeat after any interruption.

        When `recovering` from a run that died, keys sent and never answered are in doubt
        (see the module docstring). A run that ends normally has every batch answered: its
        unanswered keys were rejected, and the next plan has them again anyway.
        """
        stored = self.warehouse.columns(self.state)
        state_columns = [c.name for c in stored]
        # Acks hold keys as text; the plan and the state, as the source has them.
        key = next(c for c in stored if c.name == KEY)
        acked = self._acked()
        acked_keys = self._typed_keys(acked, key)
        delivered = (
            exp.select(exp.Star())
            .from_(self.plan_table.to_expression())
            .where(
                conjunction(
                    [
                        exp.NEQ(this=column(OP), expression=literal("remove")),
                        exp.In(this=column(KEY), query=exp.Subquery(this=acked_keys.copy())),
                    ]
                )
            )
        )
        kept_from_plan = exp.select(*(column(c) for c in state_columns)).from_(
            exp.Subquery(this=delivered, alias=exp.TableAlias(this=exp.to_identifier("d")))
        )
        doubted = self._doubted(acked) if recovering else None
        if doubted is not None:
            # Every key in acks is either acknowledged or in doubt: none stays untouched.
            every_key = (
                exp.select(column(KEY))
                .from_(self.acks.to_expression())
                .where(exp.Not(this=exp.Is(this=column(KEY), expression=exp.Null())))
            )
            in_doubt = self._typed_keys(doubted, key)
            self._rebuild_state(
                state_columns,
                self._typed_keys(every_key, key),
                [kept_from_plan, *self._doubted_rows(state_columns, in_doubt)],
            )
        elif self._rebuild_on_fold:
            self._rebuild_state(state_columns, acked_keys, [kept_from_plan])
        else:
            # A first run's state is empty: nothing to replace.
            if self._count(self.state, exists=True):
                self.warehouse.execute(
                    exp.delete(
                        self.state.to_expression(),
                        where=exp.In(this=column(KEY), query=exp.Subquery(this=acked_keys.copy())),
                    )
                )
            self.warehouse.execute(
                exp.insert(
                    kept_from_plan,
                    self.state.to_expression(),
                    columns=[exp.to_identifier(c, quoted=True) for c in state_columns],
                )
            )
        self._reset(self.acks, _ACKS)

    def _acked(self) -> exp.Query:
        """The keys the destination accepted: acknowledged one by one, or sent in a batch
        that was acknowledged whole (a row with no key, and the batch in `__seq`).

        Never NULL: a NULL in the list would make every `NOT IN` over it unknown."""
        acks = self.acks.to_expression()
        no_key = exp.Is(this=column(KEY), expression=exp.Null())
        one_by_one = (
            exp.select(column(KEY))
            .from_(acks.copy())
            .where(
                conjunction(
                    [
                        exp.NEQ(this=column(OP), expression=literal(SENDING)),
                        exp.Not(this=no_key.copy()),
                    ]
                )
            )
        )
        whole_batches = exp.select(column(SEQ)).from_(acks.copy()).where(no_key.copy())
        in_whole_batches = (
            exp.select(column(KEY))
            .from_(acks.copy())
            .where(
                conjunction(
                    [
                        exp.EQ(this=column(OP), expression=literal(SENDING)),
                        exp.In(this=column(SEQ), query=exp.Subquery(this=whole_batches)),
                    ]
                )
            )
        )
        return exp.union(one_by_one, in_whole_batches, distinct=False)

    def _typed_keys(self, keys: exp.Query, key: ColumnInfo) -> exp.Query:
        """Keys read from acks (text) as the state's `key` column has them."""
        if key.type == "string":
            return keys
        cast = exp.cast(column(KEY), self._type_of(key))
        return exp.select(exp.alias_(cast, KEY, quoted=True)).from_(
            exp.Subquery(this=keys.copy(), alias=exp.TableAlias(this=exp.to_identifier("k")))
        )

    def _doubted(self, acked: exp.Query) -> exp.Select | None:
        """The keys sent and never acknowledged, or None when there are none."""
        doubted = (
            exp.select(column(KEY))
            .from_(self.acks.to_expression())
            .where(
                conjunction(
                    [
                        exp.EQ(this=column(OP), expression=literal(SENDING)),
                        exp.Not(
                            this=exp.In(this=column(KEY), query=exp.Subquery(this=acked.copy()))
                        ),
                    ]
                )
            )
        )
        found = self.warehouse.query(doubted.copy().limit(1))
        return doubted if found.num_rows else None

    def _doubted_rows(self, state_columns: list[str], doubted: exp.Query) -> list[exp.Select]:
        """State rows for keys in doubt: delivered rows lose their hash (a maybe-added one
        keeps its mark), and rows the dead run was adding come from the plan, maybe added."""
        in_doubt = exp.In(this=column(KEY), query=exp.Subquery(this=doubted.copy()))
        was_maybe_added = exp.EQ(this=column(HASH), expression=self._maybe_added.copy())
        unknown_hash = exp.Case(
            ifs=[exp.If(this=was_maybe_added, true=self._maybe_added.copy())],
            default=exp.cast(exp.Null(), self._hash_type.copy()),
        )

        def with_hash(value: exp.Expr) -> list[exp.Expr]:
            return [
                exp.alias_(value.copy(), HASH, quoted=True) if c == HASH else column(c)
                for c in state_columns
            ]

        delivered = (
            exp.select(*with_hash(unknown_hash))
            .from_(self.state.to_expression())
            .where(in_doubt.copy())
        )
        in_state = exp.select(column(KEY)).from_(self.state.to_expression())
        adding = (
            exp.select(*with_hash(self._maybe_added.copy()))
            .from_(self.plan_table.to_expression())
            .where(
                conjunction(
                    [
                        exp.EQ(this=column(OP), expression=literal("add")),
                        in_doubt.copy(),
                        exp.Not(this=exp.In(this=column(KEY), query=exp.Subquery(this=in_state))),
                    ]
                )
            )
        )
        return [delivered, adding]

    def _rebuild_state(
        self, state_columns: list[str], replaced: exp.Query, rows: list[exp.Select]
    ) -> None:
        """Write the state anew: its rows whose key is not in `replaced`, then `rows`.

        Built beside the state and renamed over it; `prepare` finishes or redoes a rebuild
        that was interrupted."""
        untouched = (
            exp.select(*(column(c) for c in state_columns))
            .from_(self.state.to_expression())
            .where(exp.Not(this=exp.In(this=column(KEY), query=exp.Subquery(this=replaced))))
        )
        union: exp.Query = untouched
        for part in rows:
            union = exp.union(union, part, distinct=False)
        self.warehouse.drop_table(self.state_next)
        self.warehouse.execute(create_as(self.state_next.to_expression(), union))
        self.warehouse.drop_table(self.state)
        self._rename(self.state_next, self.state)

    def drop_all(self) -> None:
        """Forget the sync: its next run is a baseline again."""
        for table in (
            self.state,
            self.state_next,
            self.current,
            self.previous,
            self.plan_table,
            self.plan_next,
            self.acks,
            self.rejected,
        ):
            self.warehouse.drop_table(table)

    # -- helpers ------------------------------------------------------------------------------

    def _table_names(self) -> set[str] | None:
        """The names of the planner schema's tables in one query, where the warehouse has
        `information_schema.tables` as DuckDB and PostgreSQL do; None elsewhere, and each
        table is then looked up on its own."""
        if self.warehouse.dialect not in _LISTS_TABLES:
            return None
        in_schema: exp.Expr = exp.EQ(this=column("table_schema"), expression=literal(self.schema))
        tables: exp.Expr = exp.table_("tables", db="information_schema")
        if self.warehouse.dialect == "duckdb":
            # DuckDB's own catalog function: faster than the information_schema view.
            tables = exp.Table(this=exp.Anonymous(this="duckdb_tables"))
            in_schema = conjunction(
                [
                    exp.EQ(this=column("schema_name"), expression=literal(self.schema)),
                    exp.EQ(
                        this=column("database_name"),
                        expression=exp.Anonymous(this="current_database"),
                    ),
                ]
            )
        listing = exp.select(column("table_name")).from_(tables).where(in_schema)
        return {str(name) for name in self.warehouse.query(listing).column(0).to_pylist()}

    def _exists(self, table: TableRef) -> bool:
        try:
            self.warehouse.columns(table)
        except WarehouseError:
            return False
        return True

    def _count(self, table: TableRef, *, exists: bool = False) -> int:
        """The table's rows; 0 when it does not exist, unless the caller knows it does."""
        if not exists and not self._exists(table):
            return 0
        result = self.warehouse.query(
            exp.select(exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True)).from_(
                table.to_expression()
            )
        )
        return int(result.column("n")[0].as_py())

    def _reset(self, table: TableRef, schema: pa.Schema) -> None:
        self.warehouse.create_table(table, schema.empty_table(), replace=True)


def strings(values: Sequence[str] | pa.Array) -> pa.Array:
    """Text values as an Arrow string array (Arrow arrays are cast, not copied to Python)."""
    if isinstance(values, pa.Array):
        return values if values.type == pa.string() else values.cast(pa.string())
    return pa.array(values, pa.string())


def _text_in_byte_order(value: exp.Expr, dialect: str) -> exp.Expr:
    """`value` as text, ordered by its bytes (as PostgreSQL's "C" collation orders it)."""
    text: exp.Expr = exp.Cast(this=value, to=exp.DataType.build("text"))
    if canonical_dialect(dialect) in _COLLATED_TEXT:
        text = exp.Collate(this=text, expression=exp.Identifier(this="C", quoted=True))
    return text
