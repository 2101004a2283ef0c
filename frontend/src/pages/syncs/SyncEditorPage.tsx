/** Create or change a sync: what to send, where, how fields map, and when it runs. */
import {
  ActionIcon,
  Alert,
  Autocomplete,
  Badge,
  Button,
  Group,
  NumberInput,
  Paper,
  SegmentedControl,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
  Tooltip,
} from "@mantine/core";
import { IconLock, IconPlus, IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { api } from "../../api/endpoints";
import { errorText, keys, notifyDone } from "../../api/queries";
import type { DestinationType, MappedValue, SyncDefinition, SyncView } from "../../api/types";
import { columnLabel, useModel, visibleColumns } from "../../audience/context";
import { ErrorState, PageHeader, TableSkeleton } from "../../components/common";
import { type ScheduleState, readSchedule, writeSchedule } from "./schedule";

type ValueKind = "column" | "constant" | "template";

interface MappingRow {
  id: number;
  field: string;
  kind: ValueKind;
  value: string;
}

let rowIds = 0;
const row = (field = "", kind: ValueKind = "column", value = ""): MappingRow => ({ id: ++rowIds, field, kind, value });

function readMapping(mapping: Record<string, MappedValue>): MappingRow[] {
  return Object.entries(mapping).map(([field, v]) =>
    typeof v === "string"
      ? row(field, "column", v)
      : "template" in v
        ? row(field, "template", v.template)
        : row(field, "constant", v.constant == null ? "" : String(v.constant)),
  );
}

export function writeMapping(rows: MappingRow[]): Record<string, MappedValue> {
  const mapping: Record<string, MappedValue> = {};
  for (const r of rows) {
    if (!r.field.trim()) continue;
    mapping[r.field.trim()] =
      r.kind === "column" ? r.value : r.kind === "template" ? { template: r.value } : { constant: r.value };
  }
  return mapping;
}

export function SyncEditorPage() {
  const { name } = useParams();
  const existing = useQuery({ queryKey: keys.sync(name ?? ""), queryFn: () => api.syncs.get(name!), enabled: Boolean(name), staleTime: 0 });
  const types = useQuery({ queryKey: keys.destinationTypes, queryFn: api.destinations.types, staleTime: Infinity });
  const destinations = useQuery({ queryKey: keys.destinations, queryFn: api.destinations.list });
  const audiences = useQuery({ queryKey: keys.audiences, queryFn: api.audiences.list });
  const models = useQuery({ queryKey: keys.models, queryFn: api.schema.models });
  const syncs = useQuery({ queryKey: keys.syncs, queryFn: api.syncs.list });

  const failed = existing.error ?? types.error ?? destinations.error ?? audiences.error ?? models.error;
  if (failed) return <ErrorState error={failed} />;
  if ((name && !existing.data) || !types.data || !destinations.data || !audiences.data || !models.data) {
    return <TableSkeleton rows={8} />;
  }
  return (
    <SyncForm
      key={existing.data?.etag ?? "new"}
      existing={existing.data ?? null}
      types={types.data}
      destinations={destinations.data.map((d) => ({ name: d.name, type: d.type }))}
      audiences={audiences.data.map((a) => a.name)}
      parent={models.data.find((m) => m.kind === "parent")?.name ?? ""}
      models={models.data.map((m) => m.name)}
      otherSyncs={(syncs.data ?? []).map((s) => s.name).filter((s) => s !== name)}
    />
  );
}

function SyncForm(props: {
  existing: { data: SyncView; etag: string | null } | null;
  types: DestinationType[];
  destinations: { name: string; type: string }[];
  audiences: string[];
  parent: string;
  models: string[];
  otherSyncs: string[];
}) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const initial: SyncDefinition | null = props.existing?.data.definition ?? null;
  const [syncName, setSyncName] = useState(initial?.name ?? "");
  const [description, setDescription] = useState(initial?.description ?? "");
  const [sourceKind, setSourceKind] = useState<"audience" | "model">(initial?.model ? "model" : "audience");
  const [audience, setAudience] = useState<string | null>(initial?.audience ?? null);
  const [model, setModel] = useState<string | null>(initial?.model ?? props.parent);
  const [destination, setDestination] = useState<string | null>(initial?.destination ?? null);
  const [mode, setMode] = useState<string | null>(initial?.mode ?? null);
  const [key, setKey] = useState<string | null>(initial?.key ?? null);
  const [rows, setRows] = useState<MappingRow[]>(() => (initial ? readMapping(initial.mapping) : [row()]));
  const [schedule, setSchedule] = useState<ScheduleState>(readSchedule(initial?.schedule));
  const [maxRemoval, setMaxRemoval] = useState<number>(Math.round((initial?.guards?.max_removal_share ?? 0.5) * 100));
  const [touched, setTouched] = useState(false);

  const destinationType = props.types.find((t) => t.name === props.destinations.find((d) => d.name === destination)?.type);
  const sourceModel = sourceKind === "model" ? model : props.parent;
  const columns = visibleColumns(useModel(sourceModel).data);
  const columnOptions = columns.map((c) => ({ value: c.name, label: columnLabel(c) }));
  const fieldOptions = [...new Set([...(destinationType?.required_fields ?? []), ...Object.keys(destinationType?.identifiers ?? {})])];

  const definition: SyncDefinition = {
    name: syncName.trim(),
    description: description.trim() || null,
    ...(sourceKind === "audience" ? { audience } : { model }),
    destination: destination ?? "",
    mode: mode ?? "",
    key: key || null,
    mapping: writeMapping(rows),
    schedule: writeSchedule(schedule),
    guards: { max_removal_share: maxRemoval / 100 },
  };
  const problems = [
    !definition.name && "Name the sync",
    sourceKind === "audience" && !audience && "Pick the audience to send",
    !destination && "Pick a destination",
    !mode && "Pick a mode",
    Object.keys(definition.mapping).length === 0 && "Map at least one destination field",
    rows.some((r) => r.field.trim() && !r.value && r.kind !== "constant") && "Every mapped field needs a column or template",
    ...(destinationType?.required_fields ?? []).filter((f) => !(f in definition.mapping)).map((f) => `Map the required field ${f}`),
    schedule.kind === "after" && !schedule.after && "Pick the sync to run after",
  ].filter(Boolean) as string[];

  const save = useMutation({
    mutationFn: () =>
      props.existing ? api.syncs.put(props.existing.data.name, definition, props.existing.etag ?? props.existing.data.etag) : api.syncs.create(definition),
    meta: { quiet: true },
    onSuccess: (saved) => {
      queryClient.invalidateQueries({ queryKey: keys.syncs });
      queryClient.invalidateQueries({ queryKey: keys.audiences });
      notifyDone(`Saved ${saved.name}`);
      navigate(`/syncs/${encodeURIComponent(saved.name)}`);
    },
  });
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (problems.length === 0) save.mutate();
  };
  const setRow = (id: number, change: Partial<MappingRow>) => setRows((rs) => rs.map((r) => (r.id === id ? { ...r, ...change } : r)));
  const failure = save.error ? errorText(save.error) : null;

  return (
    <form onSubmit={onSubmit} noValidate>
      <PageHeader
        title={props.existing ? `Edit ${props.existing.data.name}` : "New sync"}
        description="Each run compares the source with what the destination last received, in your warehouse, and sends only rows that were added, changed or removed."
        actions={
          <>
            <Button variant="default" component={Link} to={props.existing ? `/syncs/${encodeURIComponent(props.existing.data.name)}` : "/syncs"}>
              Cancel
            </Button>
            <Button type="submit" loading={save.isPending} data-testid="save-sync">
              {props.existing ? "Save" : "Create sync"}
            </Button>
          </>
        }
      />
      {failure && (
        <Alert color="red" mb="md" title={failure.title} data-testid="save-error">
          {failure.message}
        </Alert>
      )}
      {touched && problems.length > 0 && (
        <Alert color="orange" mb="md" title="Before saving" data-testid="sync-problems">
          <Stack gap={2}>
            {problems.map((p) => (
              <Text size="sm" key={p}>
                {p}
              </Text>
            ))}
          </Stack>
        </Alert>
      )}
      <Stack gap="lg">
        <Paper withBorder p="md">
          <Title order={4} mb="sm">
            What and where
          </Title>
          <Group align="flex-start" grow>
            <TextInput label="Name" required value={syncName} onChange={(e) => setSyncName(e.currentTarget.value)} data-testid="sync-name" autoFocus={!props.existing} />
            <TextInput label="Description" value={description} onChange={(e) => setDescription(e.currentTarget.value)} />
          </Group>
          <Group mt="md" align="flex-end">
            <Stack gap={4}>
              <Text size="sm" fw={500}>
                Send
              </Text>
              <SegmentedControl
                data={[
                  { value: "audience", label: "an audience" },
                  { value: "model", label: "every row of a model" },
                ]}
                value={sourceKind}
                onChange={(v) => setSourceKind(v as "audience" | "model")}
              />
            </Stack>
            {sourceKind === "audience" ? (
              <Select label="Audience" required searchable data={props.audiences} value={audience} onChange={setAudience} w={280} data-testid="sync-audience" nothingFoundMessage="No such audience" />
            ) : (
              <Select label="Model" required data={props.models} value={model} onChange={setModel} w={220} data-testid="sync-model" />
            )}
            <Select
              label="Destination"
              required
              searchable
              // The type's title without its own parenthesis: "Files (CSV, JSON Lines…)" reads "Files".
              data={props.destinations.map((d) => ({
                value: d.name,
                label: `${d.name} (${(props.types.find((t) => t.name === d.type)?.title ?? d.type).replace(/\s*\(.*\)\s*$/, "")})`,
              }))}
              value={destination}
              onChange={(v) => {
                setDestination(v);
                const type = props.types.find((t) => t.name === props.destinations.find((d) => d.name === v)?.type);
                if (type && (!mode || !type.modes.includes(mode))) setMode(type.modes[0] ?? null);
              }}
              w={300}
              data-testid="sync-destination"
              nothingFoundMessage="No destinations: add one under Destinations"
            />
            <Select
              label="Mode"
              required
              data={(destinationType?.modes ?? []).map((m) => ({ value: m, label: MODE_LABELS[m] ?? m }))}
              value={mode}
              onChange={setMode}
              w={260}
              data-testid="sync-mode"
              disabled={!destinationType}
              allowDeselect={false}
            />
          </Group>
          {mode && (
            <Text size="xs" c="dimmed" mt={6}>
              {MODE_HELP[mode]}
            </Text>
          )}
          <Select
            mt="md"
            label="Key"
            description="The column that identifies a row between runs; by default the model's primary key"
            clearable
            searchable
            placeholder="primary key"
            data={columnOptions}
            value={key}
            onChange={setKey}
            w={300}
          />
        </Paper>

        <Paper withBorder p="md">
          <Title order={4}>Field mapping</Title>
          <Text size="sm" c="dimmed" mb="sm">
            Each destination field gets a column, a constant, or a template such as {"{first_name} {last_name}"}. Fields marked
            hashed are normalized and SHA-256 hashed by Corral before they leave.
          </Text>
          <Table data-testid="mapping-table">
            <Table.Thead>
              <Table.Tr>
                <Table.Th w="30%">Destination field</Table.Th>
                <Table.Th w={150}>From</Table.Th>
                <Table.Th>Value</Table.Th>
                <Table.Th w={40} />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {rows.map((r, index) => {
                const identifier = destinationType?.identifiers[r.field.trim()];
                return (
                  <Table.Tr key={r.id} data-testid="mapping-row">
                    <Table.Td>
                      <Group gap={6} wrap="nowrap">
                        <Autocomplete
                          aria-label={`Destination field ${index + 1}`}
                          placeholder="field"
                          data={fieldOptions.filter((f) => f === r.field || !rows.some((x) => x.field === f))}
                          value={r.field}
                          onChange={(v) => setRow(r.id, { field: v })}
                          data-testid="mapping-field"
                          style={{ flex: 1 }}
                        />
                        {identifier && (
                          <Tooltip label={identifier.hashed ? `Normalized (${identifier.rules} rules) and SHA-256 hashed before sending` : `Normalized (${identifier.rules} rules), sent as is`}>
                            <Badge
                              color={identifier.hashed ? "violet" : "gray"}
                              variant="light"
                              leftSection={identifier.hashed ? <IconLock size={11} /> : undefined}
                              data-testid="mapping-hashed"
                            >
                              {identifier.hashed ? "hashed" : identifier.kind}
                            </Badge>
                          </Tooltip>
                        )}
                        {destinationType?.required_fields.includes(r.field) && (
                          <Badge color="red" variant="outline" size="xs">
                            required
                          </Badge>
                        )}
                      </Group>
                    </Table.Td>
                    <Table.Td>
                      <Select
                        aria-label="Value from"
                        data={[
                          { value: "column", label: "column" },
                          { value: "constant", label: "constant" },
                          { value: "template", label: "template" },
                        ]}
                        value={r.kind}
                        onChange={(v) => v && setRow(r.id, { kind: v as ValueKind, value: "" })}
                        allowDeselect={false}
                        data-testid="mapping-kind"
                      />
                    </Table.Td>
                    <Table.Td>
                      {r.kind === "column" ? (
                        <Select aria-label="Column" searchable placeholder="pick a column" data={columnOptions} value={r.value || null} onChange={(v) => setRow(r.id, { value: v ?? "" })} data-testid="mapping-column" />
                      ) : (
                        <TextInput
                          aria-label={r.kind === "template" ? "Template" : "Constant"}
                          placeholder={r.kind === "template" ? "{first_name} {last_name}" : "text"}
                          value={r.value}
                          onChange={(e) => setRow(r.id, { value: e.currentTarget.value })}
                          data-testid="mapping-value"
                          className={r.kind === "template" ? "mono" : undefined}
                        />
                      )}
                    </Table.Td>
                    <Table.Td>
                      <ActionIcon variant="subtle" color="gray" aria-label="Remove field" onClick={() => setRows((rs) => rs.filter((x) => x.id !== r.id))} disabled={rows.length === 1}>
                        <IconTrash size={15} />
                      </ActionIcon>
                    </Table.Td>
                  </Table.Tr>
                );
              })}
            </Table.Tbody>
          </Table>
          <Button mt="sm" variant="light" size="xs" leftSection={<IconPlus size={14} />} onClick={() => setRows((rs) => [...rs, row()])} data-testid="add-mapping">
            Add field
          </Button>
        </Paper>

        <Paper withBorder p="md">
          <Title order={4} mb="sm">
            When it runs
          </Title>
          <SegmentedControl
            data-testid="schedule-kind"
            data={[
              { value: "manual", label: "Only when run by hand" },
              { value: "every", label: "On an interval" },
              { value: "cron", label: "At set times (cron)" },
              { value: "after", label: "After another sync" },
            ]}
            value={schedule.kind}
            onChange={(v) => setSchedule((s) => ({ ...s, kind: v as ScheduleState["kind"] }))}
          />
          <Group mt="sm" align="flex-end">
            {schedule.kind === "every" && (
              <>
                <NumberInput label="Every" min={1} value={schedule.amount} onChange={(v) => setSchedule((s) => ({ ...s, amount: Number(v) || 1 }))} w={100} data-testid="schedule-amount" />
                <Select
                  label="Unit"
                  data={["minute", "hour", "day", "week"].map((u) => ({ value: u, label: `${u}s` }))}
                  value={schedule.unit}
                  onChange={(v) => v && setSchedule((s) => ({ ...s, unit: v as ScheduleState["unit"] }))}
                  w={130}
                  allowDeselect={false}
                />
                <Text size="xs" c="dimmed" maw={320}>
                  Counted from the end of the last run, so runs never pile up.
                </Text>
              </>
            )}
            {schedule.kind === "cron" && (
              <>
                <TextInput label="Cron" description="minute hour day month weekday" className="mono" value={schedule.cron} onChange={(e) => setSchedule((s) => ({ ...s, cron: e.currentTarget.value }))} w={220} data-testid="schedule-cron" />
                <Autocomplete label="Time zone" data={TIME_ZONES} value={schedule.timeZone} onChange={(v) => setSchedule((s) => ({ ...s, timeZone: v }))} w={240} />
              </>
            )}
            {schedule.kind === "after" && (
              <Select label="After" description="Runs each time that sync delivers" data={props.otherSyncs} value={schedule.after || null} onChange={(v) => setSchedule((s) => ({ ...s, after: v ?? "" }))} w={300} />
            )}
          </Group>
          <NumberInput
            mt="md"
            label="Hold removals above"
            description="When a run would remove more than this share of delivered members, it waits for confirmation instead"
            suffix="%"
            min={0}
            max={100}
            value={maxRemoval}
            onChange={(v) => setMaxRemoval(Number(v) || 0)}
            w={300}
          />
        </Paper>
      </Stack>
    </form>
  );
}

const MODE_LABELS: Record<string, string> = {
  upsert: "upsert: add and change",
  update: "update: change existing only",
  insert: "insert: add new only",
  mirror: "mirror: add, change, remove",
  membership: "membership: add and remove members",
};

const MODE_HELP: Record<string, string> = {
  upsert: "Adds new records and changes existing ones; never removes anything.",
  update: "Changes records that already exist at the destination; rows it lacks are rejected.",
  insert: "Adds new records only; changes to rows already sent are ignored.",
  mirror: "Adds, changes and removes, removing only records Corral itself delivered.",
  membership: "Adds people who enter the audience to the list and removes those who leave.",
};

const TIME_ZONES = (() => {
  try {
    return (Intl as unknown as { supportedValuesOf: (k: string) => string[] }).supportedValuesOf("timeZone");
  } catch {
    return ["UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"];
  }
})();
