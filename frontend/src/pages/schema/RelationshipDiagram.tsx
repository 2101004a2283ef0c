/**
 * The relationship diagram: models as cards laid out from the parent outwards (layout.ts),
 * direct relationships as arrows labelled with their cardinality, and `through`
 * relationships as dashed violet paths that run below every model.
 */
import { Badge, Group, Text } from "@mantine/core";
import {
  Background,
  BaseEdge,
  Controls,
  EdgeLabelRenderer,
  Handle,
  MarkerType,
  Panel,
  Position,
  ReactFlow,
  getBezierPath,
  getSmoothStepPath,
  type Edge,
  type EdgeProps,
  type Node,
  type NodeProps,
} from "@xyflow/react";
import { useMemo } from "react";

import type { ModelSummary, Relationship } from "../../api/types";
import { NODE_HEIGHT, NODE_WIDTH, layoutSchema } from "./layout";

const KIND_COLORS: Record<string, string> = { parent: "indigo", event: "orange", related: "gray" };
const THROUGH_COLOR = "var(--mantine-color-violet-6)";

type ModelData = { model: ModelSummary };
type ThroughData = { laneY: number; label: string };

const hidden = { opacity: 0, width: 1, height: 1, minWidth: 0, minHeight: 0, border: 0 };

function ModelNode(props: NodeProps<Node<ModelData>>) {
  const m = props.data.model;
  const color = KIND_COLORS[m.kind] ?? "gray";
  return (
    <div
      style={{
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
        boxSizing: "border-box",
        padding: "8px 12px",
        borderRadius: 8,
        background: "var(--mantine-color-body)",
        border: `1px solid var(--mantine-color-${color}-${m.kind === "related" ? 4 : 6})`,
        borderLeftWidth: 4,
        boxShadow: "var(--mantine-shadow-xs)",
      }}
      data-testid="diagram-model"
      data-name={m.name}
    >
      <Handle type="target" position={Position.Left} id="left" style={hidden} />
      <Handle type="source" position={Position.Right} id="right" style={hidden} />
      <Handle type="source" position={Position.Bottom} id="bottom-out" style={hidden} />
      <Handle type="target" position={Position.Bottom} id="bottom-in" style={hidden} />
      <Group justify="space-between" wrap="nowrap" gap={6}>
        <Text fw={700} size="sm" truncate>
          {m.name}
        </Text>
        <Badge size="xs" variant={m.kind === "parent" ? "filled" : "light"} color={color}>
          {m.kind}
        </Badge>
      </Group>
      <Text size="xs" c="dimmed" truncate mt={2}>
        {m.table ?? "SQL query"}
      </Text>
      <Text size="xs" c="dimmed" truncate>
        key <span className="mono">{m.primary_key}</span>
      </Text>
    </div>
  );
}

/** A `through` relationship: down from the parent, along a lane below every model, up. */
function ThroughEdge(props: EdgeProps<Edge<ThroughData>>) {
  const { sourceX, sourceY, targetX, targetY, data } = props;
  const lane = data?.laneY ?? Math.max(sourceY, targetY) + 40;
  const r = 10;
  const dir = targetX >= sourceX ? 1 : -1;
  const path = [
    `M ${sourceX} ${sourceY}`,
    `L ${sourceX} ${lane - r}`,
    `Q ${sourceX} ${lane} ${sourceX + dir * r} ${lane}`,
    `L ${targetX - dir * r} ${lane}`,
    `Q ${targetX} ${lane} ${targetX} ${lane - r}`,
    `L ${targetX} ${targetY}`,
  ].join(" ");
  return (
    <>
      <BaseEdge
        id={props.id}
        path={path}
        markerEnd={props.markerEnd}
        style={{ stroke: THROUGH_COLOR, strokeWidth: 1.6, strokeDasharray: "6 4" }}
      />
      <EdgeLabelRenderer>
        <div
          className="nodrag nopan"
          style={{
            position: "absolute",
            transform: `translate(-50%, -50%) translate(${(sourceX + targetX) / 2}px, ${lane}px)`,
            background: "var(--mantine-color-body)",
            border: `1px dashed ${THROUGH_COLOR}`,
            color: THROUGH_COLOR,
            borderRadius: 6,
            padding: "2px 8px",
            fontSize: 12,
            whiteSpace: "nowrap",
          }}
        >
          {data?.label}
        </div>
      </EdgeLabelRenderer>
    </>
  );
}

