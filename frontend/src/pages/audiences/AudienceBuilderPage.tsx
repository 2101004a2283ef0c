/**
 * The audience builder: the condition tree on the left, the live size on the right, and
 * below them what the saved audience looks like (breakdowns, members, SQL, versions).
 */
import { AreaChart } from "@mantine/charts";
import {
  Alert,
  Badge,
  Box,
  Button,
  Grid,
  Group,
  Loader,
  Menu,
  Paper,
  Progress,
  Stack,
  Tabs,
  Text,
  TextInput,
  Textarea,
  Tooltip,
} from "@mantine/core";
import { useDebouncedValue, useHotkeys } from "@mantine/hooks";
import { IconChartBar, IconCode, IconCopy, IconDots, IconHistory, IconTable, IconTrash } from "@tabler/icons-react";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useState } from "react";
import { useBlocker, useNavigate, useParams } from "react-router-dom";

import { ApiError } from "../../api/client";
import { api } from "../../api/endpoints";
import { errorText, keys, notifyDone } from "../../api/queries";
import type { Preview } from "../../api/types";
import { useCan } from "../../auth/auth";
import { BuilderContext, type BuilderSchema } from "../../audience/context";
import { TreeContext, type TreeActions } from "../../audience/editors/actions";
import { GroupEditor } from "../../audience/editors/ConditionTree";
import { type AudienceDraft, type ConditionNode, newDraft, newGroup } from "../../audience/model";
import { fromDefinition, toDefinition } from "../../audience/serialize";
import { addCondition, findProblems, moveNode, removeNode, updateNode, wrapInGroup } from "../../audience/tree";
import { ConfirmModal } from "../../components/ConfirmModal";
import { ErrorState, TableSkeleton } from "../../components/common";
import { formatCount, formatDuration, formatShare, formatTime } from "../../components/format";
import { BreakdownsPanel } from "./BreakdownsPanel";
import { MembersPanel } from "./MembersPanel";
import { SqlPanel } from "./SqlPanel";
import { VersionsPanel } from "./VersionsPanel";

export function AudienceBuilderPage() {
  const { name } = useParams();
  const existing = useQuery({
    queryKey: keys.audience(name ?? ""),
    queryFn: () => api.audiences.get(name!),
    enabled: Boolean(name),
    staleTime: 0,
  });
  const models = useQuery({ queryKey: keys.models, queryFn: api.schema.models });
  const relationships = useQuery({ queryKey: keys.relationships, queryFn: api.schema.relationships });
  const traits = useQuery({ queryKey: keys.traits, queryFn: api.schema.traits });
  const audiences = useQuery({ queryKey: keys.audiences, queryFn: api.audiences.list });

  const failed = existing.error ?? models.error ?? relationships.error ?? traits.error;
  if (failed) return <ErrorState error={failed} onRetry={() => { existing.refetch(); models.refetch(); relationships.refetch(); traits.refetch(); }} />;
  if ((name && !existing.data) || !models.data || !relationships.data || !traits.data) {
    return <TableSkeleton rows={8} testId="builder-loading" />;
  }
  const parent = models.data.find((m) => m.kind === "parent");
  if (!parent) {
    return <ErrorState error={new Error("The schema has no parent model")} title="The schema has no parent model: describe your customers under Schema first" />;
  }
  const schema: BuilderSchema = {
    parent: parent.name,
    models: models.data,
    relationships: relationships.data,
    traits: traits.data,
    audiences: (audiences.data ?? []).map((a) => a.name),
    self: name ?? null,
  };
  return (
    <BuilderContext.Provider value={schema}>
      <Builder key={`${name ?? "new"}:${existing.data?.etag ?? ""}`} name={name ?? null} saved={existing.data ?? null} parent={parent.name} />
    </BuilderContext.Provider>
  );
}

interface Saved {
  data: { name: string; definition: Parameters<typeof fromDefinition>[0]; etag: string };
  etag: string | null;
}

