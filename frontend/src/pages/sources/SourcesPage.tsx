/** The warehouse connection: see it, change it, test it, and browse its tables. */
import { Alert, Badge, Button, Grid, Group, NavLink, Paper, ScrollArea, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { IconPlugConnected, IconTable } from "@tabler/icons-react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api } from "../../api/endpoints";
import { errorText, keys, notifyDone } from "../../api/queries";
import { useCan } from "../../auth/auth";
import { EmptyState, ErrorState, PageHeader, TableSkeleton } from "../../components/common";
import { formatDuration } from "../../components/format";

export function SourcesPage() {
  const sources = useQuery({ queryKey: keys.sources, queryFn: api.sources.list });
  const tables = useQuery({ queryKey: keys.tables, queryFn: api.sources.tables, retry: false });
  const [table, setTable] = useState<string | null>(null);
  const columns = useQuery({ queryKey: keys.tableColumns(table ?? ""), queryFn: () => api.sources.columns(table!), enabled: Boolean(table) });
  const can = useCan();
  const queryClient = useQueryClient();
  const [url, setUrl] = useState("");
  const [plannerSchema, setPlannerSchema] = useState("");
  const test = useMutation({ mutationFn: api.sources.test, meta: { quiet: true } });
  const save = useMutation({
    mutationFn: () => api.sources.put(url.trim(), plannerSchema.trim() || null),
    meta: { quiet: true },
    onSuccess: () => {
      notifyDone("Saved the warehouse connection");
      setUrl("");
      queryClient.invalidateQueries();
    },
  });
  const source = sources.data?.[0];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (url.trim()) save.mutate();
  };
  const failure = save.error ? errorText(save.error) : null;

  return (
    <>
      <PageHeader title="Sources" description="The warehouse Corral reads customers from. Every audience compiles to SQL that runs there; Corral keeps its own planner tables in a separate schema." />
      {sources.isPending ? (
        <TableSkeleton rows={3} />
      ) : sources.error ? (
        <ErrorState error={sources.error} onRetry={() => sources.refetch()} />
      ) : (
        <Stack>
          <Paper withBorder p="md">
            <Group justify="space-between">
              <div>
                <Title order={4}>Warehouse</Title>
                {source ? (
                  <Text size="sm" className="mono" data-testid="source-url">
                    {source.url}
                  </Text>
                ) : (
                  <Text size="sm" c="dimmed">Not connected</Text>
                )}
                {source && (
                  <Group gap="xs" mt={4}>
                    <Badge variant="light">{source.dialect}</Badge>
                    <Text size="xs" c="dimmed">planner schema: {source.planner_schema}</Text>
                  </Group>
                )}
              </div>
              <Button leftSection={<IconPlugConnected size={16} />} variant="light" onClick={() => test.mutate()} loading={test.isPending} data-testid="test-source">
                Test connection
              </Button>
            </Group>
            {test.data && (
              <Alert mt="sm" color={test.data.ok ? "teal" : "red"} title={`${test.data.ok ? "Connected" : "Could not connect"} (${formatDuration(test.data.milliseconds)})`} data-testid="source-test-result">
                {test.data.message}
              </Alert>
            )}
            {test.error && <ErrorState error={test.error} />}
            {can("sources:manage") && (
              <form onSubmit={submit}>
                <Group mt="md" align="flex-end">
                  <TextInput label="New connection URL" description="e.g. duckdb:///path/warehouse.duckdb, postgresql://user@host/db, snowflake://…" value={url} onChange={(e) => setUrl(e.currentTarget.value)} style={{ flex: 1 }} data-testid="source-url-input" />
                  <TextInput label="Planner schema" placeholder={source?.planner_schema ?? "corral_planner"} value={plannerSchema} onChange={(e) => setPlannerSchema(e.currentTarget.value)} w={200} />
                  <Button type="submit" disabled={!url.trim()} loading={save.isPending}>
                    Save
                  </Button>
                </Group>
                {failure && <Alert mt="sm" color="red" title={failure.title}>{failure.message}</Alert>}
              </form>
            )}
          </Paper>
          <Grid>
            <Grid.Col span={{ base: 12, md: 4 }}>
              <Paper withBorder p="xs">
                <Text fw={600} size="sm" p="xs">Tables</Text>
                {tables.isPending ? <TableSkeleton /> : tables.error ? <ErrorState error={tables.error} /> : tables.data.length === 0 ? (
                  <EmptyState title="No tables" description="The warehouse has no tables Corral can see." />
                ) : (
                  <ScrollArea.Autosize mah={480}>
                    {tables.data.map((t) => {
                      const full = t.schema_name ? `${t.schema_name}.${t.name}` : t.name;
                      return <NavLink key={full} label={full} leftSection={<IconTable size={14} />} active={table === full} onClick={() => setTable(full)} data-testid="source-table" />;
                    })}
                  </ScrollArea.Autosize>
                )}
              </Paper>
            </Grid.Col>
            <Grid.Col span={{ base: 12, md: 8 }}>
              <Paper withBorder p="md">
                {!table ? (
                  <Text c="dimmed" size="sm">Pick a table to see its columns. Describe tables as models under Schema.</Text>
                ) : columns.isPending ? <TableSkeleton /> : columns.error ? <ErrorState error={columns.error} /> : (
                  <Table>
                    <Table.Thead><Table.Tr><Table.Th>Column</Table.Th><Table.Th>Type</Table.Th><Table.Th>Warehouse type</Table.Th><Table.Th>Nullable</Table.Th></Table.Tr></Table.Thead>
                    <Table.Tbody>
                      {columns.data.map((c) => (
                        <Table.Tr key={c.name}><Table.Td className="mono">{c.name}</Table.Td><Table.Td>{c.type}</Table.Td><Table.Td c="dimmed">{c.native_type}</Table.Td><Table.Td>{c.nullable ? "yes" : "no"}</Table.Td></Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                )}
              </Paper>
            </Grid.Col>
          </Grid>
        </Stack>
      )}
    </>
  );
}
