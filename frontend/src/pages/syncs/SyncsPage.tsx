import { Anchor, Button, Table, Text } from "@mantine/core";
import { IconArrowsExchange, IconPlus } from "@tabler/icons-react";
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";

import { api } from "../../api/endpoints";
import { keys } from "../../api/queries";
import { useCan } from "../../auth/auth";
import { EmptyState, ErrorState, PageHeader, StatusBadge, TableSkeleton } from "../../components/common";
import { formatAgo, formatCount } from "../../components/format";

export function SyncsPage() {
  const syncs = useQuery({ queryKey: keys.syncs, queryFn: api.syncs.list, refetchInterval: 15_000 });
  const can = useCan();
  const newButton = can("syncs:manage") && (
    <Button leftSection={<IconPlus size={16} />} component={Link} to="/syncs/new" data-testid="new-sync">
      New sync
    </Button>
  );
  return (
    <>
      <PageHeader
        title="Syncs"
        description="A sync keeps a destination in step with an audience (or a whole model): each run sends only what changed since the last one."
        actions={newButton}
      />
      {syncs.isPending ? (
        <TableSkeleton />
      ) : syncs.error ? (
        <ErrorState error={syncs.error} onRetry={() => syncs.refetch()} />
      ) : syncs.data.length === 0 ? (
        <EmptyState
          icon={<IconArrowsExchange size={40} stroke={1.2} />}
          title="No syncs yet"
          description="Pick an audience and a destination, map its fields, and choose when it runs."
          action={newButton}
          testId="syncs-empty"
        />
      ) : (
        <Table highlightOnHover verticalSpacing="sm" data-testid="syncs-table">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Sync</Table.Th>
              <Table.Th>From</Table.Th>
              <Table.Th>To</Table.Th>
              <Table.Th>Schedule</Table.Th>
              <Table.Th>Last run</Table.Th>
              <Table.Th ta="right">Members</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {syncs.data.map((s) => (
              <Table.Tr key={s.name} data-testid="sync-row" data-name={s.name}>
                <Table.Td>
                  <Anchor component={Link} to={`/syncs/${encodeURIComponent(s.name)}`} fw={600}>
                    {s.name}
                  </Anchor>
                  <Text size="xs" c="dimmed">
                    {s.definition.mode}
                  </Text>
                </Table.Td>
                <Table.Td>
                  {s.definition.audience ? (
                    <Anchor component={Link} to={`/audiences/${encodeURIComponent(s.definition.audience)}`} size="sm">
                      {s.definition.audience}
                    </Anchor>
                  ) : (
                    <Text size="sm">all {s.definition.model}</Text>
                  )}
                </Table.Td>
                <Table.Td>
                  <Text size="sm">{s.definition.destination}</Text>
                </Table.Td>
                <Table.Td>
                  <Text size="sm">{s.schedule}</Text>
                </Table.Td>
                <Table.Td>
                  <StatusBadge status={s.latest_run?.status} />
                  <Text size="xs" c="dimmed">
                    {s.latest_run ? formatAgo(s.latest_run.finished_at ?? s.latest_run.started_at ?? s.latest_run.queued_at) : ""}
                  </Text>
                </Table.Td>
                <Table.Td ta="right">{formatCount(s.latest_run?.counts.members)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </>
  );
}
