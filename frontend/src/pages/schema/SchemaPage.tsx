/** The schema: models and their columns, relationships (with a diagram), traits, and checks. */
import {
  Alert,
  Badge,
  Button,
  Grid,
  Group,
  Modal,
  NavLink,
  Paper,
  Select,
  Stack,
  Switch,
  Table,
  Tabs,
  Text,
  TextInput,
  Tooltip,
} from "@mantine/core";
import { IconCheck, IconPlus } from "@tabler/icons-react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api } from "../../api/endpoints";
import { errorText, keys, notifyDone } from "../../api/queries";
import type { ColumnSettings, ModelColumn, ModelDefinition, Privacy, Relationship, SchemaDocument, Trait } from "../../api/types";
import { useCan } from "../../auth/auth";
import { useModel } from "../../audience/context";
import { EmptyState, ErrorState, PageHeader, TableSkeleton } from "../../components/common";
import { RelationshipDiagram } from "./RelationshipDiagram";

export function SchemaPage() {
  const models = useQuery({ queryKey: keys.models, queryFn: api.schema.models });
  const relationships = useQuery({ queryKey: keys.relationships, queryFn: api.schema.relationships });
  const traits = useQuery({ queryKey: keys.traits, queryFn: api.schema.traits });
  const [selected, setSelected] = useState<string | null>(null);
  const [adding, setAdding] = useState<"model" | "relationship" | "trait" | null>(null);
  const check = useMutation({ mutationFn: () => api.schema.check(false), meta: { quiet: true } });
  const can = useCan();
  const current = selected ?? models.data?.[0]?.name ?? null;

  return (
    <>
      <PageHeader
        title="Schema"
        description="How your warehouse describes customers: the parent model (the people audiences select), related and event models, how they join, and computed traits. Marketers build audiences on these names, never on raw tables."
        actions={
          <Button variant="light" leftSection={<IconCheck size={16} />} onClick={() => check.mutate()} loading={check.isPending} data-testid="check-schema">
            Check against the warehouse
          </Button>
        }
      />
      {check.data && (
        <Alert mb="md" color={check.data.ok ? "teal" : "orange"} title={check.data.ok ? "The schema matches the warehouse, and every audience compiles" : `${check.data.problems.length} problems`} data-testid="schema-check-result" withCloseButton onClose={() => check.reset()}>
          {check.data.problems.map((p, i) => (
            <Text size="sm" key={i}>
              <b>{p.where}</b>: {p.message}
              {p.hint ? ` ${p.hint}` : ""}
            </Text>
          ))}
        </Alert>
      )}
      {check.error && <ErrorState error={check.error} />}
      {models.error ? (
        <ErrorState error={models.error} onRetry={() => models.refetch()} />
      ) : (
        // Panels mount when shown: the diagram fits its view to the size it is drawn at.
        <Tabs defaultValue="models" keepMounted={false}>
          <Tabs.List>
            <Tabs.Tab value="models" data-testid="tab-models">Models</Tabs.Tab>
            <Tabs.Tab value="relationships" data-testid="tab-relationships">Relationships</Tabs.Tab>
            <Tabs.Tab value="traits" data-testid="tab-traits">Traits</Tabs.Tab>
          </Tabs.List>
          <Tabs.Panel value="models" pt="md">
            {models.isPending ? <TableSkeleton /> : (
              <Grid>
                <Grid.Col span={{ base: 12, md: 3 }}>
                  <Paper withBorder p="xs">
                    {models.data.map((m) => (
                      <NavLink
                        key={m.name}
                        label={m.name}
                        description={m.kind === "parent" ? "parent: the people" : m.kind === "event" ? "events" : m.table ?? "SQL"}
                        active={current === m.name}
                        onClick={() => setSelected(m.name)}
                        rightSection={m.kind !== "related" && <Badge size="xs" variant="light">{m.kind}</Badge>}
                        data-testid="schema-model"
                      />
                    ))}
                    {can("schema:edit") && (
                      <Button variant="subtle" size="xs" mt="xs" leftSection={<IconPlus size={14} />} onClick={() => setAdding("model")} data-testid="add-model">
                        Add a model
                      </Button>
                    )}
                  </Paper>
                </Grid.Col>
                <Grid.Col span={{ base: 12, md: 9 }}>{current && <ModelPanel name={current} />}</Grid.Col>
              </Grid>
            )}
          </Tabs.Panel>
          <Tabs.Panel value="relationships" pt="md">
            {relationships.isPending || models.isPending ? <TableSkeleton /> : relationships.error ? <ErrorState error={relationships.error} /> : (
              <Stack>
                <Paper withBorder h={Math.min(620, 260 + 60 * models.data.length)} data-testid="relationship-diagram" style={{ overflow: "hidden" }}>
                  <RelationshipDiagram models={models.data} relationships={relationships.data} />
                </Paper>
                <Table>
                  <Table.Thead><Table.Tr><Table.Th>Name</Table.Th><Table.Th>From</Table.Th><Table.Th>To</Table.Th><Table.Th>Cardinality</Table.Th><Table.Th>Join</Table.Th></Table.Tr></Table.Thead>
                  <Table.Tbody>
                    {relationships.data.map((r, i) => (
                      <Table.Tr key={i}>
                        <Table.Td>{r.name ?? r.to}</Table.Td>
                        <Table.Td>{r.from}</Table.Td>
                        <Table.Td>{r.through ? `through ${r.through.join(" → ")}` : r.to}</Table.Td>
                        <Table.Td>{r.through ? `via ${r.through.length} relationships` : r.cardinality?.replace(/_/g, " ") ?? "—"}</Table.Td>
                        <Table.Td className="mono">{r.join ? Object.entries(r.join).map(([a, b]) => `${a} = ${b}`).join(", ") : ""}</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
                {can("schema:edit") && <Button variant="light" w="fit-content" leftSection={<IconPlus size={14} />} onClick={() => setAdding("relationship")}>Add a relationship</Button>}
              </Stack>
            )}
          </Tabs.Panel>
          <Tabs.Panel value="traits" pt="md">
            {traits.isPending ? <TableSkeleton /> : traits.error ? <ErrorState error={traits.error} /> : (
              <Stack>
                {traits.data.length === 0 ? (
                  <EmptyState title="No traits yet" description="A trait is a value computed per customer, such as their order count or favourite category. Audiences compare it like a column." />
                ) : (
                  <Table>
                    <Table.Thead><Table.Tr><Table.Th>Trait</Table.Th><Table.Th>Computed as</Table.Th><Table.Th>Description</Table.Th></Table.Tr></Table.Thead>
                    <Table.Tbody>
                      {traits.data.map((t) => (
                        <Table.Tr key={t.name}>
                          <Table.Td fw={600}>{t.name}</Table.Td>
                          <Table.Td className="mono">{t.formula ?? t.sql ?? `${t.aggregate}${t.column ? `(${t.column})` : ""} of ${t.relation}`}</Table.Td>
                          <Table.Td>{t.description}</Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                )}
                {can("schema:edit") && <Button variant="light" w="fit-content" leftSection={<IconPlus size={14} />} onClick={() => setAdding("trait")}>Add a trait</Button>}
              </Stack>
            )}
          </Tabs.Panel>
        </Tabs>
      )}
      {adding && <AddModal what={adding} models={(models.data ?? []).map((m) => m.name)} onClose={() => setAdding(null)} />}
    </>
  );
}

const PRIVACY_COLORS: Record<string, string> = { pii: "orange", sensitive: "red", internal: "gray" };

function ModelPanel(props: { name: string }) {
  const model = useModel(props.name);
  const can = useCan();
  const [editing, setEditing] = useState<ModelColumn | null>(null);
  if (model.isPending) return <TableSkeleton />;
  if (model.error) return <ErrorState error={model.error} />;
  const m = model.data;
  return (
    <Paper withBorder p="md">
      <Group gap="xs" mb="sm">
        <Text fw={700} size="lg">{m.name}</Text>
        <Badge variant="light">{m.kind}</Badge>
        <Text size="sm" c="dimmed">{m.table ?? "SQL query"} · primary key <b>{m.primary_key}</b>{m.time_column ? ` · time ${m.time_column}` : ""}{m.event ? ` · event type ${m.event.type ?? "—"}` : ""}</Text>
      </Group>
      {m.relations.length > 0 && <Text size="sm" mb="sm">Relations from here: {m.relations.join(", ")}</Text>}
      <Table highlightOnHover data-testid="model-columns">
        <Table.Thead><Table.Tr><Table.Th>Column</Table.Th><Table.Th>Type</Table.Th><Table.Th>Shown as</Table.Th><Table.Th>Privacy</Table.Th><Table.Th>Suggestions</Table.Th><Table.Th /></Table.Tr></Table.Thead>
        <Table.Tbody>
          {m.columns.map((c) => (
            <Table.Tr key={c.name} opacity={c.settings.hidden ? 0.5 : 1}>
              <Table.Td className="mono">
                {c.name}
                {c.name === m.primary_key && <Badge size="xs" variant="light" color="indigo" ml={6}>primary key</Badge>}
                {!c.in_warehouse && (
                  <Tooltip label="The warehouse table has no such column: fix schema.yaml or the table">
                    <Badge color="red" size="xs" ml={6}>missing</Badge>
                  </Tooltip>
                )}
              </Table.Td>
              <Table.Td>{c.type ?? "?"}</Table.Td>
              <Table.Td>{c.settings.alias ?? ""}{c.settings.hidden ? " (hidden)" : ""}</Table.Td>
              <Table.Td>
                <Badge size="sm" variant={PRIVACY_COLORS[c.settings.privacy ?? "public"] ? "light" : "transparent"} color={PRIVACY_COLORS[c.settings.privacy ?? "public"] ?? "gray"}>
                  {c.settings.privacy ?? "public"}
                </Badge>
              </Table.Td>
              <Table.Td>
                {c.settings.privacy === "pii" || c.settings.privacy === "sensitive" ? (
                  <Tooltip label="pii and sensitive values are never suggested">
                    <Text size="sm" c="dimmed">never</Text>
                  </Tooltip>
                ) : c.settings.suggestions === false ? "off" : "on"}
              </Table.Td>
              <Table.Td>{can("schema:edit") && <Button size="compact-xs" variant="subtle" onClick={() => setEditing(c)}>Settings</Button>}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {editing && <ColumnModal model={m.name} column={editing} onClose={() => setEditing(null)} />}
    </Paper>
  );
}

function ColumnModal(props: { model: string; column: ModelColumn; onClose: () => void }) {
  const queryClient = useQueryClient();
  const [settings, setSettings] = useState<ColumnSettings>({ ...props.column.settings });
  const save = useMutation({
    mutationFn: async () => {
      const { etag } = await api.schema.get();
      return api.schema.putColumn(props.model, props.column.name, settings, etag);
    },
    onSuccess: () => {
      notifyDone(`Saved ${props.column.name}`);
      queryClient.invalidateQueries({ queryKey: keys.schema });
      props.onClose();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  return (
    <Modal opened onClose={props.onClose} title={`${props.model}.${props.column.name}`}>
      <form onSubmit={submit}>
        <Stack>
          <TextInput label="Shown as" description="The name marketers see" value={settings.alias ?? ""} onChange={(e) => setSettings((s) => ({ ...s, alias: e.currentTarget.value || null }))} data-autofocus />
          <TextInput label="Description" value={settings.description ?? ""} onChange={(e) => setSettings((s) => ({ ...s, description: e.currentTarget.value || null }))} />
          <Select label="Type" description="Override what the warehouse reports" clearable data={["string", "integer", "decimal", "float", "boolean", "date", "timestamp"]} value={settings.type ?? null} onChange={(v) => setSettings((s) => ({ ...s, type: v }))} />
          <Select label="Privacy" description="pii and sensitive values are masked in samples and never suggested" data={["public", "internal", "pii", "sensitive"]} value={settings.privacy ?? "public"} onChange={(v) => setSettings((s) => ({ ...s, privacy: (v ?? "public") as Privacy }))} allowDeselect={false} />
          <Switch label="Hidden from audience builders" checked={Boolean(settings.hidden)} onChange={(e) => setSettings((s) => ({ ...s, hidden: e.currentTarget.checked }))} />
          <Switch label="Suggest values while typing" checked={settings.suggestions !== false} onChange={(e) => setSettings((s) => ({ ...s, suggestions: e.currentTarget.checked }))} />
          <Group justify="flex-end"><Button variant="default" onClick={props.onClose}>Cancel</Button><Button type="submit" loading={save.isPending}>Save</Button></Group>
        </Stack>
      </form>
    </Modal>
  );
}

/** Add a model, relationship or trait: read the schema, append, write it back with If-Match. */
function AddModal(props: { what: "model" | "relationship" | "trait"; models: string[]; onClose: () => void }) {
  const queryClient = useQueryClient();
  const tables = useQuery({ queryKey: keys.tables, queryFn: api.sources.tables, enabled: props.what === "model" });
  const [f, setF] = useState<Record<string, string>>({ kind: "related", cardinality: "one_to_many", aggregate: "count" });
  const table = f.table ?? "";
  const columns = useQuery({ queryKey: keys.tableColumns(table), queryFn: () => api.sources.columns(table), enabled: Boolean(table) });
  const set = (key: string) => (v: string | null) => setF((x) => ({ ...x, [key]: v ?? "" }));
  const columnNames = (columns.data ?? []).map((c) => c.name);
  const save = useMutation({
    mutationFn: async () => {
      const { data, etag } = await api.schema.get();
      const next: SchemaDocument = { ...data };
      if (props.what === "model") {
        const model: ModelDefinition = { name: f.name, table: f.table, primary_key: f.primary_key };
        if (f.kind === "event") model.event = { timestamp: f.timestamp, type: f.type || null };
        else if (f.timestamp) model.timestamp = f.timestamp;
        next.models = [...(data.models ?? []), model];
      } else if (props.what === "relationship") {
        const rel: Relationship = { from: f.from, to: f.to, cardinality: f.cardinality as Relationship["cardinality"], join: { [f.from_column]: f.to_column } };
        if (f.name) rel.name = f.name;
        next.relationships = [...(data.relationships ?? []), rel];
      } else {
        const trait: Trait = { name: f.name, relation: f.relation, aggregate: f.aggregate };
        if (f.column) trait.column = f.column;
        next.traits = [...(data.traits ?? []), trait];
      }
      return api.schema.put(next, etag);
    },
    meta: { quiet: true },
    onSuccess: () => {
      notifyDone("Saved the schema");
      queryClient.invalidateQueries({ queryKey: keys.schema });
      props.onClose();
    },
  });
  const failure = save.error ? errorText(save.error) : null;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  return (
    <Modal opened onClose={props.onClose} title={`Add a ${props.what}`} size="lg">
      <form onSubmit={submit}>
        <Stack>
          {failure && <Alert color="red" title={failure.title}>{failure.message}</Alert>}
          {props.what === "model" && (
            <>
              <Select label="Table" required searchable data={(tables.data ?? []).map((t) => (t.schema_name ? `${t.schema_name}.${t.name}` : t.name))} value={f.table ?? null} onChange={(v) => setF((x) => ({ ...x, table: v ?? "", name: x.name || (v ?? "").split(".").pop() || "" }))} data-autofocus />
              <TextInput label="Name" description="How audiences refer to it: letters, digits, underscores" required value={f.name ?? ""} onChange={(e) => set("name")(e.currentTarget.value)} />
              <Select label="Primary key" description="A column unique per row" required data={columnNames} value={f.primary_key ?? null} onChange={set("primary_key")} />
              <Select label="Kind" data={[{ value: "related", label: "Related rows (purchases, households…)" }, { value: "event", label: "Events (a timestamp and a type)" }]} value={f.kind} onChange={set("kind")} allowDeselect={false} />
              <Select label={f.kind === "event" ? "Timestamp" : "Time column (optional)"} description="Places each row in time, for windows like 'in the last 30 days'" clearable data={columnNames} value={f.timestamp || null} onChange={set("timestamp")} required={f.kind === "event"} />
              {f.kind === "event" && <Select label="Event type column" clearable data={columnNames} value={f.type || null} onChange={set("type")} />}
            </>
          )}
          {props.what === "relationship" && (
            <>
              <Group grow>
                <Select label="From" required data={props.models} value={f.from ?? null} onChange={set("from")} data-autofocus />
                <Select label="To" required data={props.models} value={f.to ?? null} onChange={set("to")} />
              </Group>
              <Select label="Cardinality" data={["one_to_many", "many_to_one", "one_to_one"].map((c) => ({ value: c, label: c.replace(/_/g, " ") }))} value={f.cardinality} onChange={set("cardinality")} allowDeselect={false} />
              <Group grow>
                <TextInput label="Join: column of From" required value={f.from_column ?? ""} onChange={(e) => set("from_column")(e.currentTarget.value)} />
                <TextInput label="equals column of To" required value={f.to_column ?? ""} onChange={(e) => set("to_column")(e.currentTarget.value)} />
              </Group>
              <TextInput label="Name (optional)" description="Defaults to the target model's name" value={f.name ?? ""} onChange={(e) => set("name")(e.currentTarget.value)} />
            </>
          )}
          {props.what === "trait" && (
            <>
              <TextInput label="Name" required value={f.name ?? ""} onChange={(e) => set("name")(e.currentTarget.value)} data-autofocus />
              <TextInput label="Relation" description="A relation of the parent model, e.g. purchases" required value={f.relation ?? ""} onChange={(e) => set("relation")(e.currentTarget.value)} />
              <Select label="Aggregate" data={["count", "count_distinct", "sum", "average", "min", "max", "first", "last", "most_frequent", "list"]} value={f.aggregate} onChange={set("aggregate")} allowDeselect={false} />
              {f.aggregate !== "count" && <TextInput label="Column" required value={f.column ?? ""} onChange={(e) => set("column")(e.currentTarget.value)} />}
            </>
          )}
          <Group justify="flex-end"><Button variant="default" onClick={props.onClose}>Cancel</Button><Button type="submit" loading={save.isPending}>Add</Button></Group>
        </Stack>
      </form>
    </Modal>
  );
}
