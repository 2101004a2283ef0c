import { Button, Group, ScrollArea, Table, Text } from "@mantine/core";
import { useInfiniteQuery } from "@tanstack/react-query";

import { api } from "../../api/endpoints";
import { keys } from "../../api/queries";
import { EmptyState, ErrorState, TableSkeleton } from "../../components/common";
import { formatValue } from "../../components/format";

/** Members by primary key, with their label columns; private values come masked. */
export function MembersPanel(props: { name: string; savedJson: string | null }) {
  const members = useInfiniteQuery({
    queryKey: [...keys.members(props.name), props.savedJson],
    queryFn: ({ pageParam }) => api.audiences.members(props.name, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  if (members.isPending) return <TableSkeleton />;
  if (members.error) return <ErrorState error={members.error} onRetry={() => members.refetch()} />;
  const first = members.data.pages[0];
  const rows = members.data.pages.flatMap((p) => p.items);
  if (rows.length === 0) {
    return <EmptyState title="No members" description="Nobody matches these conditions right now. Loosen a condition to see members here." />;
  }
  return (
    <>
      {first.redacted.length > 0 && (
        <Text size="xs" c="dimmed" mb="xs">
          Masked because the schema marks them private: {first.redacted.join(", ")}.
        </Text>
      )}
      <ScrollArea>
        <Table striped withTableBorder data-testid="members-table" fz="sm">
          <Table.Thead>
            <Table.Tr>
              {first.columns.map((c) => (
                <Table.Th key={c}>{c}</Table.Th>
              ))}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((row, i) => (
              <Table.Tr key={i}>
                {first.columns.map((c) => (
                  <Table.Td key={c}>{formatValue(row[c])}</Table.Td>
                ))}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea>
      <Group justify="space-between" mt="sm">
        <Text size="xs" c="dimmed">
          {rows.length} shown, in primary key order
        </Text>
        {members.hasNextPage && (
          <Button variant="default" size="xs" onClick={() => members.fetchNextPage()} loading={members.isFetchingNextPage}>
            Load more
          </Button>
        )}
      </Group>
    </>
  );
}
