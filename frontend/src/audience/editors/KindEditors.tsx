/** One editor per kind of condition; each reads the schema through BuilderContext. */
import { ActionIcon, Autocomplete, Box, Button, Group, Select, Stack, Switch, Text, Tooltip } from "@mantine/core";
import { IconFilter, IconPlus, IconTrash } from "@tabler/icons-react";
import { useState } from "react";

import type { ModelDetail } from "../../api/types";
import { formatCount } from "../../components/format";
import {
  columnLabel,
  relationTarget,
  traitType,
  useBuilder,
  useModel,
  useSuggestions,
  visibleColumns,
} from "../context";
import {
  type Aggregate,
  type AggregateFunction,
  type AudienceNode,
  type EventNode,
  type GroupNode,
  type Operator,
  type PropertyNode,
  type RelationNode,
  type SequenceNode,
  type SequenceStepNode,
  type TraitNode,
  newGroup,
  newStep,
} from "../model";
import { carryValue, defaultValue, measureOperators, operatorLabel, operatorsFor } from "../operators";
import { useTree } from "./actions";
import { GroupEditor } from "./ConditionTree";
import { DurationInput, ValueEditor } from "./ValueEditor";
import { WindowEditor } from "./WindowEditor";

function OperatorSelect(props: { operators: Operator[]; type: string | null | undefined; value: Operator | null; onChange: (o: Operator) => void }) {
  return (
    <Select
      aria-label="Operator"
      data-testid="condition-operator"
      size="sm"
      w={200}
      data={props.operators.map((o) => ({ value: o, label: operatorLabel(o, props.type) }))}
      value={props.value}
      onChange={(v) => v && props.onChange(v as Operator)}
      allowDeselect={false}
      comboboxProps={{ withinPortal: true }}
    />
  );
}

/** A comparison: operator, then the value editor for it. */
function Comparison(props: {
  id: string;
  operator: Operator;
  value: unknown;
  type: string | null | undefined;
  model?: string | null;
  column?: string | null;
  operators?: Operator[];
  onChange: (operator: Operator, value: unknown) => void;
}) {
  const tree = useTree();
  const problem = tree.problems.get(props.id);
  const operators = props.operators ?? operatorsFor(props.type);
  return (
    <>
      <OperatorSelect
        operators={operators}
        type={props.type}
        value={props.operator}
        onChange={(o) => props.onChange(o, carryValue(props.operator, o, props.value, props.type))}
      />
      <ValueEditor
        operator={props.operator}
        type={props.type}
        value={props.value}
        model={props.model}
        column={props.column}
        onChange={(v) => props.onChange(props.operator, v)}
        error={problem && problem !== "pick a column" && problem !== "pick a trait" ? " " : null}
      />
    </>
  );
}

function ColumnSelect(props: { model: ModelDetail | undefined; loading: boolean; value: string; onChange: (column: string, type: string | null) => void; testId?: string; label?: string; filter?: (type: string | null) => boolean }) {
  const columns = visibleColumns(props.model).filter((c) => !props.filter || props.filter(c.type));
  return (
    <Select
      aria-label={props.label ?? "Column"}
      data-testid={props.testId ?? "condition-column"}
      placeholder={props.loading ? "loading columns…" : "pick a column"}
      size="sm"
      w={220}
      searchable
      data={columns.map((c) => ({ value: c.name, label: columnLabel(c) }))}
      value={props.value || null}
      onChange={(v) => v && props.onChange(v, columns.find((c) => c.name === v)?.type ?? null)}
      nothingFoundMessage="No such column"
      allowDeselect={false}
    />
  );
}

