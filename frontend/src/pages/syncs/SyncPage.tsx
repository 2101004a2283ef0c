/** One sync: run it, dry-run it, its run history with counts, and its rejected rows. */
import { BarChart } from "@mantine/charts";
import {
  Anchor,
  Badge,
  Button,
  Drawer,
  Group,
  Paper,
  ScrollArea,
  SimpleGrid,
  Stack,
  Table,
  Tabs,
  Text,
  Tooltip,
} from "@mantine/core";
import { IconEdit, IconFlask, IconLock, IconPlayerPlay, IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { api } from "../../api/endpoints";
import { keys, notifyDone } from "../../api/queries";
import type { DryRun, Run, RunCounts } from "../../api/types";
import { useCan } from "../../auth/auth";
import { ConfirmModal } from "../../components/ConfirmModal";
import { CodeBlock, EmptyState, ErrorState, PageHeader, StatusBadge, TableSkeleton } from "../../components/common";
import { between, formatAgo, formatCount, formatDuration, formatTime, formatValue } from "../../components/format";

const ACTIVE = new Set(["queued", "running"]);

export function SyncPage() {
  const { name = "" } = useParams();
  const can = useCan();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [tab, setTab] = useState<string | null>("runs");
  const [openRun, setOpenRun] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const sync = useQuery({
    queryKey: keys.sync(name),
    queryFn: () => api.syncs.get(name),
    // Its "Last run" badge follows a run until it ends, as the run history does.
    refetchInterval: (query) => (ACTIVE.has(query.state.data?.data.latest_run?.status ?? "") ? 1500 : false),
  });
  const destinations = useQuery({ queryKey: keys.destinations, queryFn: api.destinations.list });
  const types = useQuery({ queryKey: keys.destinationTypes, queryFn: api.destinations.types });
  const runs = useQuery({
    queryKey: keys.runs(name),
    queryFn: () => api.syncs.runs(name),
    refetchInterval: (query) => (query.state.data?.some((r) => ACTIVE.has(r.status)) ? 1500 : false),
  });

  const run = useMutation({
    mutationFn: () => api.syncs.run(name),
    onSuccess: (accepted) => {
      notifyDone(`Run ${accepted.run_id.slice(0, 8)} started`);
      setTab("runs");
      queryClient.invalidateQueries({ queryKey: keys.runs(name) });
      queryClient.invalidateQueries({ queryKey: keys.syncs });
    },
  });
  const dryRun = useMutation({
    mutationFn: () => api.syncs.dryRun(name),
    onSuccess: () => {
      setTab("dry-run");
      queryClient.invalidateQueries({ queryKey: keys.runs(name) });
    },
  });
  const remove = useMutation({
    mutationFn: () => api.syncs.remove(name, sync.data?.etag ?? null),
    onSuccess: () => {
      notifyDone(`Deleted ${name}`);
      queryClient.invalidateQueries({ queryKey: keys.syncs });
      navigate("/syncs");
    },
  });

  if (sync.isPending) return <TableSkeleton rows={6} />;
  if (sync.error) return <ErrorState error={sync.error} onRetry={() => sync.refetch()} />;
  const view = sync.data.data;
  const d = view.definition;
  const destinationType = destinations.data?.find((x) => x.name === d.destination)?.type;
  const identifiers = types.data?.find((t) => t.name === destinationType)?.identifiers;
  const running = runs.data?.some((r) => ACTIVE.has(r.status) && !r.dry_run) ?? false;

  return (
    <>
      <PageHeader
        title={view.name}
        description={view.description ?? undefined}
        actions={
          <>
            {can("syncs:manage") && (
              <Button variant="default" leftSection={<IconEdit size={16} />} component={Link} to={`/syncs/${encodeURIComponent(name)}/edit`} data-testid="edit-sync">
                Edit
              </Button>
            )}
            {can("syncs:run") && (
              <>
                <Tooltip label="Plan the run and show what it would send, without sending anything">
                  <Button variant="light" leftSection={<IconFlask size={16} />} onClick={() => dryRun.mutate()} loading={dryRun.isPending} data-testid="dry-run">
                    Dry run
                  </Button>
                </Tooltip>
                <Button leftSection={<IconPlayerPlay size={16} />} onClick={() => run.mutate()} loading={run.isPending || running} data-testid="run-now">
                  Run now
                </Button>
              </>
            )}
          </>
        }
      />
      <SimpleGrid cols={{ base: 2, md: 5 }} mb="lg">
        <Fact label="From" value={d.audience ? <Anchor component={Link} to={`/audiences/${encodeURIComponent(d.audience)}`}>{d.audience}</Anchor> : `all ${d.model}`} />
        <Fact label="To" value={d.destination} />
        <Fact label="Mode" value={d.mode} />
        <Fact label="Schedule" value={view.schedule} />
        <Fact
          label="Last run"
          value={
            <Group gap={6} wrap="nowrap">
              <div style={{ flexShrink: 0 }}>
                <StatusBadge status={view.latest_run?.status} testId="sync-status" />
              </div>
              {view.latest_run?.finished_at && (
                <Tooltip label={formatTime(view.latest_run.finished_at)}>
                  <Text size="xs" c="dimmed" fw={400} style={{ whiteSpace: "nowrap" }}>
                    {formatAgo(view.latest_run.finished_at, Date.now(), true)}
                  </Text>
                </Tooltip>
              )}
            </Group>
          }
        />
      </SimpleGrid>
      <Paper withBorder p="sm" mb="lg">
        <Text size="sm" fw={500} mb={4}>
          Field mapping
        </Text>
        <Group gap="xs">
          {Object.entries(d.mapping).map(([field, value]) => {
            const identifier = identifiers?.[field];
            return (
              <Tooltip
                key={field}
                disabled={!identifier}
                label={identifier?.hashed ? `An identifier: normalized (${identifier.rules} rules) and SHA-256 hashed before it leaves` : `An identifier: normalized (${identifier?.rules} rules), sent as is`}
              >
                <Badge
                  variant={identifier?.hashed ? "light" : "default"}
                  color={identifier?.hashed ? "violet" : undefined}
                  leftSection={identifier?.hashed ? <IconLock size={11} /> : undefined}
                  style={{ textTransform: "none" }}
                  data-testid="sync-mapping-field"
                  data-hashed={identifier?.hashed ? "true" : "false"}
                >
                  {field} ← {typeof value === "string" ? value : "template" in value ? `“${value.template}”` : `= ${formatValue(value.constant)}`}
                  {identifier?.hashed ? " (hashed)" : ""}
                </Badge>
              </Tooltip>
            );
          })}
        </Group>
      </Paper>

      <Tabs value={tab} onChange={setTab}>
        <Tabs.List>
          <Tabs.Tab value="runs" data-testid="tab-runs">
            Runs
          </Tabs.Tab>
          <Tabs.Tab value="dry-run" data-testid="tab-dry-run">
            Dry run
          </Tabs.Tab>
          <Tabs.Tab value="rejected" data-testid="tab-rejected">
            Rejected rows
          </Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="runs" pt="md">
          {runs.isPending ? (
            <TableSkeleton />
          ) : runs.error ? (
            <ErrorState error={runs.error} onRetry={() => runs.refetch()} />
          ) : runs.data.length === 0 ? (
            <EmptyState title="No runs yet" description="Run the sync now, or wait for its schedule. A dry run first shows what it would send." testId="runs-empty" />
          ) : (
            <RunHistory runs={runs.data} onOpen={setOpenRun} />
          )}
        </Tabs.Panel>
        <Tabs.Panel value="dry-run" pt="md">
          {dryRun.isPending ? (
            <TableSkeleton />
          ) : dryRun.data ? (
            <DryRunResult result={dryRun.data} />
          ) : (
            <EmptyState
              title="No dry run yet"
              description="A dry run plans the next run in the warehouse and shows how many rows it would add, change and remove, with samples. Nothing is sent."
              action={can("syncs:run") && <Button onClick={() => dryRun.mutate()}>Dry run now</Button>}
            />
          )}
        </Tabs.Panel>
        <Tabs.Panel value="rejected" pt="md">
          <Rejected name={name} />
        </Tabs.Panel>
      </Tabs>

      {can("syncs:manage") && (
        <Group mt="xl">
          <Button variant="subtle" color="red" leftSection={<IconTrash size={15} />} onClick={() => setConfirmDelete(true)}>
            Delete this sync
          </Button>
        </Group>
      )}
      <RunDrawer id={openRun} onClose={() => setOpenRun(null)} />
      <ConfirmModal
        opened={confirmDelete}
        title={`Delete ${name}?`}
        message="The sync stops; records already at the destination stay there. Its run history is kept."
        confirmLabel="Delete"
        loading={remove.isPending}
        onConfirm={() => remove.mutate()}
        onClose={() => setConfirmDelete(false)}
      />
    </>
  );
}

function Fact(props: { label: string; value: React.ReactNode }) {
  return (
    <Paper withBorder p="sm">
      <Text size="xs" c="dimmed">
        {props.label}
      </Text>
      <Text size="sm" fw={600} component="div">
        {props.value}
      </Text>
    </Paper>
  );
}

const COUNT_LABELS: [keyof RunCounts, string][] = [
  ["added", "added"],
  ["changed", "changed"],
  ["removed", "removed"],
  ["rejected", "rejected"],
];

function RunHistory(props: { runs: Run[]; onOpen: (id: string) => void }) {
  const chart = [...props.runs]
    .filter((r) => !r.dry_run)
    .slice(0, 30)
    .reverse()
    .map((r) => ({
      run: shortTime(r.started_at ?? r.queued_at),
      added: r.counts.added ?? 0,
      changed: r.counts.changed ?? 0,
      removed: r.counts.removed ?? 0,
      rejected: r.counts.rejected ?? 0,
    }));
  return (
    <Stack>
      {chart.length > 1 && (
        <Paper withBorder p="sm" data-testid="runs-chart">
          <Text size="sm" fw={500} mb="xs">
            Rows per run
          </Text>
          <BarChart
            h={200}
            data={chart}
            dataKey="run"
            type="stacked"
            series={[
              { name: "added", color: "teal.6" },
              { name: "changed", color: "blue.6" },
              { name: "removed", color: "gray.6" },
              { name: "rejected", color: "red.6" },
            ]}
            valueFormatter={(v) => formatCount(v)}
            withLegend
            maxBarWidth={36}
            tickLine="y"
          />
        </Paper>
      )}
      <ScrollArea>
        <Table highlightOnHover data-testid="runs-table">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Started</Table.Th>
              <Table.Th>Status</Table.Th>
              <Table.Th>Trigger</Table.Th>
              <Table.Th ta="right">Members</Table.Th>
              {COUNT_LABELS.map(([, label]) => (
                <Table.Th key={label} ta="right">
                  {label}
                </Table.Th>
              ))}
              <Table.Th ta="right">Took</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {props.runs.map((r) => (
              <Table.Tr
                key={r.id}
                onClick={() => props.onOpen(r.id)}
                onKeyDown={(e) => e.key === "Enter" && props.onOpen(r.id)}
                tabIndex={0}
                style={{ cursor: "pointer" }}
                data-testid="run-row"
                data-run-id={r.id}
                data-status={r.status}
              >
                <Table.Td>{formatTime(r.started_at ?? r.queued_at)}</Table.Td>
                <Table.Td>
                  <Group gap={4}>
                    <StatusBadge status={r.status} testId="run-status" />
                    {r.dry_run && <Badge size="xs" variant="outline">dry run</Badge>}
                  </Group>
                </Table.Td>
                <Table.Td>{r.trigger}</Table.Td>
                <Table.Td ta="right">{formatCount(r.counts.members)}</Table.Td>
                {COUNT_LABELS.map(([key]) => (
                  <Table.Td key={key} ta="right" data-testid={`run-${key}`}>
                    {formatCount(r.counts[key] ?? 0)}
                  </Table.Td>
                ))}
                <Table.Td ta="right">{formatDuration(between(r.started_at, r.finished_at))}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea>
    </Stack>
  );
}

function CountGrid(props: { counts: Partial<RunCounts>; planned?: boolean; narrow?: boolean }) {
  const items: [string, number | undefined][] = props.planned
    ? [
        ["would add", props.counts.planned_added],
        ["would change", props.counts.planned_changed],
        ["would remove", props.counts.planned_removed],
        ["members", props.counts.members],
      ]
    : [
        ["members", props.counts.members],
        ["added", props.counts.added],
        ["changed", props.counts.changed],
        ["removed", props.counts.removed],
        ["rejected", props.counts.rejected],
        ["retried", props.counts.retried],
        ["removals held", props.counts.held_removals],
      ];
  return (
    <SimpleGrid cols={props.narrow ? 4 : { base: 2, sm: 4, lg: items.length }} spacing="xs">
      {items.map(([label, value]) => (
        <Paper withBorder p="sm" key={label} data-testid={`count-${label.replace(/ /g, "-")}`}>
          <Text size="xs" c="dimmed">
            {label}
          </Text>
          <Text fw={700} size="lg">
            {formatCount(value ?? 0)}
          </Text>
        </Paper>
      ))}
    </SimpleGrid>
  );
}

function DryRunResult(props: { result: DryRun }) {
  const r = props.result;
  const idle = !r.counts.planned_added && !r.counts.planned_changed && !r.counts.planned_removed;
  return (
    <Stack data-testid="dry-run-result">
      {r.error && <ErrorState error={new Error(r.error)} title="The dry run failed" />}
      <CountGrid counts={r.counts} planned />
      {!r.error && idle && (
        <Text size="sm" c="dimmed" data-testid="dry-run-nothing">
          Nothing would be sent: the destination already holds every member as the warehouse has them now.
        </Text>
      )}
      {Object.entries(r.samples ?? {}).map(([operation, rows]) =>
        rows.length ? (
          <Stack gap={4} key={operation}>
            <Text fw={600} size="sm">
              Sample of rows to {operation}
            </Text>
            <SampleTable rows={rows} />
          </Stack>
        ) : null,
      )}
      {!idle && Object.keys(r.samples ?? {}).length === 0 && (
        <Text size="sm" c="dimmed">
          No samples: seeing rows needs the data:view permission.
        </Text>
      )}
    </Stack>
  );
}

function SampleTable(props: { rows: Record<string, unknown>[] }) {
  const columns = Object.keys(props.rows[0] ?? {});
  return (
    <ScrollArea>
      <Table striped withTableBorder fz="xs">
        <Table.Thead>
          <Table.Tr>
            {columns.map((c) => (
              <Table.Th key={c}>{c}</Table.Th>
            ))}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {props.rows.map((row, i) => (
            <Table.Tr key={i}>
              {columns.map((c) => (
                <Table.Td key={c}>{formatValue(row[c])}</Table.Td>
              ))}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </ScrollArea>
  );
}

function Rejected(props: { name: string }) {
  const rejected = useQuery({ queryKey: keys.rejected(props.name), queryFn: () => api.syncs.rejected(props.name) });
  if (rejected.isPending) return <TableSkeleton />;
  if (rejected.error) return <ErrorState error={rejected.error} onRetry={() => rejected.refetch()} />;
  if (rejected.data.length === 0) {
    return <EmptyState title="No rejected rows" description="Rows the destination refuses show here with its reason; each is sent again by the next run." testId="rejected-empty" />;
  }
  return (
    <Table data-testid="rejected-table">
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Key</Table.Th>
          <Table.Th>Reason</Table.Th>
          <Table.Th ta="right">Attempts</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {rejected.data.map((r) => (
          <Table.Tr key={r.key}>
            <Table.Td className="mono">{r.key}</Table.Td>
            <Table.Td>{r.reason}</Table.Td>
            <Table.Td ta="right">{r.attempts}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function RunDrawer(props: { id: string | null; onClose: () => void }) {
  const id = props.id ?? "";
  const run = useQuery({
    queryKey: keys.run(id),
    queryFn: () => api.runs.get(id),
    enabled: Boolean(props.id),
    refetchInterval: (q) => (q.state.data && ACTIVE.has(q.state.data.status) ? 1500 : false),
  });
  const logs = useQuery({
    queryKey: keys.logs(id),
    queryFn: () => api.runs.logs(id),
    enabled: Boolean(props.id),
    refetchInterval: run.data && ACTIVE.has(run.data.status) ? 1500 : false,
  });
  const r = run.data;
  return (
    <Drawer opened={props.id !== null} onClose={props.onClose} position="right" size="xl" title={r ? `Run ${r.id.slice(0, 8)}` : "Run"}>
      {run.isPending ? (
        <TableSkeleton />
      ) : run.error ? (
        <ErrorState error={run.error} />
      ) : r ? (
        <Stack data-testid="run-detail">
          <Group>
            <StatusBadge status={r.status} />
            <Text size="sm" c="dimmed">
              {r.trigger}
              {r.triggered_by ? ` by ${r.triggered_by}` : ""}, started {formatTime(r.started_at)}, took {formatDuration(between(r.started_at, r.finished_at))}
            </Text>
          </Group>
          {r.error && <ErrorState error={new Error(r.error)} title="The run failed" />}
          <CountGrid counts={r.counts} narrow />
          <Text size="xs" c="dimmed">
            Planned: {formatCount(r.counts.planned_added)} to add, {formatCount(r.counts.planned_changed)} to change, {formatCount(r.counts.planned_removed)} to remove.
          </Text>
          {r.timings && Object.keys(r.timings).length > 0 && (
            <Group gap="xs">
              {Object.entries(r.timings).map(([phase, seconds]) => (
                <Badge key={phase} variant="default" style={{ textTransform: "none" }}>
                  {phase}: {formatDuration(seconds * 1000)}
                </Badge>
              ))}
            </Group>
          )}
          {(r.rejected?.length ?? 0) > 0 && (
            <>
              <Text fw={600} size="sm">
                Rejected rows (sample)
              </Text>
              <Table fz="sm">
                <Table.Tbody>
                  {r.rejected!.map((row) => (
                    <Table.Tr key={row.key}>
                      <Table.Td className="mono">{row.key}</Table.Td>
                      <Table.Td>{row.reason}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </>
          )}
          <Text fw={600} size="sm">
            Log
          </Text>
          {logs.data?.length ? (
            <CodeBlock code={logs.data.map((l) => `${l.at.slice(11, 19)} ${l.level.padEnd(7)} ${l.message}`).join("\n")} maxHeight={360} testId="run-log" wrap />
          ) : (
            <Text size="sm" c="dimmed">
              {logs.isPending ? "Loading…" : "No log lines."}
            </Text>
          )}
        </Stack>
      ) : null}
    </Drawer>
  );
}

const short = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });

function shortTime(iso: string | null | undefined): string {
  return iso ? short.format(new Date(iso)) : "—";
}
