/**
 * Immutable edits of the condition tree, addressed by node id. Every nested group is
 * reached: groups' conditions, relation and event `where`s, and sequence steps' `where`s.
 */
import type { ConditionNode, GroupNode, SequenceStepNode } from "./model";
import { valueProblem } from "./operators";

type AnyNode = ConditionNode | SequenceStepNode;

function isGroup(node: AnyNode): node is GroupNode {
  return "kind" in node && node.kind === "group";
}

/** Apply `change` to the node with `id`, wherever it is; other nodes are shared. */
export function updateNode<T extends AnyNode>(
  root: GroupNode, id: string, change: (node: T) => AnyNode,
): GroupNode {
  return mapGroup(root, (node) => (node.id === id ? change(node as T) : node));
}

function mapGroup(group: GroupNode, visit: (node: AnyNode) => AnyNode): GroupNode {
  const self = visit(group) as GroupNode;
  return { ...self, conditions: self.conditions.map((c) => mapCondition(c, visit)) };
}

function mapWhere(where: GroupNode | null, visit: (node: AnyNode) => AnyNode): GroupNode | null {
  return where ? mapGroup(where, visit) : null;
}

function mapCondition(node: ConditionNode, visit: (node: AnyNode) => AnyNode): ConditionNode {
  if (node.kind === "group") return mapGroup(node, visit);
  const self = visit(node) as ConditionNode;
  switch (self.kind) {
    case "relation":
    case "event":
      return { ...self, where: mapWhere(self.where, visit) };
    case "sequence":
      return {
        ...self,
        steps: self.steps.map((step) => {
          const s = visit(step) as SequenceStepNode;
          return { ...s, where: mapWhere(s.where, visit) };
        }),
      };
    default:
      return self;
  }
}

export function addCondition(root: GroupNode, groupId: string, node: ConditionNode): GroupNode {
  return updateNode<GroupNode>(root, groupId, (g) => ({ ...g, conditions: [...g.conditions, node] }));
}

/** Remove a condition from whichever group holds it. */
export function removeNode(root: GroupNode, id: string): GroupNode {
  return mapGroup(root, (node) =>
    isGroup(node) ? { ...node, conditions: node.conditions.filter((c) => c.id !== id) } : node,
  );
}

/** Move a condition up (-1) or down (+1) inside its group. */
export function moveNode(root: GroupNode, id: string, delta: -1 | 1): GroupNode {
  return mapGroup(root, (node) => {
    if (!isGroup(node)) return node;
    const index = node.conditions.findIndex((c) => c.id === id);
    const target = index + delta;
    if (index < 0 || target < 0 || target >= node.conditions.length) return node;
    const conditions = [...node.conditions];
    [conditions[index], conditions[target]] = [conditions[target], conditions[index]];
    return { ...node, conditions };
  });
}

/** Replace a condition by a group holding it, to combine it with others. */
export function wrapInGroup(root: GroupNode, id: string, makeGroup: () => GroupNode): GroupNode {
  const parent = findParent(root, id);
  if (!parent) return root;
  return updateNode<GroupNode>(root, parent.id, (group) => ({
    ...group,
    conditions: group.conditions.map((c) =>
      c.id === id ? { ...makeGroup(), match: group.match === "all" ? "any" : "all", conditions: [c] } : c,
    ),
  }));
}

/** The group that directly holds the condition `id`. */
export function findParent(root: GroupNode, id: string): GroupNode | null {
  let found: GroupNode | null = null;
  mapGroup(root, (node) => {
    if (isGroup(node) && node.conditions.some((c) => c.id === id)) found = node;
    return node;
  });
  return found;
}

/** Count every condition (not groups) in the tree, nested ones included. */
export function countConditions(group: GroupNode): number {
  let count = 0;
  for (const c of group.conditions) {
    if (c.kind === "group") count += countConditions(c);
    else count += 1 + (("where" in c && c.where) ? countConditions(c.where) : 0);
  }
  return count;
}

export interface Problem {
  id: string;
  message: string;
}

/** What must still be filled in before the tree can be previewed or saved. */
export function findProblems(group: GroupNode, out: Problem[] = []): Problem[] {
  for (const node of group.conditions) {
    switch (node.kind) {
      case "group":
        findProblems(node, out);
        break;
      case "property":
      case "trait": {
        const name = node.kind === "property" ? node.column : node.trait;
        if (!name) out.push({ id: node.id, message: `pick a ${node.kind === "property" ? "column" : "trait"}` });
        else {
          const problem = valueProblem(node.operator, node.value);
          if (problem) out.push({ id: node.id, message: problem });
        }
        break;
      }
      case "relation":
      case "event":
        if (node.kind === "relation" && !node.relation) out.push({ id: node.id, message: "pick a relation" });
        if (node.kind === "event" && !node.event && !node.model) out.push({ id: node.id, message: "pick an event" });
        if (node.aggregate && node.aggregate.function !== "count" && !node.aggregate.column)
          out.push({ id: node.id, message: `pick the column to ${node.aggregate.function.replace("_", " ")}` });
        if (node.operator) {
          const problem = valueProblem(node.operator, node.value, "decimal");
          if (problem) out.push({ id: node.id, message: problem });
        }
        if (node.where) findProblems(node.where, out);
        break;
      case "sequence":
        node.steps.forEach((step, index) => {
          if (!step.event) out.push({ id: step.id, message: `pick the event of step ${index + 1}` });
          if (!step.performed && !step.within)
            out.push({ id: step.id, message: "a step that must not happen needs a time limit" });
          if (step.where) findProblems(step.where, out);
        });
        break;
      case "audience":
        if (!node.audience) out.push({ id: node.id, message: "pick an audience" });
        break;
    }
  }
  return out;
}
