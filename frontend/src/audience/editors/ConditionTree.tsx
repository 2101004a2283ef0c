/**
 * The condition tree editor: a group holds conditions and groups to any depth; each
 * condition has its own editor by kind. Keyboard: every control is a labelled input or
 * button in reading order; Alt+↑/↓ on a condition moves it.
 */
import {
  ActionIcon,
  Badge,
  Box,
  Button,
  Group,
  Menu,
  Paper,
  SegmentedControl,
  Stack,
  Switch,
  Text,
  Tooltip,
} from "@mantine/core";
import {
  IconArrowDown,
  IconArrowUp,
  IconBolt,
  IconBrackets,
  IconChevronDown,
  IconLink,
  IconListDetails,
  IconPlus,
  IconRoute,
  IconSparkles,
  IconTrash,
  IconUsersGroup,
} from "@tabler/icons-react";
import type { KeyboardEvent, ReactNode } from "react";

import { formatCount } from "../../components/format";
import { type ConditionKind, type ConditionNode, type GroupNode, newCondition } from "../model";
import { useTree } from "./actions";
import {
  AudienceEditor,
  EventEditor,
  PropertyEditor,
  RelationEditor,
  SequenceEditor,
  TraitEditor,
} from "./KindEditors";

export const KIND_INFO: Record<ConditionKind, { label: string; description: string; icon: ReactNode }> = {
  property: { label: "Property", description: "A column of the customer (or of the row being filtered)", icon: <IconListDetails size={16} /> },
  relation: { label: "Related rows", description: "Has (or has no) related rows; their count or a total", icon: <IconLink size={16} /> },
  event: { label: "Event", description: "Did (or did not) do something, how often, when", icon: <IconBolt size={16} /> },
  sequence: { label: "Sequence", description: "Events in order, each within a time of the last", icon: <IconRoute size={16} /> },
  trait: { label: "Trait", description: "A computed value, such as order count", icon: <IconSparkles size={16} /> },
  audience: { label: "Audience", description: "Members (or not) of another audience", icon: <IconUsersGroup size={16} /> },
  group: { label: "Group", description: "All or any of several conditions, to combine and/or", icon: <IconBrackets size={16} /> },
};

const PARENT_KINDS: ConditionKind[] = ["property", "relation", "event", "sequence", "trait", "audience", "group"];
const NESTED_KINDS: ConditionKind[] = ["property", "relation", "group"];

/**
 * A group of conditions. `model` is the model its conditions apply to; `top` marks the
 * audience's own top-level group (which shows per-block sizes and allows every kind).
 */
export function GroupEditor(props: {
  group: GroupNode;
  model: string;
  top?: boolean;
  depth?: number;
  onRemove?: () => void;
  title?: string;
  /** A `where` group on related or event rows: only property, relation and group conditions. */
  rows?: boolean;
}) {
  const tree = useTree();
  const { group, model } = props;
  const depth = props.depth ?? 0;
  const kinds = props.rows ? NESTED_KINDS : PARENT_KINDS;
  const joiner = group.match === "all" ? "and" : "or";
  const setGroup = (change: Partial<GroupNode>) => tree.update<GroupNode>(group.id, (g) => ({ ...g, ...change }));

  return (
    <Paper
      withBorder={!props.top}
      p={props.top ? 0 : "sm"}
      className={props.top ? undefined : "group-card"}
      data-negate={group.negate}
      data-testid={props.top ? "condition-root" : "condition-group"}
      data-group-id={group.id}
    >
      <Group justify="space-between" mb="xs" wrap="nowrap">
        <Group gap="xs" wrap="wrap">
          <Text size="sm" fw={500}>
            {props.title ?? (props.top ? "Customers who match" : "Match")}
          </Text>
          <SegmentedControl
            size="xs"
            aria-label="Match all or any"
            data-testid="group-match"
            data={[
              { value: "all", label: "all of" },
              { value: "any", label: "any of" },
            ]}
            value={group.match}
            onChange={(v) => setGroup({ match: v as "all" | "any" })}
            disabled={tree.readOnly}
          />
          <Text size="sm" c="dimmed">
            these conditions
          </Text>
          <Switch
            size="xs"
            label="exclude them instead"
            checked={group.negate}
            onChange={(e) => setGroup({ negate: e.currentTarget.checked })}
            data-testid="group-negate"
            disabled={tree.readOnly}
          />
        </Group>
        {props.onRemove && !tree.readOnly && (
          <Tooltip label="Remove this group">
            <ActionIcon variant="subtle" color="gray" onClick={props.onRemove} aria-label="Remove group">
              <IconTrash size={16} />
            </ActionIcon>
          </Tooltip>
        )}
      </Group>
      <Stack gap={6}>
        {group.conditions.length === 0 && (
          <Text size="sm" c="dimmed" py={4}>
            {props.top
              ? "No conditions yet: everyone is in. Add a condition to narrow it down."
              : "No conditions yet. Add one below."}
          </Text>
        )}
        {group.conditions.map((node, index) => (
          <Box key={node.id}>
            {index > 0 && (
              <Text size="xs" fw={700} c={group.negate ? "red" : "indigo"} tt="uppercase" py={2} pl={4}>
                {joiner}
              </Text>
            )}
            <ConditionCard
              node={node}
              model={model}
              depth={depth}
              first={index === 0}
              last={index === group.conditions.length - 1}
              blockSize={props.top ? tree.blockSizes.get(node.id) : undefined}
              rows={props.rows}
            />
          </Box>
        ))}
      </Stack>
      {!tree.readOnly && <AddCondition groupId={group.id} kinds={kinds} />}
    </Paper>
  );
}