export function PropertyEditor(props: { node: PropertyNode; model: string }) {
  const tree = useTree();
  const model = useModel(props.model);
  const column = model.data?.columns.find((c) => c.name === props.node.column);
  const type = column?.type ?? null;
  const set = (change: Partial<PropertyNode>) => tree.update<PropertyNode>(props.node.id, (n) => ({ ...n, ...change }));

  return (
    <Group gap={6} wrap="wrap">
      <ColumnSelect
        model={model.data}
        loading={model.isPending}
        value={props.node.column}
        onChange={(name, newType) => {
          const operators = operatorsFor(newType);
          const operator = operators.includes(props.node.operator) ? props.node.operator : operators[0];
          set({ column: name, operator, value: newType === type ? props.node.value : defaultValue(operator, newType) });
        }}
      />
      {props.node.column && (
        <Comparison
          id={props.node.id}
          operator={props.node.operator}
          value={props.node.value}
          type={type}
          model={props.model}
          column={props.node.column}
          onChange={(operator, value) => set({ operator, value })}
        />
      )}
      {column?.settings?.description && (
        <Text size="xs" c="dimmed" w="100%">
          {column.settings.description}
        </Text>
      )}
    </Group>
  );
}

export function TraitEditor(props: { node: TraitNode }) {
  const tree = useTree();
  const builder = useBuilder();
  const trait = builder.traits.find((t) => t.name === props.node.trait);
  // Traits that pick a column's value (min, max, first, last, most frequent) take its type.
  const target = trait?.relation ? relationTarget(builder.relationships, builder.parent, trait.relation) : null;
  const model = useModel(target);
  const columnType = model.data?.columns.find((c) => c.name === trait?.column)?.type;
  const type = traitType(trait, columnType);
  const set = (change: Partial<TraitNode>) => tree.update<TraitNode>(props.node.id, (n) => ({ ...n, ...change }));

  return (
    <Group gap={6} wrap="wrap">
      <Select
        aria-label="Trait"
        data-testid="condition-trait"
        placeholder={builder.traits.length ? "pick a trait" : "the schema has no traits"}
        size="sm"
        w={220}
        searchable
        data={builder.traits.map((t) => ({ value: t.name, label: t.name }))}
        value={props.node.trait || null}
        onChange={(v) => {
          if (!v) return;
          const t = builder.traits.find((x) => x.name === v);
          const operators = operatorsFor(traitType(t, null));
          set({ trait: v, operator: operators[0], value: defaultValue(operators[0], traitType(t, null)) });
        }}
        allowDeselect={false}
      />
      {props.node.trait && (
        <Comparison
          id={props.node.id}
          operator={props.node.operator}
          value={props.node.value}
          type={type}
          onChange={(operator, value) => set({ operator, value })}
        />
      )}
      {trait?.description && (
        <Text size="xs" c="dimmed" w="100%">
          {trait.description}
        </Text>
      )}
    </Group>
  );
}

export function AudienceEditor(props: { node: AudienceNode }) {
  const tree = useTree();
  const builder = useBuilder();
  const others = builder.audiences.filter((a) => a !== builder.self);
  const set = (change: Partial<AudienceNode>) => tree.update<AudienceNode>(props.node.id, (n) => ({ ...n, ...change }));
  return (
    <Group gap={6}>
      <Select
        aria-label="Membership"
        size="sm"
        w={190}
        data={[
          { value: "yes", label: "is a member of" },
          { value: "no", label: "is not a member of" },
        ]}
        value={props.node.member ? "yes" : "no"}
        onChange={(v) => set({ member: v === "yes" })}
        allowDeselect={false}
      />
      <Select
        aria-label="Audience"
        data-testid="condition-audience"
        placeholder={others.length ? "pick an audience" : "no other audiences yet"}
        size="sm"
        w={260}
        searchable
        data={others}
        value={props.node.audience || null}
        onChange={(v) => v && set({ audience: v })}
        allowDeselect={false}
      />
    </Group>
  );
}

// ---- relations and events: has / count / aggregate, where, within ------------------------

type Measure = "has" | "none" | "count" | "aggregate";

function measureOf(node: RelationNode | EventNode): Measure {
  const absent = node.kind === "relation" ? !node.has : !node.performed;
  if (absent) return "none";
  if (!node.operator) return "has";
  return !node.aggregate || node.aggregate.function === "count" ? "count" : "aggregate";
}

interface RowsChange {
  has?: boolean;
  performed?: boolean;
  aggregate?: Aggregate | null;
  operator?: Operator | null;
  value?: unknown;
}

