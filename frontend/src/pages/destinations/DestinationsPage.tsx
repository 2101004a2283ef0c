/** Destinations: list, create and change them (settings form from the type's JSON Schema), test. */
import { Alert, Anchor, Button, Group, Modal, NumberInput, PasswordInput, Select, Stack, Switch, Table, Text, TextInput, Textarea } from "@mantine/core";
import { IconPlugConnected, IconPlus, IconSend } from "@tabler/icons-react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { useState, type FormEvent } from "react";

import { api } from "../../api/endpoints";
import { errorText, keys, notifyDone } from "../../api/queries";
import type { Destination, DestinationType, JsonSchema } from "../../api/types";
import { useCan } from "../../auth/auth";
import { EmptyState, ErrorState, PageHeader, TableSkeleton } from "../../components/common";

export function DestinationsPage() {
  const destinations = useQuery({ queryKey: keys.destinations, queryFn: api.destinations.list });
  const types = useQuery({ queryKey: keys.destinationTypes, queryFn: api.destinations.types, staleTime: Infinity });
  const [editing, setEditing] = useState<Destination | "new" | null>(null);
  const can = useCan();
  const test = useMutation({
    mutationFn: (name: string) => api.destinations.test(name),
    onSuccess: (result, name) =>
      result.ok ? notifyDone(`${name}: ${result.message}`) : notifyDone(`${name} failed the test: ${result.message}`),
  });
  const newButton = can("destinations:manage") && (
    <Button leftSection={<IconPlus size={16} />} onClick={() => setEditing("new")} data-testid="new-destination">
      New destination
    </Button>
  );
  const title = (type: string) => types.data?.find((t) => t.name === type)?.title ?? type;

  return (
    <>
      <PageHeader
        title="Destinations"
        description="The tools Corral sends audiences to. Secrets are stored encrypted and never shown again; syncs say what to send."
        actions={newButton}
      />
      {destinations.isPending ? (
        <TableSkeleton />
      ) : destinations.error ? (
        <ErrorState error={destinations.error} onRetry={() => destinations.refetch()} />
      ) : destinations.data.length === 0 ? (
        <EmptyState icon={<IconSend size={40} stroke={1.2} />} title="No destinations yet" description="Connect an ad platform, a CRM, a messaging tool, a webhook or a file drop." action={newButton} testId="destinations-empty" />
      ) : (
        <Table highlightOnHover data-testid="destinations-table">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Destination</Table.Th>
              <Table.Th>Type</Table.Th>
              <Table.Th>Used by</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {destinations.data.map((d) => (
              <Table.Tr key={d.name} data-testid="destination-row" data-name={d.name}>
                <Table.Td>
                  <Text fw={600}>{d.name}</Text>
                  {d.description && <Text size="xs" c="dimmed">{d.description}</Text>}
                </Table.Td>
                <Table.Td>{title(d.type)}</Table.Td>
                <Table.Td>
                  {d.syncs.length ? (
                    <Stack gap={2}>
                      {d.syncs.map((s) => (
                        <Anchor key={s} component={Link} to={`/syncs/${encodeURIComponent(s)}`} size="sm">
                          {s}
                        </Anchor>
                      ))}
                    </Stack>
                  ) : (
                    <Text size="sm" c="dimmed">no syncs</Text>
                  )}
                </Table.Td>
                <Table.Td w={180}>
                  <Group gap="xs" justify="flex-end" wrap="nowrap">
                    <Button size="xs" variant="light" leftSection={<IconPlugConnected size={14} />} onClick={() => test.mutate(d.name)} loading={test.isPending && test.variables === d.name}>
                      Test
                    </Button>
                    {can("destinations:manage") && (
                      <Button size="xs" variant="default" onClick={() => setEditing(d)}>
                        Edit
                      </Button>
                    )}
                  </Group>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {editing && types.data && (
        <DestinationModal existing={editing === "new" ? null : editing} types={types.data} onClose={() => setEditing(null)} />
      )}
    </>
  );
}

/** The settings of a destination type, as inputs, from its JSON Schema. */
function settingFields(schema: JsonSchema): [string, JsonSchema, boolean][] {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([key, s]) => [key, plain(s, schema), required.has(key)]);
}

function plain(s: JsonSchema, root: JsonSchema): JsonSchema {
  const resolved = s.$ref ? (root.$defs?.[s.$ref.split("/").pop() ?? ""] ?? s) : s;
  const nonNull = resolved.anyOf?.find((a) => a.type !== "null");
  return nonNull ? { ...resolved, ...plain(nonNull, root), anyOf: undefined } : resolved;
}

function DestinationModal(props: { existing: Destination | null; types: DestinationType[]; onClose: () => void }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState(props.existing?.name ?? "");
  const [type, setType] = useState<string | null>(props.existing?.type ?? null);
  const [description, setDescription] = useState(props.existing?.description ?? "");
  const [config, setConfig] = useState<Record<string, unknown>>(props.existing?.config ?? {});
  const destinationType = props.types.find((t) => t.name === type);
  const secrets = new Set(destinationType?.secrets ?? []);
  const save = useMutation({
    mutationFn: () => {
      const body = { name: name.trim(), type: type ?? "", description: description.trim() || null, config };
      return props.existing ? api.destinations.put(props.existing.name, body, props.existing.etag) : api.destinations.create(body);
    },
    meta: { quiet: true },
    onSuccess: (saved) => {
      notifyDone(`Saved ${saved.name}`);
      queryClient.invalidateQueries({ queryKey: keys.destinations });
      props.onClose();
    },
  });
  const failure = save.error ? errorText(save.error) : null;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  const set = (key: string, value: unknown) => setConfig((c) => ({ ...c, [key]: value }));

  return (
    <Modal opened onClose={props.onClose} title={props.existing ? `Edit ${props.existing.name}` : "New destination"} size="lg">
      <form onSubmit={submit}>
        <Stack>
          {failure && <Alert color="red" title={failure.title}>{failure.message}</Alert>}
          <TextInput label="Name" required value={name} onChange={(e) => setName(e.currentTarget.value)} data-autofocus data-testid="destination-name" />
          <Select
            label="Type"
            placeholder="Pick where audiences go: a CRM, an ad platform, files…"
            required
            searchable
            data={props.types.map((t) => ({ value: t.name, label: t.title }))}
            value={type}
            onChange={setType}
            disabled={Boolean(props.existing)}
            data-testid="destination-type"
          />
          <TextInput label="Description" value={description} onChange={(e) => setDescription(e.currentTarget.value)} />
          {destinationType && (
            <>
              <Text size="sm" c="dimmed">
                Modes: {destinationType.modes.join(", ")}. Batch size {destinationType.batch_size}.
              </Text>
              {settingFields(destinationType.config_schema).map(([key, s, required]) => {
                const label = s.title ?? key;
                const value = config[key];
                const common = { key, label, description: s.description, required, "data-testid": `destination-config-${key}` };
                if (secrets.has(key) || s.writeOnly) {
                  const stored = typeof value === "object" && value !== null && "set" in value;
                  return (
                    <PasswordInput
                      {...common}
                      placeholder={stored ? "stored; type to replace" : ""}
                      value={typeof value === "string" ? value : ""}
                      onChange={(e) => set(key, e.currentTarget.value || (stored ? { set: true } : null))}
                      autoComplete="new-password"
                    />
                  );
                }
                if (s.enum) return <Select {...common} data={s.enum.map(String)} value={value == null ? null : String(value)} onChange={(v) => set(key, v)} clearable={!required} />;
                if (s.type === "boolean") return <Switch key={key} label={label} description={s.description} checked={Boolean(value ?? s.default)} onChange={(e) => set(key, e.currentTarget.checked)} />;
                if (s.type === "integer" || s.type === "number") return <NumberInput {...common} placeholder={s.default != null ? String(s.default) : undefined} value={typeof value === "number" ? value : ""} onChange={(v) => set(key, v === "" ? null : Number(v))} />;
                if (s.type === "object" || s.type === "array")
                  return (
                    <Textarea
                      {...common}
                      description={`${s.description ?? ""} (JSON)`}
                      autosize
                      minRows={2}
                      className="mono"
                      defaultValue={value == null ? "" : JSON.stringify(value, null, 2)}
                      onBlur={(e) => {
                        try {
                          set(key, e.currentTarget.value ? JSON.parse(e.currentTarget.value) : null);
                        } catch {
                          /* left as typed; the API names the problem on save */
                        }
                      }}
                    />
                  );
                return <TextInput {...common} placeholder={s.default != null ? String(s.default) : undefined} value={value == null ? "" : String(value)} onChange={(e) => set(key, e.currentTarget.value || null)} />;
              })}
              {destinationType.docs && (
                <Text size="xs" c="dimmed">
                  {destinationType.docs.split("\n")[0]}
                </Text>
              )}
            </>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={props.onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={save.isPending} disabled={!name.trim() || !type} data-testid="save-destination">
              Save
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