function AddCondition(props: { groupId: string; kinds: ConditionKind[] }) {
  const tree = useTree();
  return (
    <Menu position="bottom-start" withinPortal>
      <Menu.Target>
        <Button
          variant="light"
          size="xs"
          mt="sm"
          leftSection={<IconPlus size={14} />}
          rightSection={<IconChevronDown size={14} />}
          data-testid="add-condition"
          data-group-id={props.groupId}
        >
          Add condition
        </Button>
      </Menu.Target>
      <Menu.Dropdown>
        {props.kinds.map((kind) => (
          <Menu.Item
            key={kind}
            leftSection={KIND_INFO[kind].icon}
            onClick={() => tree.add(props.groupId, newCondition(kind))}
            data-testid={`add-${kind}`}
          >
            <Text size="sm">{KIND_INFO[kind].label}</Text>
            <Text size="xs" c="dimmed">
              {KIND_INFO[kind].description}
            </Text>
          </Menu.Item>
        ))}
      </Menu.Dropdown>
    </Menu>
  );
}

function ConditionCard(props: {
  node: ConditionNode;
  model: string;
  depth: number;
  first: boolean;
  last: boolean;
  blockSize?: number;
  rows?: boolean;
}) {
  const tree = useTree();
  const { node } = props;
  const problem = tree.problems.get(node.id);

  const onKeyDown = (event: KeyboardEvent) => {
    if (!event.altKey || tree.readOnly) return;
    if (event.key === "ArrowUp" && !props.first) {
      event.preventDefault();
      tree.move(node.id, -1);
    } else if (event.key === "ArrowDown" && !props.last) {
      event.preventDefault();
      tree.move(node.id, 1);
    }
  };

  if (node.kind === "group") {
    return (
      <Box onKeyDown={onKeyDown}>
        <Group gap={4} justify="flex-end" mb={-4}>
          {props.blockSize !== undefined && <BlockSize size={props.blockSize} />}
        </Group>
        <GroupEditor group={node} model={props.model} depth={props.depth + 1} rows={props.rows} onRemove={() => tree.remove(node.id)} />
      </Box>
    );
  }

  return (
    <Paper
      withBorder
      p="sm"
      className="condition-card"
      data-problem={Boolean(problem)}
      data-testid="condition"
      data-kind={node.kind}
      data-node-id={node.id}
      onKeyDown={onKeyDown}
    >
      <Group justify="space-between" align="flex-start" wrap="nowrap" gap="xs">
        <Box style={{ flex: 1, minWidth: 0 }}>
          <Group gap={6} mb={6}>
            <Badge size="xs" variant="light" leftSection={KIND_INFO[node.kind].icon}>
              {KIND_INFO[node.kind].label}
            </Badge>
            {problem && (
              <Text size="xs" c="orange" data-testid="condition-problem">
                {problem}
              </Text>
            )}
          </Group>
          <KindEditor node={node} model={props.model} depth={props.depth} />
        </Box>
        <Group gap={2} wrap="nowrap">
          {props.blockSize !== undefined && <BlockSize size={props.blockSize} />}
          {!tree.readOnly && (
            <>
              <Tooltip label="Move up (Alt+↑)">
                <ActionIcon variant="subtle" color="gray" disabled={props.first} onClick={() => tree.move(node.id, -1)} aria-label="Move up">
                  <IconArrowUp size={15} />
                </ActionIcon>
              </Tooltip>
              <Tooltip label="Move down (Alt+↓)">
                <ActionIcon variant="subtle" color="gray" disabled={props.last} onClick={() => tree.move(node.id, 1)} aria-label="Move down">
                  <IconArrowDown size={15} />
                </ActionIcon>
              </Tooltip>
              <Tooltip label="Put in a group, to combine it with others by and/or">
                <ActionIcon variant="subtle" color="gray" onClick={() => tree.wrap(node.id)} aria-label="Wrap in a group">
                  <IconBrackets size={15} />
                </ActionIcon>
              </Tooltip>
              <Tooltip label="Remove">
                <ActionIcon variant="subtle" color="red" onClick={() => tree.remove(node.id)} aria-label="Remove condition" data-testid="remove-condition">
                  <IconTrash size={15} />
                </ActionIcon>
              </Tooltip>
            </>
          )}
        </Group>
      </Group>
    </Paper>
  );
}

function BlockSize(props: { size: number }) {
  return (
    <Tooltip label="Customers this condition selects on its own">
      <Badge variant="outline" color="gray" size="sm" data-testid="block-size">
        {formatCount(props.size)}
      </Badge>
    </Tooltip>
  );
}

function KindEditor(props: { node: ConditionNode; model: string; depth: number }) {
  const { node } = props;
  switch (node.kind) {
    case "property":
      return <PropertyEditor node={node} model={props.model} />;
    case "relation":
      return <RelationEditor node={node} model={props.model} depth={props.depth} />;
    case "event":
      return <EventEditor node={node} depth={props.depth} />;
    case "sequence":
      return <SequenceEditor node={node} depth={props.depth} />;
    case "trait":
      return <TraitEditor node={node} />;
    case "audience":
      return <AudienceEditor node={node} />;
    case "group":
      return null;
  }
}
