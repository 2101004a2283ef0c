import {
  ActionIcon,
  Anchor,
  Badge,
  Button,
  Group,
  Menu,
  Stack,
  Table,
  Text,
  TextInput,
  Tooltip,
} from "@mantine/core";
import { IconCopy, IconDots, IconPlus, IconSearch, IconTrash, IconUsersGroup } from "@tabler/icons-react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate } from "react-router-dom";

import { api } from "../../api/endpoints";
import { keys, notifyDone } from "../../api/queries";
import type { AudienceSummary } from "../../api/types";
import { useCan } from "../../auth/auth";
import { ConfirmModal } from "../../components/ConfirmModal";
import { EmptyState, ErrorState, PageHeader, StatusBadge, TableSkeleton } from "../../components/common";
import { formatAgo, formatCount } from "../../components/format";

export function AudiencesPage() {
  const audiences = useQuery({ queryKey: keys.audiences, queryFn: api.audiences.list });
  const [search, setSearch] = useState("");
  const [deleting, setDeleting] = useState<AudienceSummary | null>(null);
  const can = useCan();
  const navigate = useNavigate();
  const queryClient = useQueryClient();

  const duplicate = useMutation({
    mutationFn: async (name: string) => {
      const { data } = await api.audiences.get(name);
      const taken = new Set((audiences.data ?? []).map((a) => a.name));
      let copy = `${name} (copy)`;
      for (let n = 2; taken.has(copy); n++) copy = `${name} (copy ${n})`;
      return api.audiences.create({ ...data.definition, name: copy });
    },
    onSuccess: (created) => {
      queryClient.invalidateQueries({ queryKey: keys.audiences });
      notifyDone(`Created ${created.name}`);
      navigate(`/audiences/${encodeURIComponent(created.name)}`);
    },
  });
  const remove = useMutation({
    mutationFn: (a: AudienceSummary) => api.audiences.remove(a.name, a.etag),
    onSuccess: (_r, a) => {
      setDeleting(null);
      notifyDone(`Deleted ${a.name}`);
      queryClient.invalidateQueries({ queryKey: keys.audiences });
    },
  });

  const newButton = can("audiences:edit") && (
    <Button leftSection={<IconPlus size={16} />} component={Link} to="/audiences/new" data-testid="new-audience">
      New audience
    </Button>
  );
  const rows = (audiences.data ?? []).filter(
    (a) => !search || `${a.name} ${a.description ?? ""}`.toLowerCase().includes(search.toLowerCase()),
  );

  return (
    <>
      <PageHeader
        title="Audiences"
        description="Groups of customers defined by conditions on their properties, related rows, events and traits. Corral measures them in your warehouse and keeps destinations in step through syncs."
        actions={newButton}
      />
      {audiences.isPending ? (
        <TableSkeleton />
      ) : audiences.error ? (
        <ErrorState error={audiences.error} onRetry={() => audiences.refetch()} />
      ) : audiences.data.length === 0 ? (
        <EmptyState
          icon={<IconUsersGroup size={40} stroke={1.2} />}
          title="No audiences yet"
          description="An audience selects customers: for example, everyone who spent 500 or more last year but has not ordered in 90 days. Build one and watch its size as you go."
          action={newButton}
          testId="audiences-empty"
        />
      ) : (
        <Stack>
          <TextInput
            placeholder="Filter by name or description"
            leftSection={<IconSearch size={16} />}
            value={search}
            onChange={(e) => setSearch(e.currentTarget.value)}
            maw={360}
            aria-label="Filter audiences"
            data-testid="audiences-filter"
          />
          <Table highlightOnHover verticalSpacing="sm" data-testid="audiences-table">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Audience</Table.Th>
                <Table.Th ta="right">Size</Table.Th>
                <Table.Th>Conditions</Table.Th>
                <Table.Th>Syncs</Table.Th>
                <Table.Th w={48} />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {rows.map((a) => (
                <Table.Tr key={a.name} data-testid="audience-row" data-name={a.name}>
                  <Table.Td>
                    <Anchor component={Link} to={`/audiences/${encodeURIComponent(a.name)}`} fw={600}>
                      {a.name}
                    </Anchor>
                    {a.description && (
                      <Text size="xs" c="dimmed" lineClamp={1}>
                        {a.description}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td ta="right">
                    {a.size == null ? (
                      <Tooltip label="Sizes are kept for 15 minutes after a preview. Open the audience to measure it.">
                        <Text size="sm" c="dimmed">
                          not measured
                        </Text>
                      </Tooltip>
                    ) : (
                      <Stack gap={0} align="flex-end">
                        <Text size="sm" fw={600}>
                          {formatCount(a.size)}
                        </Text>
                        <Text size="xs" c="dimmed">
                          {formatAgo(a.sized_at)}
                        </Text>
                      </Stack>
                    )}
                  </Table.Td>
                  <Table.Td>{a.conditions}</Table.Td>
                  <Table.Td>
                    {a.syncs.length === 0 ? (
                      <Text size="sm" c="dimmed">
                        not synced
                      </Text>
                    ) : (
                      <Group gap={6}>
                        {a.syncs.map((s) => (
                          <Tooltip key={s.name} label={`to ${s.destination}, last run ${formatAgo(s.finished_at)}`}>
                            <Badge
                              component={Link}
                              to={`/syncs/${encodeURIComponent(s.name)}`}
                              variant="default"
                              style={{ cursor: "pointer", textTransform: "none" }}
                              rightSection={<StatusBadge status={s.status} />}
                            >
                              {s.name}
                            </Badge>
                          </Tooltip>
                        ))}
                      </Group>
                    )}
                  </Table.Td>
                  <Table.Td>
                    {can("audiences:edit") && (
                      <Menu position="bottom-end" withinPortal>
                        <Menu.Target>
                          <ActionIcon variant="subtle" color="gray" aria-label={`Actions for ${a.name}`}>
                            <IconDots size={16} />
                          </ActionIcon>
                        </Menu.Target>
                        <Menu.Dropdown>
                          <Menu.Item leftSection={<IconCopy size={14} />} onClick={() => duplicate.mutate(a.name)}>
                            Duplicate
                          </Menu.Item>
                          <Menu.Item leftSection={<IconTrash size={14} />} color="red" onClick={() => setDeleting(a)}>
                            Delete
                          </Menu.Item>
                        </Menu.Dropdown>
                      </Menu>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          {rows.length === 0 && (
            <Text c="dimmed" size="sm">
              No audience matches “{search}”.
            </Text>
          )}
        </Stack>
      )}
      <ConfirmModal
        opened={deleting !== null}
        title={`Delete ${deleting?.name ?? ""}?`}
        message={
          deleting?.syncs.length
            ? `It is used by ${deleting.syncs.map((s) => s.name).join(", ")}; delete or change those syncs first.`
            : "Its file is removed from the workspace. Its versions are kept, so you can restore it later."
        }
        confirmLabel="Delete"
        loading={remove.isPending}
        onConfirm={() => deleting && remove.mutate(deleting)}
        onClose={() => setDeleting(null)}
      />
    </>
  );
}