function measureChange(node: RelationNode | EventNode, measure: Measure): RowsChange {
  const presence = node.kind === "relation" ? "has" : "performed";
  switch (measure) {
    case "has":
      return { [presence]: true, aggregate: null, operator: null, value: null };
    case "none":
      return { [presence]: false, aggregate: null, operator: null, value: null };
    case "count":
      return { [presence]: true, aggregate: { function: "count" }, operator: "at_least", value: 1 };
    case "aggregate":
      return { [presence]: true, aggregate: { function: "sum", column: null }, operator: "at_least", value: null };
  }
}

const AGGREGATE_LABELS: Record<Exclude<AggregateFunction, "count">, string> = {
  sum: "total of",
  average: "average of",
  min: "smallest",
  max: "largest",
  count_distinct: "number of different",
};

function MeasureEditor(props: { node: RelationNode | EventNode; target: ModelDetail | undefined; labels: Record<Measure, string> }) {
  const tree = useTree();
  const { node } = props;
  const measure = measureOf(node);
  const set = (change: RowsChange) =>
    tree.update<RelationNode | EventNode>(node.id, (n) => ({ ...n, ...change }) as RelationNode | EventNode);
  const column = props.target?.columns.find((c) => c.name === node.aggregate?.column);
  const fn = node.aggregate?.function ?? "count";
  const valueType = measure === "count" || fn === "count_distinct" ? "integer" : (fn === "min" || fn === "max") && column?.type ? column.type : "decimal";
  const numericOnly = fn === "sum" || fn === "average";

  return (
    <Group gap={6} wrap="wrap">
      <Select
        aria-label="How to measure"
        data-testid="condition-measure"
        size="sm"
        w={200}
        data={(Object.keys(props.labels) as Measure[]).map((m) => ({ value: m, label: props.labels[m] }))}
        value={measure}
        onChange={(v) => v && set(measureChange(node, v as Measure))}
        allowDeselect={false}
      />
      {measure === "aggregate" && (
        <>
          <Select
            aria-label="Aggregate"
            data-testid="condition-aggregate"
            size="sm"
            w={190}
            data={Object.entries(AGGREGATE_LABELS).map(([value, label]) => ({ value, label }))}
            value={fn}
            onChange={(v) => v && set({ aggregate: { function: v as AggregateFunction, column: node.aggregate?.column ?? null } })}
            allowDeselect={false}
          />
          <ColumnSelect
            testId="condition-aggregate-column"
            label="Aggregated column"
            model={props.target}
            loading={!props.target}
            value={node.aggregate?.column ?? ""}
            filter={numericOnly ? (t) => t === "integer" || t === "decimal" || t === "float" : undefined}
            onChange={(c) => set({ aggregate: { function: fn, column: c } })}
          />
        </>
      )}
      {(measure === "count" || measure === "aggregate") && node.operator && (
        <Comparison
          id={node.id}
          operator={node.operator}
          value={node.value}
          type={valueType}
          operators={valueType === "date" || valueType === "timestamp" ? operatorsFor(valueType).filter((o) => o !== "is_null" && o !== "is_not_null") : measureOperators()}
          onChange={(operator, value) => set({ operator, value })}
        />
      )}
    </Group>
  );
}

/** "where …": filters on the related or event rows, as a nested group. */
function WhereEditor(props: { ownerId: string; where: GroupNode | null; model: string | null; depth: number; what: string; stepOf?: string }) {
  const tree = useTree();
  const setWhere = (where: GroupNode | null) =>
    tree.update<RelationNode | EventNode | SequenceStepNode>(props.ownerId, (n) => ({ ...n, where }) as RelationNode);
  if (!props.model) return null;
  if (!props.where) {
    return tree.readOnly ? null : (
      <Button
        variant="subtle"
        size="compact-xs"
        leftSection={<IconFilter size={13} />}
        onClick={() => setWhere(newGroup())}
        w="fit-content"
        data-testid="add-where"
      >
        Filter {props.what}
      </Button>
    );
  }
  return (
    <Box pl="md" mt={4}>
      <GroupEditor
        group={props.where}
        model={props.model}
        depth={props.depth + 1}
        rows
        title={`Only ${props.what} that match`}
        onRemove={() => setWhere(null)}
      />
    </Box>
  );
}

