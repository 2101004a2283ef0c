/**
 * Between the editor's tree and the API's canonical JSON.
 *
 * The API rejects unknown keys (`additionalProperties: false`), so serialization writes
 * only the keys of the canonical form and leaves out what is empty: a `where` without
 * conditions, a `within` without its parts, a value an operator does not take.
 */
import {
  type Aggregate,
  type AudienceDefinition,
  type AudienceDraft,
  type ConditionNode,
  type Duration,
  type GroupNode,
  type Json,
  type SequenceStepNode,
  type Window,
  newId,
} from "./model";
import { valueShape } from "./operators";

export function toDefinition(draft: AudienceDraft): AudienceDefinition {
  const group = groupJson(draft.root);
  const definition: AudienceDefinition = { name: draft.name.trim() };
  if (draft.description.trim()) definition.description = draft.description.trim();
  definition.match = draft.root.match;
  if (draft.root.negate) definition.negate = true;
  definition.conditions = group.conditions as Json[];
  return definition;
}

export function groupJson(group: GroupNode): Json {
  const json: Json = { kind: "group", match: group.match };
  if (group.negate) json.negate = true;
  json.conditions = group.conditions.map(conditionJson);
  return json;
}

/** A `where` group, or nothing when it has no conditions (the API's default). */
function whereJson(where: GroupNode | null): Json | undefined {
  if (!where || where.conditions.length === 0) return undefined;
  return groupJson(where);
}

export function windowJson(window: Window | null): Json | undefined {
  if (!window) return undefined;
  switch (window.kind) {
    case "last":
    case "next":
      return window.duration ? { kind: window.kind, duration: durationJson(window.duration) } : undefined;
    case "between":
      return window.start && window.end
        ? { kind: window.kind, start: window.start, end: window.end }
        : undefined;
    case "since":
      return window.start ? { kind: window.kind, start: window.start } : undefined;
    case "before":
      return window.end ? { kind: window.kind, end: window.end } : undefined;
    case "period":
      return window.period ? { kind: window.kind, period: window.period } : undefined;
  }
}

function durationJson(duration: Duration): Json {
  return { amount: Math.max(0, Math.trunc(duration.amount)), unit: duration.unit };
}

function aggregateJson(aggregate: Aggregate): Json {
  return aggregate.function === "count"
    ? { function: "count" }
    : { function: aggregate.function, column: aggregate.column ?? null };
}

/** The value an operator takes, in the shape the API checks (see operators.ts). */
export function valueJson(operator: string, value: unknown): unknown {
  const shape = valueShape(operator);
  if (shape === "none") return undefined;
  if (shape === "duration") {
    const d = value as Duration | null;
    return d ? durationJson(d) : null;
  }
  if (shape === "list") return Array.isArray(value) ? value : value == null ? [] : [value];
  if (shape === "pair") return Array.isArray(value) ? value.slice(0, 2) : [null, null];
  return value ?? null;
}

function comparison(json: Json, operator: string | null, value: unknown): void {
  if (operator == null) return;
  json.operator = operator;
  const v = valueJson(operator, value);
  if (v !== undefined) json.value = v;
}

function put(json: Json, key: string, value: unknown): void {
  if (value !== undefined) json[key] = value;
}

export function conditionJson(node: ConditionNode): Json {
  switch (node.kind) {
    case "group":
      return groupJson(node);
    case "property": {
      const json: Json = { kind: "property", column: node.column };
      comparison(json, node.operator, node.value);
      return json;
    }
    case "trait": {
      const json: Json = { kind: "trait", trait: node.trait };
      comparison(json, node.operator, node.value);
      return json;
    }
    case "audience":
      return node.member
        ? { kind: "audience", audience: node.audience }
        : { kind: "audience", audience: node.audience, member: false };
    case "relation":
    case "event": {
      const json: Json =
        node.kind === "relation"
          ? { kind: "relation", relation: node.relation }
          : { kind: "event" };
      if (node.kind === "event") {
        if (node.event) json.event = node.event;
        if (node.model) json.model = node.model;
      }
      const absent = node.kind === "relation" ? !node.has : !node.performed;
      if (absent) json[node.kind === "relation" ? "has" : "performed"] = false;
      put(json, "where", whereJson(node.where));
      put(json, "within", windowJson(node.within));
      // "Has no rows" cannot also compare a count: the API rejects the mix.
      if (!absent && node.operator) {
        json.aggregate = aggregateJson(node.aggregate ?? { function: "count" });
        comparison(json, node.operator, node.value);
      }
      return json;
    }
    case "sequence": {
      const json: Json = { kind: "sequence" };
      if (node.model) json.model = node.model;
      json.steps = node.steps.map(stepJson);
      put(json, "within", windowJson(node.within));
      return json;
    }
  }
}

function stepJson(step: SequenceStepNode): Json {
  const json: Json = { event: step.event };
  if (!step.performed) json.performed = false;
  put(json, "where", whereJson(step.where));
  if (step.within) json.within = durationJson(step.within);
  return json;
}

// ---- reading the API's JSON -------------------------------------------------------

type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function fromDefinition(definition: AudienceDefinition): AudienceDraft {
  const root = readGroup({
    match: definition.match ?? "all",
    negate: definition.negate ?? false,
    conditions: definition.conditions ?? [],
  });
  return { name: definition.name, description: definition.description ?? "", root };
}

export function readGroup(json: Loose | null | undefined): GroupNode {
  return {
    id: newId(),
    kind: "group",
    match: json?.match === "any" ? "any" : "all",
    negate: Boolean(json?.negate),
    conditions: ((json?.conditions ?? []) as Loose[]).map(readCondition),
  };
}

function readWhere(json: Loose | null | undefined): GroupNode | null {
  return json ? readGroup(json) : null;
}

function readWindow(json: Loose | null | undefined): Window | null {
  if (!json) return null;
  return {
    kind: json.kind,
    duration: json.duration ?? null,
    start: json.start ?? null,
    end: json.end ?? null,
    period: json.period ?? null,
  };
}

export function readCondition(json: Loose): ConditionNode {
  const id = newId();
  switch (json.kind as string) {
    case "property":
      return { id, kind: "property", column: json.column, operator: json.operator, value: json.value ?? null };
    case "trait":
      return { id, kind: "trait", trait: json.trait, operator: json.operator, value: json.value ?? null };
    case "audience":
      return { id, kind: "audience", audience: json.audience, member: json.member ?? true };
    case "relation":
      return {
        id, kind: "relation", relation: json.relation, has: json.has ?? true,
        where: readWhere(json.where), within: readWindow(json.within),
        aggregate: json.aggregate ?? null, operator: json.operator ?? null, value: json.value ?? null,
      };
    case "event":
      return {
        id, kind: "event", event: json.event ?? null, model: json.model ?? null,
        performed: json.performed ?? true,
        where: readWhere(json.where), within: readWindow(json.within),
        aggregate: json.aggregate ?? null, operator: json.operator ?? null, value: json.value ?? null,
      };
    case "sequence":
      return {
        id, kind: "sequence", model: json.model ?? null, within: readWindow(json.within),
        steps: ((json.steps ?? []) as Loose[]).map((s) => ({
          id: newId(),
          event: s.event ?? null,
          performed: s.performed ?? true,
          where: readWhere(s.where),
          within: s.within ?? null,
        })),
      };
    default:
      return readGroup(json);
  }
}
