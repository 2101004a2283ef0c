/** "When": a time window on rows with a time column (relations, events, sequences). */
import { Group, Select, Text, TextInput } from "@mantine/core";

import { PERIODS, type Window, type WindowKind } from "../model";
import { PERIOD_LABELS } from "../operators";
import { DurationInput } from "./ValueEditor";

const KINDS: { value: "any" | WindowKind; label: string }[] = [
  { value: "any", label: "at any time" },
  { value: "last", label: "in the last" },
  { value: "next", label: "in the next" },
  { value: "between", label: "between" },
  { value: "since", label: "since" },
  { value: "before", label: "before" },
  { value: "period", label: "in" },
];

export function WindowEditor(props: { value: Window | null; onChange: (w: Window | null) => void; label?: string }) {
  const w = props.value;
  const setKind = (kind: string | null) => {
    if (!kind || kind === "any") return props.onChange(null);
    const k = kind as WindowKind;
    props.onChange({
      kind: k,
      duration: k === "last" || k === "next" ? (w?.duration ?? { amount: 30, unit: "days" }) : null,
      start: k === "between" || k === "since" ? (w?.start ?? null) : null,
      end: k === "between" || k === "before" ? (w?.end ?? null) : null,
      period: k === "period" ? (w?.period ?? "this_month") : null,
    });
  };
  const date = (key: "start" | "end", label: string) => (
    <TextInput
      type="date"
      aria-label={label}
      size="sm"
      w={160}
      value={w?.[key] ?? ""}
      onChange={(e) => w && props.onChange({ ...w, [key]: e.currentTarget.value || null })}
      error={w && !w[key] ? "pick a date" : undefined}
    />
  );
  return (
    <Group gap={6} wrap="wrap" data-testid="window-editor">
      {props.label && (
        <Text size="sm" c="dimmed">
          {props.label}
        </Text>
      )}
      <Select
        aria-label="Time window"
        data-testid="window-kind"
        size="sm"
        w={140}
        data={KINDS}
        value={w?.kind ?? "any"}
        onChange={setKind}
        allowDeselect={false}
      />
      {w && (w.kind === "last" || w.kind === "next") && (
        <DurationInput testId="window-duration" value={w.duration ?? null} onChange={(d) => props.onChange({ ...w, duration: d })} />
      )}
      {w?.kind === "between" && (
        <>
          {date("start", "From")}
          <Text size="sm">and</Text>
          {date("end", "To")}
        </>
      )}
      {w?.kind === "since" && date("start", "Since")}
      {w?.kind === "before" && date("end", "Before")}
      {w?.kind === "period" && (
        <Select
          aria-label="Period"
          size="sm"
          w={160}
          data={PERIODS.map((p) => ({ value: p, label: PERIOD_LABELS[p] }))}
          value={w.period ?? "this_month"}
          onChange={(p) => p && props.onChange({ ...w, period: p as Window["period"] })}
          allowDeselect={false}
        />
      )}
    </Group>
  );
}