export function RelationEditor(props: { node: RelationNode; model: string; depth: number }) {
  const tree = useTree();
  const builder = useBuilder();
  const from = useModel(props.model);
  const targetName = props.node.relation ? relationTarget(builder.relationships, props.model, props.node.relation) : null;
  const target = useModel(targetName);
  const relations = from.data?.relations ?? [];
  const set = (change: Partial<RelationNode>) => tree.update<RelationNode>(props.node.id, (n) => ({ ...n, ...change }));
  const hasTime = Boolean(target.data?.time_column);

  return (
    <Stack gap={6}>
      <Group gap={6} wrap="wrap">
        <Select
          aria-label="Relation"
          data-testid="condition-relation"
          placeholder={from.isPending ? "loading…" : relations.length ? "pick related rows" : "no relations from here"}
          size="sm"
          w={220}
          searchable
          data={relations}
          value={props.node.relation || null}
          onChange={(v) => v && set({ relation: v, where: null, aggregate: props.node.aggregate?.function === "count" ? props.node.aggregate : null, ...(props.node.aggregate?.function !== "count" && props.node.operator ? { operator: null, value: null } : {}) })}
          allowDeselect={false}
        />
        {props.node.relation && (
          <MeasureEditor
            node={props.node}
            target={target.data}
            labels={{ has: "has at least one", none: "has none", count: "number of rows", aggregate: "a total or average" }}
          />
        )}
      </Group>
      {props.node.relation && (
        <>
          {hasTime ? (
            <WindowEditor label={`${props.node.relation} dated`} value={props.node.within} onChange={(within) => set({ within })} />
          ) : (
            props.node.within && <WindowEditor value={props.node.within} onChange={(within) => set({ within })} />
          )}
          <WhereEditor ownerId={props.node.id} where={props.node.where} model={targetName} depth={props.depth} what={props.node.relation} />
        </>
      )}
    </Stack>
  );
}

/** The event models, and the one an event condition uses. */
function useEventModel(model: string | null) {
  const builder = useBuilder();
  const eventModels = builder.models.filter((m) => m.kind === "event");
  const name = model ?? (eventModels.length === 1 ? eventModels[0].name : (eventModels[0]?.name ?? null));
  const detail = useModel(name);
  return { eventModels, name, detail: detail.data, typeColumn: detail.data?.event?.type ?? null };
}

function EventTypeInput(props: { model: string | null; typeColumn: string | null; value: string | null; onChange: (v: string | null) => void; testId?: string }) {
  const [typed, setTyped] = useState(props.value ?? "");
  const suggestions = useSuggestions(props.model, props.typeColumn, typed, Boolean(props.typeColumn));
  const data = suggestions.data ?? [];
  const counts = new Map(data.map((s) => [String(s.value), s.count]));
  return (
    <Autocomplete
      aria-label="Event"
      data-testid={props.testId ?? "condition-event"}
      placeholder={props.typeColumn ? "pick or type an event" : "any event of the model"}
      size="sm"
      w={230}
      value={props.value ?? ""}
      data={[...new Set(data.map((s) => String(s.value)))]}
      filter={({ options }) => options}
      onChange={(v) => {
        setTyped(v);
        props.onChange(v || null);
      }}
      renderOption={({ option }) => (
        <Group justify="space-between" w="100%" wrap="nowrap">
          <Text size="sm">{option.value}</Text>
          <Text size="xs" c="dimmed">
            {formatCount(counts.get(option.value))}
          </Text>
        </Group>
      )}
      disabled={!props.typeColumn}
    />
  );
}

function EventModelSelect(props: { eventModels: { name: string }[]; value: string | null; onChange: (v: string) => void }) {
  if (props.eventModels.length < 2) return null;
  return (
    <Select
      aria-label="Event model"
      size="sm"
      w={150}
      data={props.eventModels.map((m) => m.name)}
      value={props.value}
      onChange={(v) => v && props.onChange(v)}
      allowDeselect={false}
    />
  );
}

