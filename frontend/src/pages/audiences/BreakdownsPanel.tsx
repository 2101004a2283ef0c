import { BarChart } from "@mantine/charts";
import { Button, Group, MultiSelect, SimpleGrid, Paper, Text } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { useEffect, useState } from "react";

import { api } from "../../api/endpoints";
import type { Breakdown } from "../../api/types";
import { useBuilder, useModel, visibleColumns } from "../../audience/context";
import { EmptyState, ErrorState } from "../../components/common";
import { formatCount, formatValue } from "../../components/format";

/** Bar charts of an audience's members by columns and traits. */
export function BreakdownsPanel(props: { name: string; parent: string; savedJson: string | null }) {
  const builder = useBuilder();
  const parent = useModel(props.parent);
  const options = [
    ...visibleColumns(parent.data)
      .filter((c) => c.settings?.privacy !== "pii" && c.settings?.privacy !== "sensitive")
      .map((c) => ({ value: c.name, label: c.settings?.alias ?? c.name, group: "Columns" })),
    ...builder.traits.map((t) => ({ value: t.name, label: t.name, group: "Traits" })),
  ];
  const grouped = ["Columns", "Traits"].map((group) => ({
    group,
    items: options.filter((o) => o.group === group).map(({ value, label }) => ({ value, label })),
  })).filter((g) => g.items.length);
  const [chosen, setChosen] = useState<string[]>([]);
  const preview = useMutation({
    mutationFn: (breakdowns: string[]) => api.audiences.preview(props.name, { breakdowns }),
    meta: { quiet: true },
  });

  // Start with a few useful dimensions: the first string-ish columns and traits.
  useEffect(() => {
    if (chosen.length || !parent.data) return;
    // Not the primary key or other identifiers: one bar per customer tells nothing.
    const telling = options.filter((o) => o.group === "Columns" && o.value !== parent.data.primary_key && !/(^id|_id)$/.test(o.value));
    const initial = telling.slice(0, 2).map((o) => o.value).concat(builder.traits.slice(0, 1).map((t) => t.name));
    setChosen([...new Set(initial)]);
    if (initial.length) preview.mutate([...new Set(initial)]);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [parent.data, props.savedJson]);

  return (
    <>
      <Group align="flex-end" mb="md">
        <MultiSelect
          label="Break down by"
          description="Up to 10 columns or traits"
          data={grouped}
          value={chosen}
          onChange={setChosen}
          maxValues={10}
          searchable
          w={480}
          data-testid="breakdown-select"
        />
        <Button onClick={() => preview.mutate(chosen)} loading={preview.isPending} disabled={!chosen.length} data-testid="run-breakdowns">
          Show
        </Button>
      </Group>
      {preview.error && <ErrorState error={preview.error} />}
      {preview.data && preview.data.breakdowns.length === 0 && (
        <EmptyState title="Nothing to break down" description="Pick columns or traits above to see how members spread across their values." />
      )}
      <SimpleGrid cols={{ base: 1, lg: 2 }} spacing="md">
        {(preview.data?.breakdowns ?? []).map((b) => (
          <BreakdownChart key={b.name} breakdown={b} />
        ))}
      </SimpleGrid>
    </>
  );
}

export function BreakdownChart(props: { breakdown: Breakdown }) {
  const b = props.breakdown;
  const data =
    b.kind === "top_values"
      ? [
          ...(b.values ?? []).map((v) => ({ label: formatValue(v.value), members: v.count })),
          ...(b.other ? [{ label: "other values", members: b.other }] : []),
        ]
      : (b.bins ?? []).map((bin) => ({ label: binLabel(bin.low, bin.high, b.unit), members: bin.count }));
  if (b.nulls) data.push({ label: "empty", members: b.nulls });
  return (
    <Paper withBorder p="sm" data-testid="breakdown-chart" data-name={b.name}>
      <Group justify="space-between" mb="xs">
        <Text fw={600} size="sm">
          {b.name}
        </Text>
        <Text size="xs" c="dimmed">
          {b.kind === "histogram" ? "histogram" : "most common values"} · {b.source}
        </Text>
      </Group>
      {data.length === 0 ? (
        <Text size="sm" c="dimmed">
          No members, so no values.
        </Text>
      ) : (
        <BarChart
          h={Math.max(160, Math.min(data.length, 12) * (b.kind === "top_values" ? 28 : 20))}
          data={data.slice(0, 25)}
          dataKey="label"
          orientation={b.kind === "top_values" ? "vertical" : "horizontal"}
          yAxisProps={b.kind === "top_values" ? { width: 120 } : undefined}
          series={[{ name: "members", color: "indigo.6" }]}
          valueFormatter={(v) => formatCount(v)}
          gridAxis={b.kind === "top_values" ? "x" : "y"}
        />
      )}
    </Paper>
  );
}

function binLabel(low: unknown, high: unknown, unit?: string | null): string {
  const text = (v: unknown) => (typeof v === "string" && /^\d{4}-\d\d-\d\d/.test(v) ? v.slice(0, unit === "month" ? 7 : 10) : formatValue(v));
  return low === high ? text(low) : `${text(low)}–${text(high)}`;
}
