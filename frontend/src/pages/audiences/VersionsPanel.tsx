import { Accordion, Badge, Button, Group, Text } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api } from "../../api/endpoints";
import { keys, notifyDone } from "../../api/queries";
import { CodeBlock, EmptyState, ErrorState, TableSkeleton } from "../../components/common";
import { formatTime } from "../../components/format";

export function VersionsPanel(props: { name: string; etag: string | null; readOnly: boolean }) {
  const queryClient = useQueryClient();
  const versions = useQuery({ queryKey: keys.versions(props.name), queryFn: () => api.audiences.versions(props.name) });
  const restore = useMutation({
    mutationFn: (version: number) => api.audiences.restore(props.name, version, props.etag),
    onSuccess: (_r, version) => {
      notifyDone(`Restored version ${version}`);
      queryClient.invalidateQueries({ queryKey: keys.audiences });
    },
  });
  if (versions.isPending) return <TableSkeleton />;
  if (versions.error) return <ErrorState error={versions.error} />;
  if (versions.data.items.length === 0) return <EmptyState title="No versions yet" description="Every save keeps a version here." />;
  const newest = versions.data.items[0].version;
  return (
    <Accordion variant="separated" data-testid="versions">
      {versions.data.items.map((v) => (
        <Accordion.Item key={v.version} value={String(v.version)}>
          <Accordion.Control>
            <Group gap="sm">
              <Text fw={600}>Version {v.version}</Text>
              <Badge variant="light" size="sm">{v.action}</Badge>
              {v.version === newest && <Badge color="teal" size="sm">current</Badge>}
              <Text size="sm" c="dimmed">
                {formatTime(v.saved_at)} {v.author ? `by ${v.author}` : ""}
              </Text>
            </Group>
          </Accordion.Control>
          <Accordion.Panel>
            <CodeBlock code={v.definition} maxHeight={300} />
            {!props.readOnly && v.version !== newest && (
              <Button mt="sm" size="xs" variant="light" onClick={() => restore.mutate(v.version)} loading={restore.isPending && restore.variables === v.version}>
                Restore this version
              </Button>
            )}
          </Accordion.Panel>
        </Accordion.Item>
      ))}
    </Accordion>
  );
}
