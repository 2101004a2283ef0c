import { createContext, useContext } from "react";

import type { ConditionNode, GroupNode, SequenceStepNode } from "../model";

/** How editors change the tree, and what they show next to themselves. */
export interface TreeActions {
  update: <T extends ConditionNode | SequenceStepNode>(id: string, change: (node: T) => ConditionNode | SequenceStepNode) => void;
  remove: (id: string) => void;
  add: (groupId: string, node: ConditionNode) => void;
  move: (id: string, delta: -1 | 1) => void;
  wrap: (id: string) => void;
  problems: Map<string, string>;
  /** Size of each top-level condition on its own, by node id. */
  blockSizes: Map<string, number>;
  readOnly: boolean;
}

export const TreeContext = createContext<TreeActions | null>(null);

export function useTree(): TreeActions {
  const value = useContext(TreeContext);
  if (!value) throw new Error("condition editors need a <TreeContext>");
  return value;
}

export type { GroupNode };
