/**
 * The audience condition tree, in the canonical JSON form the API takes
 * (docs/audience.schema.json), plus an `id` on every node so the editor can key and
 * address nodes. `toDefinition` strips the ids and the empty optional parts;
 * `fromDefinition` adds ids to a tree read from the API.
 */

export const OPERATORS = [
  "equals", "not_equals", "in", "not_in", "contains", "not_contains", "starts_with",
  "ends_with", "greater_than", "at_least", "less_than", "at_most", "between", "is_true",
  "is_false", "before", "after", "on", "within_last", "more_than_ago", "within_next",
  "in_period", "anniversary_within_next", "is_null", "is_not_null",
] as const;
export type Operator = (typeof OPERATORS)[number];

export const UNITS = ["minutes", "hours", "days", "weeks", "months", "years"] as const;
export type Unit = (typeof UNITS)[number];

export const PERIODS = [
  "this_week", "last_week", "this_month", "last_month",
  "this_quarter", "last_quarter", "this_year", "last_year",
] as const;
export type Period = (typeof PERIODS)[number];

export const AGGREGATE_FUNCTIONS = [
  "count", "count_distinct", "sum", "average", "min", "max",
] as const;
export type AggregateFunction = (typeof AGGREGATE_FUNCTIONS)[number];

export const WINDOW_KINDS = ["last", "next", "between", "since", "before", "period"] as const;
export type WindowKind = (typeof WINDOW_KINDS)[number];

export interface Duration {
  amount: number;
  unit: Unit;
}

export interface Window {
  kind: WindowKind;
  duration?: Duration | null;
  start?: string | null;
  end?: string | null;
  period?: Period | null;
}

export interface Aggregate {
  function: AggregateFunction;
  column?: string | null;
}

export type Value = unknown;

interface Node {
  id: string;
}

export interface GroupNode extends Node {
  kind: "group";
  match: "all" | "any";
  negate: boolean;
  conditions: ConditionNode[];
}

export interface PropertyNode extends Node {
  kind: "property";
  column: string;
  operator: Operator;
  value: Value;
}

export interface TraitNode extends Node {
  kind: "trait";
  trait: string;
  operator: Operator;
  value: Value;
}

/** Relation and event conditions share how they measure rows: has/count/aggregate. */
interface RowsFields {
  where: GroupNode | null;
  within: Window | null;
  aggregate: Aggregate | null;
  operator: Operator | null;
  value: Value;
}

export interface RelationNode extends Node, RowsFields {
  kind: "relation";
  relation: string;
  has: boolean;
}

export interface EventNode extends Node, RowsFields {
  kind: "event";
  event: string | null;
  model: string | null;
  performed: boolean;
}

export interface SequenceStepNode extends Node {
  event: string | null;
  performed: boolean;
  where: GroupNode | null;
  within: Duration | null;
}

export interface SequenceNode extends Node {
  kind: "sequence";
  model: string | null;
  steps: SequenceStepNode[];
  within: Window | null;
}

export interface AudienceNode extends Node {
  kind: "audience";
  audience: string;
  member: boolean;
}

export type ConditionNode =
  | PropertyNode
  | RelationNode
  | EventNode
  | SequenceNode
  | TraitNode
  | AudienceNode
  | GroupNode;

export type ConditionKind = ConditionNode["kind"];

/** What the editor holds: the definition's fields and its top-level group. */
export interface AudienceDraft {
  name: string;
  description: string;
  root: GroupNode;
}

/** The canonical JSON of an audience definition (what the API reads and writes). */
export type AudienceDefinition = {
  name: string;
  description?: string | null;
  match?: "all" | "any";
  negate?: boolean;
  conditions?: Json[];
};

export type Json = Record<string, unknown>;

let counter = 0;

/** A node id, unique within this page's lifetime. */
export function newId(): string {
  counter += 1;
  return `n${counter}`;
}

export function newGroup(match: "all" | "any" = "all"): GroupNode {
  return { id: newId(), kind: "group", match, negate: false, conditions: [] };
}

export function newStep(): SequenceStepNode {
  return { id: newId(), event: null, performed: true, where: null, within: null };
}

/** A fresh condition of a kind, with the defaults the editor starts from. */
export function newCondition(kind: ConditionKind): ConditionNode {
  const id = newId();
  switch (kind) {
    case "property":
      return { id, kind, column: "", operator: "equals", value: null };
    case "trait":
      return { id, kind, trait: "", operator: "equals", value: null };
    case "relation":
      return {
        id, kind, relation: "", has: true,
        where: null, within: null, aggregate: null, operator: null, value: null,
      };
    case "event":
      return {
        id, kind, event: null, model: null, performed: true,
        where: null, within: null, aggregate: null, operator: null, value: null,
      };
    case "sequence":
      return { id, kind, model: null, steps: [newStep(), newStep()], within: null };
    case "audience":
      return { id, kind, audience: "", member: true };
    case "group":
      return newGroup();
  }
}

export function newDraft(): AudienceDraft {
  return { name: "", description: "", root: newGroup() };
}
