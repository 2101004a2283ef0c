"""Rich renderings of Corral's results for people: tables, bars, sizes with separators."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.bar import Bar
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from corral.activation.runs import RunReport, RunStatus
from corral.audiences.conditions import AudienceDefinition
from corral.audiences.preview import REDACTED, Breakdown, Preview, Sample, Timing
from corral.schema import Problem
from corral.store.records import RunRecord

BAR_WIDTH = 28


def count(n: int) -> str:
    return f"{n:,}"


def share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def value_text(value: Any) -> Text:
    """A cell value: nulls and redacted values dimmed, numbers and times readable."""
    if value is None:
        return Text("null", style="dim italic")
    if value == REDACTED:
        return Text(REDACTED, style="dim")
    if isinstance(value, bool):
        return Text("true" if value else "false")
    if isinstance(value, datetime):
        return Text(value.isoformat(sep=" ", timespec="seconds").removesuffix(" 00:00:00"))
    if isinstance(value, date):
        return Text(value.isoformat())
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return Text(f"{value:,}")
    if isinstance(value, float):
        return Text(f"{value:,.2f}")
    return Text(str(value))


def bar(part: int, largest: int) -> Bar:
    return Bar(size=max(largest, 1), begin=0, end=part, width=BAR_WIDTH, color="cyan")


# -- previews ----------------------------------------------------------------------------------


def preview_report(preview: Preview, *, parent: str, schema_ms: float) -> RenderableType:
    """Everything about one preview, top to bottom: size, blocks, breakdowns, sample, timings."""
    parts: list[RenderableType] = [_headline(preview, parent)]
    if preview.blocks:
        parts.append(blocks_table(preview, parent))
    parts += [breakdown_table(b, preview.size) for b in preview.breakdowns]
    if preview.sample is not None:
        parts.append(sample_table(preview.sample))
    parts.append(timings_table(preview.timings, schema_ms))
    return Group(*parts)


def _headline(preview: Preview, parent: str) -> Text:
    text = Text()
    text.append(preview.audience, style="bold")
    text.append(": ")
    text.append(count(preview.size), style="bold green")
    of_all = share(preview.size, preview.parent_rows)
    text.append(f" of {count(preview.parent_rows)} {parent} ({of_all})")
    text.append(f"  as of {preview.as_of.isoformat(sep=' ')} {preview.time_zone}", style="dim")
    return text


def blocks_table(preview: Preview, parent: str) -> Table:
    table = Table(title="Each top-level condition on its own", title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("condition", overflow="fold")
    table.add_column(parent, justify="right")
    table.add_column("share", justify="right")
    for block in preview.blocks:
        table.add_row(
            str(block.index),
            block.description,
            count(block.size),
            share(block.size, preview.parent_rows),
        )
    return table


def breakdown_table(breakdown: Breakdown, size: int) -> Table:
    unit = f", bins of {breakdown.unit}" if breakdown.unit else ""
    title = f"Members by {breakdown.source} {breakdown.name}{unit}"
    table = Table(title=title, title_justify="left")
    table.add_column("value" if breakdown.kind == "top_values" else "range", overflow="fold")
    table.add_column("members", justify="right")
    table.add_column("share", justify="right")
    table.add_column("", width=BAR_WIDTH)
    rows = _breakdown_rows(breakdown)
    largest = max((n for _, n in rows), default=0)
    for label, n in rows:
        table.add_row(label, count(n), share(n, size), bar(n, largest))
    return table


def _breakdown_rows(breakdown: Breakdown) -> list[tuple[Text, int]]:
    if breakdown.kind == "top_values":
        rows = [(value_text(v.value), v.count) for v in breakdown.values]
        if breakdown.other:
            rows.append((Text("(other values)", style="italic"), breakdown.other))
    else:
        rows = [(_range(b.low, b.high), b.count) for b in breakdown.bins]
    if breakdown.nulls:
        rows.append((Text("null", style="dim italic"), breakdown.nulls))
    return rows


def _range(low: Any, high: Any) -> Text:
    return Text.assemble(value_text(low), " – ", value_text(high))


def sample_table(sample: Sample) -> Table:
    title = f"Sample: the first {len(sample.rows)} members by primary key"
    if sample.redacted:
        title += f" ({', '.join(sample.redacted)} redacted; --reveal shows them)"
    table = Table(title=title, title_justify="left")
    for name in sample.columns:
        table.add_column(name, overflow="fold")
    for row in sample.rows:
        table.add_row(*[value_text(v) for v in row])
    return table


def timings_table(timings: Sequence[Timing], schema_ms: float | None = None) -> Table:
    table = Table(title="Timings (ms)", title_justify="left")
    table.add_column("step")
    for name in ("total", "warehouse", "corral"):
        table.add_column(name, justify="right")
    if schema_ms is not None:
        table.add_row("read schema", f"{schema_ms:.1f}", "", "", style="dim")
    for t in timings:
        table.add_row(t.step, f"{t.total_ms:.1f}", f"{t.warehouse_ms:.1f}", f"{t.corral_ms:.1f}")
    total = sum(t.total_ms for t in timings)
    in_warehouse = sum(t.warehouse_ms for t in timings)
    table.add_row(
        "all", f"{total:.1f}", f"{in_warehouse:.1f}", f"{total - in_warehouse:.1f}", style="bold"
    )
    return table


def sizes_table(previews: Sequence[Preview], parent: str) -> Table:
    """One row per audience: size, share of the parent, milliseconds."""
    table = Table(title="Demo audiences", title_justify="left")
    table.add_column("audience")
    table.add_column("size", justify="right")
    table.add_column(f"share of {parent}", justify="right")
    table.add_column("ms", justify="right")
    for p in previews:
        table.add_row(p.audience, count(p.size), share(p.size, p.parent_rows), f"{p.total_ms:.0f}")
    return table


# -- workspace -----------------------------------------------------------------------------------


def audiences_table(
    audiences: Mapping[str, AudienceDefinition], files: Mapping[str, Path]
) -> Table:
    """Each audience's name (and, dimmed, the file name to pass to commands), its conditions."""
    table = Table(title=f"{len(audiences)} audiences", title_justify="left")
    table.add_column("audience", no_wrap=True)
    table.add_column("conditions", justify="right")
    table.add_column("description", overflow="fold")
    for name, audience in sorted(audiences.items()):
        path = files.get(name)
        label = Text(name, style="bold")
        if path is not None:
            label.append(f"\n{path.stem}", style="dim")
        table.add_row(label, str(len(audience.conditions)), audience.description or "")
    return table