function Builder(props: { name: string | null; saved: Saved | null; parent: string }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const can = useCan();
  const readOnly = !can("audiences:edit");
  const [draft, setDraft] = useState<AudienceDraft>(() =>
    props.saved ? fromDefinition(props.saved.data.definition) : newDraft(),
  );
  const [etag, setEtag] = useState(props.saved?.etag ?? props.saved?.data.etag ?? null);
  const [savedJson, setSavedJson] = useState(() => (props.saved ? JSON.stringify(toDefinition(draft)) : null));
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [tab, setTab] = useState<string | null>("breakdowns");

  const definition = useMemo(() => toDefinition(draft), [draft]);
  const json = JSON.stringify(definition);
  const dirty = savedJson !== json && (savedJson !== null || draft.root.conditions.length > 0 || draft.name !== "");
  const problems = useMemo(() => findProblems(draft.root), [draft.root]);
  const nameProblem = !draft.name.trim() ? "Name the audience to save it" : null;

  // Live size: the unsaved definition, 400 ms after the last edit, once it is complete.
  const [debounced] = useDebouncedValue(json, 400);
  const live = useQuery({
    queryKey: ["live-preview", debounced],
    queryFn: ({ signal }) => {
      const body = JSON.parse(debounced) as typeof definition;
      return api.audiences.livePreview({ ...body, name: body.name || "Untitled audience" }, signal);
    },
    enabled: problems.length === 0,
    placeholderData: keepPreviousData,
    staleTime: 60_000,
    retry: false,
  });
  const updating = live.isFetching || debounced !== json;

  // A live preview of the saved definition is recorded as the audience's size.
  useEffect(() => {
    if (live.data && !dirty && props.name && !live.isFetching) {
      queryClient.invalidateQueries({ queryKey: keys.sizes(props.name) });
      queryClient.invalidateQueries({ queryKey: keys.audiences, exact: true });
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [live.data, live.isFetching]);

  const tree: TreeActions = useMemo(() => {
    const edit = (change: (root: AudienceDraft["root"]) => AudienceDraft["root"]) =>
      setDraft((d) => ({ ...d, root: change(d.root) }));
    const blockSizes = new Map<string, number>();
    for (const block of live.data?.blocks ?? []) {
      const node = draft.root.conditions[block.index - 1]; // blocks count from 1
      if (node) blockSizes.set(node.id, block.size);
    }
    return {
      update: (id, change) => edit((root) => updateNode(root, id, change as never)),
      remove: (id) => edit((root) => removeNode(root, id)),
      add: (groupId, node: ConditionNode) => edit((root) => addCondition(root, groupId, node)),
      move: (id, delta) => edit((root) => moveNode(root, id, delta)),
      wrap: (id) => edit((root) => wrapInGroup(root, id, () => newGroup())),
      problems: new Map(problems.map((p) => [p.id, p.message])),
      blockSizes: live.data && !updating ? blockSizes : new Map(),
      readOnly,
    };
  }, [problems, live.data, updating, draft.root.conditions, readOnly]);

  const save = useMutation({
    mutationFn: async () => {
      if (props.name) return api.audiences.put(props.name, definition, etag);
      return api.audiences.create(definition);
    },
    meta: { quiet: true },
    onSuccess: (saved) => {
      setSavedJson(json);
      setEtag(saved.etag);
      queryClient.invalidateQueries({ queryKey: keys.audiences });
      queryClient.setQueryData(keys.audience(saved.name), { data: saved, etag: saved.etag });
      notifyDone(`Saved ${saved.name}`);
      if (saved.name !== props.name) navigate(`/audiences/${encodeURIComponent(saved.name)}`, { replace: true });
    },
  });
  const duplicate = useMutation({
    mutationFn: () => api.audiences.create({ ...definition, name: `${draft.name} (copy)` }),
    onSuccess: (created) => {
      queryClient.invalidateQueries({ queryKey: keys.audiences });
      notifyDone(`Created ${created.name}; you are editing the copy`);
      navigate(`/audiences/${encodeURIComponent(created.name)}`);
    },
  });
  const remove = useMutation({
    mutationFn: () => api.audiences.remove(props.name!, etag),
    onSuccess: () => {
      setSavedJson(json);
      queryClient.invalidateQueries({ queryKey: keys.audiences });
      notifyDone(`Deleted ${props.name}`);
      navigate("/audiences");
    },
  });

  const canSave = !readOnly && !nameProblem && problems.length === 0 && (dirty || !props.name) && !save.isPending;
  const submit = useCallback(() => {
    if (canSave) save.mutate();
  }, [canSave, save]);
  useHotkeys([["mod+S", submit]], []);

  // Leaving with unsaved changes asks first.
  const blocker = useBlocker(({ currentLocation, nextLocation }) => dirty && !save.isPending && currentLocation.pathname !== nextLocation.pathname);
  useEffect(() => {
    const warn = (event: BeforeUnloadEvent) => {
      if (dirty) event.preventDefault();
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  const saveError = save.error ? errorText(save.error) : null;
  const stale = save.error instanceof ApiError && (save.error.status === 409 || save.error.status === 412);

  return (
    <TreeContext.Provider value={tree}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <Group justify="space-between" align="flex-start" mb="md" wrap="nowrap">
          <Stack gap={6} style={{ flex: 1 }} maw={720}>
            <TextInput
              aria-label="Audience name"
              placeholder="Name this audience, e.g. Lapsed high spenders"
              size="lg"
              variant="unstyled"
              fw={700}
              value={draft.name}
              onChange={(e) => {
                const value = e.currentTarget.value;
                setDraft((d) => ({ ...d, name: value }));
              }}
              data-testid="audience-name"
              autoFocus={!props.name}
              readOnly={readOnly}
              styles={{ input: { fontSize: 26, fontWeight: 700 } }}
            />
            <Textarea
              aria-label="Description"
              placeholder="What this audience is for (optional)"
              autosize
              minRows={1}
              variant="unstyled"
              value={draft.description}
              onChange={(e) => {
                const value = e.currentTarget.value;
                setDraft((d) => ({ ...d, description: value }));
              }}
              data-testid="audience-description"
              readOnly={readOnly}
            />
          </Stack>
          <Group gap="xs" wrap="nowrap">
            {dirty && (
              <Badge color="yellow" variant="light" data-testid="unsaved">
                unsaved changes
              </Badge>
            )}
            {!readOnly && (
              <Tooltip
                label={nameProblem ?? (problems.length ? `Finish the conditions first: ${problems[0].message}` : "Save (Ctrl+S)")}
              >
                <Button type="submit" loading={save.isPending} disabled={!canSave} data-testid="save-audience">
                  {props.name ? "Save" : "Create audience"}
                </Button>
              </Tooltip>
            )}
            {props.name && (
              <Menu position="bottom-end" withinPortal>
                <Menu.Target>
                  <Button variant="default" px="xs" aria-label="More actions" data-testid="audience-menu">
                    <IconDots size={18} />
                  </Button>
                </Menu.Target>
                <Menu.Dropdown>
                  <Menu.Item leftSection={<IconCopy size={14} />} onClick={() => duplicate.mutate()} disabled={readOnly} data-testid="duplicate-audience">
                    Duplicate
                  </Menu.Item>
                  <Menu.Item leftSection={<IconHistory size={14} />} onClick={() => setTab("versions")}>
                    Versions
                  </Menu.Item>
                  <Menu.Divider />
                  <Menu.Item leftSection={<IconTrash size={14} />} color="red" onClick={() => setConfirmDelete(true)} disabled={readOnly} data-testid="delete-audience">
                    Delete
                  </Menu.Item>
                </Menu.Dropdown>
              </Menu>
            )}
          </Group>
        </Group>
        {saveError && (
          <Alert color="red" mb="md" title={saveError.title} data-testid="save-error" withCloseButton onClose={() => save.reset()}>
            {saveError.message}
            {stale && (
              <Text size="sm" mt={4}>
                Someone else saved this audience since you opened it. Copy your changes, then reload to see theirs.{" "}
                <Button size="compact-xs" variant="white" onClick={() => window.location.reload()}>
                  Reload
                </Button>
              </Text>
            )}
          </Alert>
        )}
      </form>

      <Grid gutter="lg">
        <Grid.Col span={{ base: 12, md: 8 }}>
          <Paper withBorder p="md" radius="md">
            <GroupEditor group={draft.root} model={props.parent} top />
          </Paper>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 4 }}>
          <Box pos="sticky" top={72}>
            <SizeCard preview={live.data} error={live.error} updating={updating && problems.length === 0} problems={problems.length} />
            {props.name && <SizeHistory name={props.name} />}
          </Box>
        </Grid.Col>
      </Grid>

      {props.name && (
        <Paper withBorder p="md" radius="md" mt="lg">
          {dirty && (
            <Text size="xs" c="dimmed" mb="xs">
              These show the saved audience; save to see your changes here.
            </Text>
          )}
          <Tabs value={tab} onChange={setTab} keepMounted={false}>
            <Tabs.List>
              <Tabs.Tab value="breakdowns" leftSection={<IconChartBar size={15} />} data-testid="tab-breakdowns">
                Breakdowns
              </Tabs.Tab>
              <Tabs.Tab value="members" leftSection={<IconTable size={15} />} data-testid="tab-members">
                Sample members
              </Tabs.Tab>
              <Tabs.Tab value="sql" leftSection={<IconCode size={15} />} data-testid="tab-sql">
                SQL
              </Tabs.Tab>
              <Tabs.Tab value="versions" leftSection={<IconHistory size={15} />} data-testid="tab-versions">
                Versions
              </Tabs.Tab>
            </Tabs.List>
            <Box pt="md">
              <Tabs.Panel value="breakdowns">
                <BreakdownsPanel name={props.name} parent={props.parent} savedJson={savedJson} />
              </Tabs.Panel>
              <Tabs.Panel value="members">
                <MembersPanel name={props.name} savedJson={savedJson} />
              </Tabs.Panel>
              <Tabs.Panel value="sql">
                <SqlPanel name={props.name} savedJson={savedJson} />
              </Tabs.Panel>
              <Tabs.Panel value="versions">
                <VersionsPanel name={props.name} etag={etag} readOnly={readOnly} />
              </Tabs.Panel>
            </Box>
          </Tabs>
        </Paper>
      )}

      <ConfirmModal
        opened={confirmDelete}
        title={`Delete ${props.name}?`}
        message="Its file is removed from the workspace; its versions are kept, so it can be restored. Syncs or audiences that use it must be changed first."
        confirmLabel="Delete"
        loading={remove.isPending}
        onConfirm={() => remove.mutate()}
        onClose={() => setConfirmDelete(false)}
      />
      <ConfirmModal
        opened={blocker.state === "blocked"}
        title="Leave without saving?"
        message="Your changes to this audience are not saved and will be lost."
        confirmLabel="Leave"
        onConfirm={() => blocker.proceed?.()}
        onClose={() => blocker.reset?.()}
      />
    </TreeContext.Provider>
  );
}

function SizeCard(props: { preview: Preview | undefined; error: unknown; updating: boolean; problems: number }) {
  const p = props.preview;
  return (
    <Paper withBorder p="md" radius="md" data-testid="size-card">
      <Group justify="space-between">
        <Text size="sm" c="dimmed" fw={500}>
          Audience size
        </Text>
        {props.updating && <Loader size="xs" data-testid="size-updating" />}
      </Group>
      {props.error ? (
        <Box mt="xs">
          <ErrorState error={props.error} title="Cannot measure this audience yet" />
        </Box>
      ) : p ? (
        <Box mt={4} style={{ opacity: props.updating ? 0.6 : 1, transition: "opacity 120ms" }}>
          <Text fz={34} fw={700} lh={1.2} data-testid="audience-size" data-size={p.size}>
            {formatCount(p.size)}
          </Text>
          <Text size="sm" c="dimmed">
            {formatShare(p.share)} of {formatCount(p.parent_rows)} customers
          </Text>
          <Progress value={p.share * 100} mt="sm" size="sm" aria-label="Share of all customers" />
          <Text size="xs" c="dimmed" mt="sm">
            Measured in {formatDuration(p.total_ms)} in the warehouse ({p.dialect}), as of{" "}
            {new Date(p.as_of).toLocaleString()} {p.time_zone}.
          </Text>
        </Box>
      ) : (
        <Text size="sm" c="dimmed" mt="xs">
          {props.problems ? "Finish the highlighted conditions to see the size." : "Measuring…"}
        </Text>
      )}
      {p && props.problems > 0 && (
        <Text size="xs" c="orange" mt="xs">
          Showing the last complete version: {props.problems} condition{props.problems > 1 ? "s" : ""} still to fill in.
        </Text>
      )}
    </Paper>
  );
}

/** The audience's measured sizes over time, from every preview that measured it. */
function SizeHistory(props: { name: string }) {
  const sizes = useQuery({ queryKey: keys.sizes(props.name), queryFn: () => api.audiences.sizes(props.name) });
  const points = useMemo(
    () =>
      [...(sizes.data ?? [])]
        .reverse()
        .map((s) => ({ at: formatTime(s.measured_at), size: s.size, current: s.current })),
    [sizes.data],
  );
  if (!sizes.data || points.length < 2) return null;
  const changed = points.some((p) => !p.current);
  const steady = points.every((p) => p.size === points[0].size);
  return (
    <Paper withBorder p="md" radius="md" mt="md" data-testid="size-history">
      <Group justify="space-between" mb={4}>
        <Text size="sm" c="dimmed" fw={500}>
          Size over time
        </Text>
        <Text size="xs" c="dimmed">
          {points.length} measures
        </Text>
      </Group>
      {steady ? (
        <Text size="sm">
          {formatCount(points[0].size)} at every measure since {points[0].at}.
        </Text>
      ) : (
        <AreaChart
          h={110}
          data={points}
          dataKey="at"
          series={[{ name: "size", label: "Members", color: "indigo.6" }]}
          curveType="stepAfter"
          withXAxis={false}
          gridAxis="none"
          yAxisProps={{ width: 48, domain: ["auto", "auto"] }}
          valueFormatter={(v) => formatCount(v)}
          withDots={points.length <= 30}
        />
      )}
      {changed && (
        <Text size="xs" c="dimmed" mt={4}>
          Includes sizes measured on earlier versions of the definition.
        </Text>
      )}
    </Paper>
  );
}