export function EventEditor(props: { node: EventNode; depth: number }) {
  const tree = useTree();
  const events = useEventModel(props.node.model);
  const set = (change: Partial<EventNode>) => tree.update<EventNode>(props.node.id, (n) => ({ ...n, ...change }));

  if (events.eventModels.length === 0) {
    return (
      <Text size="sm" c="dimmed">
        The schema has no event model. Mark a model as events (a timestamp and a type column) under Schema.
      </Text>
    );
  }
  return (
    <Stack gap={6}>
      <Group gap={6} wrap="wrap">
        <EventModelSelect eventModels={events.eventModels} value={events.name} onChange={(model) => set({ model, event: null })} />
        <EventTypeInput model={events.name} typeColumn={events.typeColumn} value={props.node.event} onChange={(event) => set({ event })} />
        <MeasureEditor
          node={props.node}
          target={events.detail}
          labels={{ has: "performed", none: "never performed", count: "number of times", aggregate: "a total or average" }}
        />
      </Group>
      <WindowEditor value={props.node.within} onChange={(within) => set({ within })} />
      <WhereEditor ownerId={props.node.id} where={props.node.where} model={events.name} depth={props.depth} what="by event properties" />
    </Stack>
  );
}

export function SequenceEditor(props: { node: SequenceNode; depth: number }) {
  const tree = useTree();
  const events = useEventModel(props.node.model);
  const set = (change: Partial<SequenceNode>) => tree.update<SequenceNode>(props.node.id, (n) => ({ ...n, ...change }));
  const steps = props.node.steps;
  const setStep = (id: string, change: Partial<SequenceStepNode>) =>
    set({ steps: steps.map((s) => (s.id === id ? { ...s, ...change } : s)) });

  return (
    <Stack gap={6}>
      <EventModelSelect eventModels={events.eventModels} value={events.name} onChange={(model) => set({ model })} />
      {steps.map((step, index) => {
        const last = index === steps.length - 1;
        const problem = tree.problems.get(step.id);
        return (
          <Box key={step.id} data-testid="sequence-step">
            <Group gap={6} wrap="wrap">
              <Text size="sm" fw={600} w={64}>
                {index === 0 ? "First" : "Then"}
              </Text>
              {index > 0 && last && (
                <Switch
                  size="xs"
                  label="did not"
                  checked={!step.performed}
                  onChange={(e) => setStep(step.id, { performed: !e.currentTarget.checked, within: step.within ?? (e.currentTarget.checked ? { amount: 1, unit: "days" } : null) })}
                />
              )}
              <EventTypeInput testId="sequence-step-event" model={events.name} typeColumn={events.typeColumn} value={step.event} onChange={(event) => setStep(step.id, { event })} />
              {index > 0 && (
                <>
                  <Switch
                    size="xs"
                    label="within"
                    checked={step.within !== null}
                    disabled={!step.performed}
                    onChange={(e) => setStep(step.id, { within: e.currentTarget.checked ? { amount: 1, unit: "days" } : null })}
                  />
                  {step.within && <DurationInput testId="sequence-step-within" value={step.within} onChange={(within) => setStep(step.id, { within })} />}
                  {step.within && (
                    <Text size="sm" c="dimmed">
                      of the previous step
                    </Text>
                  )}
                </>
              )}
              {steps.length > 2 && !tree.readOnly && (
                <Tooltip label="Remove step">
                  <ActionIcon variant="subtle" color="gray" aria-label={`Remove step ${index + 1}`} onClick={() => set({ steps: steps.filter((s) => s.id !== step.id) })}>
                    <IconTrash size={14} />
                  </ActionIcon>
                </Tooltip>
              )}
              {problem && (
                <Text size="xs" c="orange">
                  {problem}
                </Text>
              )}
            </Group>
            <Box pl={70}>
              <WhereEditor ownerId={step.id} where={step.where} model={events.name} depth={props.depth} what="by event properties" />
            </Box>
          </Box>
        );
      })}
      {!tree.readOnly && steps.length < 8 && (
        <Group>
          <Button
            variant="subtle"
            size="compact-xs"
            leftSection={<IconPlus size={13} />}
            data-testid="add-step"
            onClick={() => {
              // Only the last step may be "did not": a new step after it makes it a plain step again.
              const fixed = steps.map((s) => ({ ...s, performed: true }));
              set({ steps: [...fixed, newStep()] });
            }}
          >
            Add step
          </Button>
        </Group>
      )}
      <WindowEditor label="first step" value={props.node.within} onChange={(within) => set({ within })} />
    </Stack>
  );
}