type DirectData = { label: string | null; backwards: boolean };

/** A direct relationship: a right-angled arrow, its label just before the model it reaches
 * (so arrows that share a trunk keep their labels apart). */
function DirectEdge(props: EdgeProps<Edge<DirectData>>) {
  const { sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, data } = props;
  const [path] = data?.backwards
    ? getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition })
    : getSmoothStepPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, borderRadius: 8 });
  return (
    <>
      <BaseEdge id={props.id} path={path} markerEnd={props.markerEnd} style={{ strokeWidth: 1.5 }} />
      {data?.label && (
        <EdgeLabelRenderer>
          <div
            className="nodrag nopan"
            style={{
              position: "absolute",
              transform: `translate(-100%, -50%) translate(${targetX - 14}px, ${targetY - 12}px)`,
              background: "var(--mantine-color-body)",
              borderRadius: 4,
              padding: "0 4px",
              fontSize: 12,
              fontWeight: 500,
              whiteSpace: "nowrap",
            }}
          >
            {data.label}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
}

const nodeTypes = { model: ModelNode };
const edgeTypes = { through: ThroughEdge, direct: DirectEdge };

export function RelationshipDiagram(props: { models: ModelSummary[]; relationships: Relationship[] }) {
  const { nodes, edges } = useMemo(() => {
    const layout = layoutSchema(props.models, props.relationships);
    const byName = new Map(props.models.map((m) => [m.name, m]));
    const nodes: Node<ModelData>[] = layout.models.map((m) => ({
      id: m.name,
      type: "model",
      position: { x: m.x, y: m.y },
      data: { model: byName.get(m.name)! },
      width: NODE_WIDTH,
      height: NODE_HEIGHT,
    }));
    const edges: Edge[] = [
      ...layout.direct.map((e) => ({
        id: e.id,
        source: e.source,
        target: e.target,
        sourceHandle: "right",
        targetHandle: "left",
        type: "direct",
        data: {
          label: [e.name !== e.target ? e.name : null, e.cardinality].filter(Boolean).join(" · ") || null,
          backwards: e.backwards,
        },
        markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16 },
      })),
      ...layout.through.map((e) => ({
        id: e.id,
        source: e.source,
        target: e.target,
        sourceHandle: "bottom-out",
        targetHandle: "bottom-in",
        type: "through",
        data: { laneY: layout.laneY, label: `${e.name}: through ${e.path.join(" → ")}` },
        markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16, color: THROUGH_COLOR },
      })),
    ];
    return { nodes, edges };
  }, [props.models, props.relationships]);

  return (
    <ReactFlow
      nodes={nodes}
      edges={edges}
      nodeTypes={nodeTypes}
      edgeTypes={edgeTypes}
      fitView
      fitViewOptions={{ padding: 0.12, maxZoom: 1.1 }}
      minZoom={0.3}
      maxZoom={2}
      nodesConnectable={false}
      elementsSelectable={false}
      proOptions={{ hideAttribution: true }}
    >
      <Background gap={24} />
      <Controls showInteractive={false} />
      <Panel position="top-right">
        <Group gap={6}>
          <Badge size="sm" variant="filled" color="indigo">parent</Badge>
          <Badge size="sm" variant="light" color="gray">related</Badge>
          <Badge size="sm" variant="light" color="orange">event</Badge>
          <Badge size="sm" variant="outline" color="violet" style={{ borderStyle: "dashed" }}>through</Badge>
        </Group>
      </Panel>
    </ReactFlow>
  );
}
