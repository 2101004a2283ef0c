import {
  ActionIcon,
  Anchor,
  Badge,
  Button,
  Group,
  Loader,
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
import { errorText, keys, notifyDone } from "../../api/queries";
import type { AudienceSummary } from "../../api/types";
import { useCan } from "../../auth/auth";
import { ConfirmModal } from "../../components/ConfirmModal";
import { EmptyState, ErrorState, PageHeader, StatusBadge, TableSkeleton } from "../../components/common";
import { formatAgo, formatCount, formatShare, formatTime } from "../../components/format";
import { useNow } from "../../components/useNow";
import { type Measuring, useBackgroundMeasure } from "./measure";

export function AudiencesPage() {
  const audiences = useQuery({ queryKey: keys.audiences, queryFn: api.audiences.list });
  const [search, setSearch] = useState("");
  const [deleting, setDeleting] = useState<AudienceSummary | null>(null);
  const can = useCan();
  const now = useNow();
  const measuring = useBackgroundMeasure(audiences.data, !audiences.isFetching);
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
                <Table.Th ta="right" w={170}>
                  Size
                </Table.Th>
                <Table.Th ta="right" w={110}>
                  Conditions
                </Table.Th>
                <Table.Th w={400}>Syncs</Table.Th>
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
                    <SizeCell audience={a} measuring={measuring} now={now} />
                  </Table.Td>
                  <Table.Td ta="right">{a.conditions}</Table.Td>
                  <Table.Td>
                    {a.syncs.length === 0 ? (
                      <Text size="sm" c="dimmed">
                        not synced
                      </Text>
                    ) : (
                      <Stack gap={4}>
                        {a.syncs.map((s) => (
                          <Group key={s.name} gap={6} wrap="nowrap">
                            <div style={{ flexShrink: 0 }}>
                              <StatusBadge status={s.status} />
                            </div>
                            <Tooltip label={`Sync to ${s.destination}${s.finished_at ? `, last run ${formatTime(s.finished_at)}` : ", never ran"}`}>
                              <Anchor component={Link} to={`/syncs/${encodeURIComponent(s.name)}`} size="sm" lineClamp={1}>
                                {s.name}
                              </Anchor>
                            </Tooltip>
                            {s.finished_at && (
                              <Text size="xs" c="dimmed" style={{ whiteSpace: "nowrap" }}>
                                {formatAgo(s.finished_at, now, true)}
                              </Text>
                            )}
                          </Group>
                        ))}
                      </Stack>
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

const SOURCES: Record<string, string> = {
  studio: "in the studio",
  cli: "by corral audience preview",
  demo: "by corral demo",
  sync: "by a sync run",
};

/** The size column: the latest size and how fresh it is; a stale one greyed, a loader while measuring. */
function SizeCell(props: { audience: AudienceSummary; measuring: Measuring; now: number }) {
  const a = props.audience;
  const running = props.measuring.running.has(a.name);
  const waiting = props.measuring.queued.has(a.name);
  const failed = props.measuring.failed.get(a.name);
  const status = running ? (
    <Group gap={4} justify="flex-end" wrap="nowrap" data-testid="size-measuring" style={{ whiteSpace: "nowrap" }}>
      <Loader size={12} />
      <Text size="xs" c="dimmed">
        measuring…
      </Text>
    </Group>
  ) : waiting ? (
    <Text size="xs" c="dimmed">
      waiting to measure
    </Text>
  ) : null;

  if (a.size == null) {
    return (
      <Stack gap={0} align="flex-end" data-testid="audience-size-cell" data-size="">
        {status ??
          (failed ? (
            <Tooltip label={`${errorText(failed).title}. ${errorText(failed).message}`} multiline w={320}>
              <Text size="sm" c="red.7">
                could not measure
              </Text>
            </Tooltip>
          ) : (
            <Text size="sm" c="dimmed">
              not measured
            </Text>
          ))}
      </Stack>
    );
  }

  const share = a.parent_rows ? a.size / a.parent_rows : null;
  const detail = [
    share != null ? `${formatShare(share)} of ${formatCount(a.parent_rows)} customers` : null,
    a.size_as_of ? `as of ${formatTime(a.size_as_of)}` : null,
    `measured ${formatTime(a.sized_at)} ${SOURCES[a.size_source ?? ""] ?? ""}`.trim(),
  ]
    .filter(Boolean)
    .join(", ");
  const label = a.size_stale
    ? `Measured on an earlier definition: the audience (or one it uses) changed since. ${detail}.`
    : `${detail}.`;
  return (
    <Tooltip label={label} multiline w={320} position="left">
      <Stack gap={0} align="flex-end" data-testid="audience-size-cell" data-size={a.size} data-stale={a.size_stale ? "true" : "false"}>
        <Group gap={6} wrap="nowrap">
          {a.size_stale && (
            <Badge size="xs" variant="light" color="gray">
              stale
            </Badge>
          )}
          <Text size="sm" fw={600} c={a.size_stale ? "dimmed" : undefined}>
            {formatCount(a.size)}
          </Text>
        </Group>
        {status ?? (
          <Text size="xs" c="dimmed" style={{ whiteSpace: "nowrap" }}>
            {share != null && `${formatShare(share)} · `}measured {formatAgo(a.sized_at, props.now)}
          </Text>
        )}
      </Stack>
    </Tooltip>
  );
}
