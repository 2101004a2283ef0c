/** The input for an operator's value: one per kind of value (see operators.valueEditorFor). */
import { Autocomplete, Group, NumberInput, SegmentedControl, Select, TagsInput, Text, TextInput } from "@mantine/core";
import { useState } from "react";

import { formatCount } from "../../components/format";
import { useSuggestions } from "../context";
import { PERIODS, UNITS, type Duration, type Operator } from "../model";
import { PERIOD_LABELS, valueEditorFor } from "../operators";

interface Props {
  operator: Operator;
  type: string | null | undefined;
  value: unknown;
  onChange: (value: unknown) => void;
  /** Where suggestions come from: the column's model and name. */
  model?: string | null;
  column?: string | null;
  error?: string | null;
}

const asText = (v: unknown): string => (v === null || v === undefined ? "" : String(v));
const asNumber = (v: unknown): number | string => (typeof v === "number" ? v : v == null ? "" : String(v));
const toNumber = (v: string | number): number | null => (v === "" ? null : typeof v === "number" ? v : Number(v));

export function ValueEditor(props: Props) {
  const kind = valueEditorFor(props.operator, props.type);
  const common = { "aria-label": "Value", "data-testid": "condition-value", error: props.error ?? undefined, size: "sm" as const };

  switch (kind) {
    case "none":
      return null;
    case "text":
      return <TextInput {...common} placeholder="text" value={asText(props.value)} onChange={(e) => props.onChange(e.currentTarget.value)} w={220} />;
    case "suggest":
      return <SuggestInput {...props} />;
    case "number":
      return (
        <NumberInput {...common} placeholder="number" value={asNumber(props.value)} onChange={(v) => props.onChange(toNumber(v))} w={160} />
      );
    case "boolean":
      return (
        <SegmentedControl
          data-testid="condition-value"
          aria-label="Value"
          size="xs"
          data={[{ value: "true", label: "true" }, { value: "false", label: "false" }]}
          value={props.value === false ? "false" : "true"}
          onChange={(v) => props.onChange(v === "true")}
        />
      );
    case "date":
    case "datetime":
      return (
        <TextInput
          {...common}
          type={kind === "date" ? "date" : "datetime-local"}
          value={asText(props.value)}
          onChange={(e) => props.onChange(e.currentTarget.value || null)}
          w={kind === "date" ? 170 : 220}
        />
      );
    case "tags":
      return <SuggestTags {...props} />;
    case "number-tags":
      return (
        <TagsInput
          {...common}
          placeholder="type a number, press Enter"
          value={Array.isArray(props.value) ? props.value.map(String) : []}
          onChange={(values) => props.onChange(values.map(Number).filter((n) => !Number.isNaN(n)))}
          w={280}
        />
      );
    case "number-range":
    case "date-range":
    case "datetime-range":
      return <RangeInput {...props} kind={kind} />;
    case "duration":
      return <DurationInput value={props.value as Duration | null} onChange={props.onChange} error={props.error} />;
    case "period":
      return (
        <Select
          {...common}
          data={PERIODS.map((p) => ({ value: p, label: PERIOD_LABELS[p] }))}
          value={asText(props.value) || null}
          onChange={(v) => props.onChange(v)}
          allowDeselect={false}
          w={170}
        />
      );
    case "days":
      return (
        <Group gap={6} wrap="nowrap">
          <NumberInput {...common} min={0} max={366} value={asNumber(props.value)} onChange={(v) => props.onChange(toNumber(v))} w={100} />
          <Text size="sm">days</Text>
        </Group>
      );
  }
}

function SuggestInput(props: Props) {
  const [typed, setTyped] = useState(asText(props.value));
  const suggestions = useSuggestions(props.model, props.column, typed);
  const data = (suggestions.data ?? []).map((s) => ({ value: String(s.value), label: String(s.value), count: s.count }));
  const counts = new Map(data.map((d) => [d.value, d.count]));
  return (
    <Autocomplete
      aria-label="Value"
      data-testid="condition-value"
      placeholder="value"
      size="sm"
      w={240}
      value={asText(props.value)}
      error={props.error ?? undefined}
      data={unique(data.map((d) => d.value))}
      onChange={(v) => {
        setTyped(v);
        props.onChange(v === "" ? null : v);
      }}
      filter={({ options }) => options}
      renderOption={({ option }) => (
        <Group justify="space-between" w="100%" wrap="nowrap">
          <Text size="sm">{option.value}</Text>
          <Text size="xs" c="dimmed">
            {formatCount(counts.get(option.value))}
          </Text>
        </Group>
      )}
      limit={20}
    />
  );
}

function SuggestTags(props: Props) {
  const [typed, setTyped] = useState("");
  const suggestions = useSuggestions(props.model, props.column, typed);
  const values = Array.isArray(props.value) ? props.value.map(String) : [];
  return (
    <TagsInput
      aria-label="Values"
      data-testid="condition-value"
      placeholder={values.length ? "" : "type, press Enter"}
      size="sm"
      miw={240}
      maw={420}
      value={values}
      error={props.error ?? undefined}
      searchValue={typed}
      onSearchChange={setTyped}
      data={unique((suggestions.data ?? []).map((s) => String(s.value))).filter((v) => !values.includes(v))}
      onChange={(v) => props.onChange(v)}
      splitChars={[","]}
      clearable
    />
  );
}

function RangeInput(props: Props & { kind: "number-range" | "date-range" | "datetime-range" }) {
  const pair = Array.isArray(props.value) ? props.value : [null, null];
  const set = (index: 0 | 1, v: unknown) => {
    const next = [pair[0] ?? null, pair[1] ?? null];
    next[index] = v;
    props.onChange(next);
  };
  const input = (index: 0 | 1, label: string) =>
    props.kind === "number-range" ? (
      <NumberInput aria-label={label} data-testid={`condition-value-${index === 0 ? "low" : "high"}`} size="sm" w={130}
        value={asNumber(pair[index])} onChange={(v) => set(index, toNumber(v))} />
    ) : (
      <TextInput aria-label={label} data-testid={`condition-value-${index === 0 ? "low" : "high"}`} size="sm"
        type={props.kind === "date-range" ? "date" : "datetime-local"} value={asText(pair[index])}
        onChange={(e) => set(index, e.currentTarget.value || null)} />
    );
  return (
    <Group gap={6} wrap="nowrap">
      {input(0, "From")}
      <Text size="sm">and</Text>
      {input(1, "To")}
      {props.error && <Text size="xs" c="red">{props.error}</Text>}
    </Group>
  );
}

export function DurationInput(props: { value: Duration | null; onChange: (d: Duration) => void; error?: string | null; testId?: string }) {
  const value = props.value ?? { amount: 30, unit: "days" as const };
  return (
    <Group gap={6} wrap="nowrap">
      <NumberInput
        aria-label="Amount"
        data-testid={props.testId ?? "condition-value"}
        min={0}
        max={100000}
        allowDecimal={false}
        size="sm"
        w={90}
        value={value.amount}
        error={props.error ?? undefined}
        onChange={(v) => props.onChange({ ...value, amount: typeof v === "number" ? v : Number(v) || 0 })}
      />
      <Select
        aria-label="Unit"
        size="sm"
        w={110}
        data={[...UNITS]}
        value={value.unit}
        allowDeselect={false}
        onChange={(u) => u && props.onChange({ ...value, unit: u as Duration["unit"] })}
      />
    </Group>
  );
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