def problems_table(problems: Sequence[Problem]) -> Table:
    table = Table(title=f"{len(problems)} problems in schema.yaml", title_justify="left")
    table.add_column("where", style="bold")
    table.add_column("problem", style="red", overflow="fold")
    table.add_column("how to fix", overflow="fold")
    for problem in problems:
        table.add_row(problem.where, problem.message, problem.hint or "")
    return table


def suggestions_table(title: str, values: Sequence[tuple[Any, int]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("value")
    table.add_column("rows", justify="right")
    table.add_column("", width=BAR_WIDTH)
    largest = max((n for _, n in values), default=0)
    for value, n in values:
        table.add_row(value_text(value), count(n), bar(n, largest))
    return table


def print_lines(console: Console, lines: Sequence[str]) -> None:
    for line in lines:
        console.print(line, soft_wrap=True)


# -- sync runs ---------------------------------------------------------------------------------

_STATUS_STYLES = {
    RunStatus.SUCCEEDED: "bold green",
    RunStatus.PARTIAL: "bold yellow",
    RunStatus.NEEDS_CONFIRMATION: "bold yellow",
    RunStatus.FAILED: "bold red",
}


def run_report(report: RunReport) -> RenderableType:
    """One run: status, planned against delivered counts, rejected rows, timings."""
    c = report.counts
    seconds = f" in {report.seconds:.1f} s" if report.seconds is not None else ""
    kind = "Dry run of" if report.dry_run else "Run of"
    headline = Text.assemble(
        f"{kind} {report.sync}: ",
        (report.status.value, _STATUS_STYLES.get(report.status, "bold")),
        f"{seconds} · {count(c.members)} rows in the source",
    )
    table = Table(box=None, padding=(0, 2), show_edge=False)
    table.add_column("")
    table.add_column("Planned", justify="right")
    table.add_column("Delivered", justify="right")
    for label, planned, done in (
        ("add", c.planned_added, c.added),
        ("change", c.planned_changed, c.changed),
        ("remove", c.planned_removed, c.removed),
    ):
        table.add_row(label, count(planned), "–" if report.dry_run else count(done))
    parts: list[RenderableType] = [headline, table]
    notes = []
    if c.rejected:
        notes.append(f"{count(c.rejected)} rejected (retried next run)")
    if c.retried:
        notes.append(f"{count(c.retried)} resent within the run")
    if c.held_removals:
        notes.append(f"{count(c.held_removals)} removals held: run again with --confirm-removals")
    if notes:
        parts.append(Text(" · ".join(notes), style="yellow"))
    if report.error:
        parts.append(Text(f"error: {report.error}", style="red"))
    if report.rejected:
        rejected = Table(title="Rejected rows", title_justify="left", box=None, padding=(0, 2))
        rejected.add_column("Key")
        rejected.add_column("Reason")
        rejected.add_column("Runs", justify="right")
        for row in report.rejected[:10]:
            rejected.add_row(row.key, row.reason, str(row.attempts))
        parts.append(rejected)
    for operation, rows in report.samples.items():
        if not rows:
            continue
        sample = Table(title=f"Sample to {operation}", title_justify="left", box=None)
        for name in rows[0]:
            sample.add_column(name)
        for values in rows:
            sample.add_row(*(value_text(v) for v in values.values()))
        parts.append(sample)
    if report.timings:
        parts.append(
            Text(
                "timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in report.timings.items()),
                style="dim",
            )
        )
    return Group(*parts)


def runs_table(reports: Sequence[RunReport], *, title: str) -> Table:
    """One line per run: sync, status, rows, what was sent, how long it took."""
    table = Table(title=title, title_justify="left")
    for heading, justify in (
        ("Sync", "left"),
        ("Status", "left"),
        ("Rows", "right"),
        ("Added", "right"),
        ("Changed", "right"),
        ("Removed", "right"),
        ("Rejected", "right"),
        ("Time", "right"),
    ):
        table.add_column(heading, justify=justify)  # type: ignore[arg-type]
    for report in reports:
        c = report.counts
        status = Text(report.status.value, style=_STATUS_STYLES.get(report.status, ""))
        table.add_row(
            report.sync,
            status,
            count(c.members),
            count(c.added),
            count(c.changed),
            count(c.removed),
            count(c.rejected),
            f"{report.seconds:.1f} s" if report.seconds is not None else "–",
        )
    return table


def history_table(records: Sequence[RunRecord], *, title: str) -> Table:
    """A sync's runs, newest first: when, how it started, status, counts, duration."""
    table = Table(title=title, title_justify="left")
    for heading, justify in (
        ("Run", "left"),
        ("Queued", "left"),
        ("Trigger", "left"),
        ("Status", "left"),
        ("Added", "right"),
        ("Changed", "right"),
        ("Removed", "right"),
        ("Rejected", "right"),
        ("Time", "right"),
    ):
        table.add_column(heading, justify=justify)  # type: ignore[arg-type]
    for record in records:
        c = record.counts
        status = record.status.value + (" (dry)" if record.dry_run else "")
        table.add_row(
            record.id[:12],
            f"{record.queued_at:%Y-%m-%d %H:%M:%S}",
            record.trigger.value,
            Text(status, style=_STATUS_STYLES.get(record.status, "")),
            count(c.added),
            count(c.changed),
            count(c.removed),
            count(c.rejected),
            f"{record.seconds:.1f} s" if record.seconds is not None else "–",
        )
    return table
