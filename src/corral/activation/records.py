"""What a sync run leaves for later, in the planner schema: the rows the destination
rejected in the last run (with reasons and attempts across runs), and, for audience
syncs, the enter and exit events of the shared membership log that journeys,
experiments and insights read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa
from sqlglot import exp

from corral.activation.mapping import KEY
from corral.activation.runs import RejectedRow
from corral.sql.build import column, conjunction, literal
from corral.warehouse.base import TableRef, Warehouse

REJECTED_SCHEMA = pa.schema(
    [
        (KEY, pa.string()),
        ("reason", pa.string()),
        ("attempts", pa.int64()),
        ("rejected_at", pa.timestamp("us")),
    ]
)
MEMBERSHIP_SCHEMA = pa.schema(
    [
        ("member_key", pa.string()),
        ("audience", pa.string()),
        ("sync", pa.string()),
        ("run_id", pa.string()),
        ("event", pa.string()),
        ("at", pa.timestamp("us")),
        ("split_group", pa.string()),
    ]
)


class RunRecords:
    """The planner's rejections and membership log; `Planner` provides the attributes
    declared here."""

    warehouse: Warehouse
    sync: str
    rejected: TableRef
    membership_log: TableRef
    current: TableRef
    previous: TableRef

    def _exists(self, table: TableRef) -> bool:
        raise NotImplementedError  # the planner's

    def record_rejected(self, rows: Sequence[RejectedRow], at: datetime) -> None:
        """Replace the rejected rows with this run's, counting attempts across runs."""
        earlier = {
            row[KEY]: int(row["attempts"])
            for row in self.warehouse.query(
                exp.select(column(KEY), column("attempts")).from_(self.rejected.to_expression())
            ).to_pylist()
        }
        data = pa.table(
            {
                KEY: [r.key for r in rows],
                "reason": [r.reason for r in rows],
                "attempts": [earlier.get(r.key, 0) + r.attempts for r in rows],
                "rejected_at": [at.replace(tzinfo=None)] * len(rows),
            },
            schema=REJECTED_SCHEMA,
        )
        self.warehouse.create_table(self.rejected, data, replace=True)

    def rejected_rows(self, limit: int = 100) -> list[RejectedRow]:
        select = (
            exp.select(column(KEY), column("reason"), column("attempts"))
            .from_(self.rejected.to_expression())
            .order_by(column(KEY))
            .limit(limit)
        )
        return [
            RejectedRow(r[KEY], r["reason"], int(r["attempts"]))
            for r in self.warehouse.query(select).to_pylist()
        ]

    def log_membership(self, audience: str, run_id: str, at: datetime) -> tuple[int, int]:
        """Append enter and exit events (current against previous); return their counts."""
        counts = []
        first_run = not self._exists(self.previous)
        # Keys compare as they are, unless an older Corral left the previous rows' keys
        # as text while the current ones have the source's type: then both as text.
        same_type = first_run or (
            self.warehouse.columns(self.previous)[0].type
            == self.warehouse.columns(self.current)[0].type
        )

        def key_of(alias: str) -> exp.Expr:
            key = column(KEY, alias)
            return key if same_type else exp.cast(key, exp.DataType.Type.TEXT)

        for event, this, other in (
            ("enter", self.current, self.previous),
            ("exit", self.previous, self.current),
        ):
            if first_run and event == "exit":
                counts.append(0)
                continue
            rows = exp.select(
                exp.alias_(
                    exp.cast(column(KEY, "t"), exp.DataType.Type.TEXT), "member_key", quoted=True
                ),
                exp.alias_(literal(audience), "audience", quoted=True),
                exp.alias_(literal(self.sync), "sync", quoted=True),
                exp.alias_(literal(run_id), "run_id", quoted=True),
                exp.alias_(literal(event), "event", quoted=True),
                exp.alias_(literal(at.replace(tzinfo=None)), "at", quoted=True),
                exp.alias_(
                    exp.cast(exp.Null(), exp.DataType.Type.TEXT), "split_group", quoted=True
                ),
            ).from_(this.to_expression().as_("t", quoted=True))
            if not first_run:
                in_other = (
                    exp.select(literal(1))
                    .from_(other.to_expression().as_("o", quoted=True))
                    .where(exp.EQ(this=key_of("o"), expression=key_of("t")))
                )
                rows = rows.where(exp.Not(this=exp.Exists(this=in_other)))
            names = [field.name for field in MEMBERSHIP_SCHEMA]
            self.warehouse.execute(
                exp.insert(
                    rows,
                    self.membership_log.to_expression(),
                    columns=[exp.to_identifier(n, quoted=True) for n in names],
                )
            )
            counts.append(self._count_where_run(run_id, event))
        self.warehouse.drop_table(self.previous)
        return counts[0], counts[1]

    def _count_where_run(self, run_id: str, event: str) -> int:
        result = self.warehouse.query(
            exp.select(exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True))
            .from_(self.membership_log.to_expression())
            .where(
                conjunction(
                    [
                        exp.EQ(this=column("run_id"), expression=literal(run_id)),
                        exp.EQ(this=column("sync"), expression=literal(self.sync)),
                        exp.EQ(this=column("event"), expression=literal(event)),
                    ]
                )
            )
        )
        return int(result.column("n")[0].as_py())
