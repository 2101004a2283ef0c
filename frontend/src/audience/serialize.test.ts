import { describe, expect, it } from "vitest";

import schema from "../../../docs/audience.schema.json";
import {
  type AudienceDraft,
  type EventNode,
  type GroupNode,
  type PropertyNode,
  type RelationNode,
  type SequenceNode,
  OPERATORS,
  newCondition,
  newGroup,
} from "./model";
import { fromDefinition, toDefinition, valueJson } from "./serialize";
import { addCondition, findProblems, moveNode, removeNode, updateNode, wrapInGroup } from "./tree";

function draftWith(...conditions: GroupNode["conditions"]): AudienceDraft {
  const root = newGroup();
  root.conditions = conditions;
  return { name: "Lapsed high spenders", description: "", root };
}

function property(column: string, operator: PropertyNode["operator"], value: unknown): PropertyNode {
  return { ...(newCondition("property") as PropertyNode), column, operator, value };
}

describe("toDefinition", () => {
  it("writes the docs' example in canonical form", () => {
    const spend: RelationNode = {
      ...(newCondition("relation") as RelationNode),
      relation: "purchases",
      aggregate: { function: "sum", column: "amount" },
      operator: "at_least",
      value: 500,
      within: { kind: "last", duration: { amount: 365, unit: "days" } },
    };
    const lapsed: EventNode = {
      ...(newCondition("event") as EventNode),
      event: "order_completed",
      performed: false,
      within: { kind: "last", duration: { amount: 90, unit: "days" } },
    };
    const draft = draftWith(property("country", "in", ["US", "CA"]), spend, lapsed);
    draft.description = "  Spent a lot  ";

    expect(toDefinition(draft)).toEqual({
      name: "Lapsed high spenders",
      description: "Spent a lot",
      match: "all",
      conditions: [
        { kind: "property", column: "country", operator: "in", value: ["US", "CA"] },
        {
          kind: "relation",
          relation: "purchases",
          within: { kind: "last", duration: { amount: 365, unit: "days" } },
          aggregate: { function: "sum", column: "amount" },
          operator: "at_least",
          value: 500,
        },
        {
          kind: "event",
          event: "order_completed",
          performed: false,
          within: { kind: "last", duration: { amount: 90, unit: "days" } },
        },
      ],
    });
  });

  it("nests groups, negation and relation where-groups to any depth", () => {
    const inner = newGroup("any");
    inner.negate = true;
    inner.conditions = [property("plan", "equals", "free")];
    const households: RelationNode = {
      ...(newCondition("relation") as RelationNode),
      relation: "households",
      where: { ...newGroup(), conditions: [property("size", "at_least", 4)] },
    };
    const json = toDefinition(draftWith(inner, households));
    expect(json.conditions).toEqual([
      {
        kind: "group",
        match: "any",
        negate: true,
        conditions: [{ kind: "property", column: "plan", operator: "equals", value: "free" }],
      },
      {
        kind: "relation",
        relation: "households",
        where: {
          kind: "group",
          match: "all",
          conditions: [{ kind: "property", column: "size", operator: "at_least", value: 4 }],
        },
      },
    ]);
  });

  it("writes a count as a count aggregate and drops it for 'has no rows'", () => {
    const count: RelationNode = {
      ...(newCondition("relation") as RelationNode),
      relation: "purchased_products",
      operator: "at_least",
      value: 2,
    };
    const none: RelationNode = { ...count, id: "x", has: false };
    const [a, b] = toDefinition(draftWith(count, none)).conditions ?? [];
    expect(a).toMatchObject({ aggregate: { function: "count" }, operator: "at_least", value: 2 });
    expect(b).toEqual({ kind: "relation", relation: "purchased_products", has: false });
  });

  it("writes sequences with step windows and a final step that must not happen", () => {
    const sequence: SequenceNode = {
      ...(newCondition("sequence") as SequenceNode),
      within: { kind: "period", period: "this_month" },
    };
    sequence.steps = [
      { ...sequence.steps[0], event: "product_viewed" },
      { ...sequence.steps[1], event: "checkout_started", performed: false, within: { amount: 1, unit: "days" } },
    ];
    expect(toDefinition(draftWith(sequence)).conditions).toEqual([
      {
        kind: "sequence",
        steps: [
          { event: "product_viewed" },
          { event: "checkout_started", performed: false, within: { amount: 1, unit: "days" } },
        ],
        within: { kind: "period", period: "this_month" },
      },
    ]);
  });

  it("leaves out incomplete windows and empty where-groups", () => {
    const event: EventNode = {
      ...(newCondition("event") as EventNode),
      event: "app_opened",
      where: newGroup(),
      within: { kind: "between", start: "2026-01-01", end: null },
    };
    expect(toDefinition(draftWith(event)).conditions).toEqual([{ kind: "event", event: "app_opened" }]);
  });

  it("writes trait and audience conditions", () => {
    const trait = { ...newCondition("trait"), trait: "order_count", operator: "at_least", value: 5 };
    const notVip = { ...newCondition("audience"), audience: "VIPs", member: false };
    expect(toDefinition(draftWith(trait as never, notVip as never)).conditions).toEqual([
      { kind: "trait", trait: "order_count", operator: "at_least", value: 5 },
      { kind: "audience", audience: "VIPs", member: false },
    ]);
  });

  it("uses only keys the JSON Schema allows", () => {
    const defs = (schema as { $defs: Record<string, { properties: object }> }).$defs;
    const allowed: Record<string, string[]> = {
      property: Object.keys(defs.PropertyCondition.properties),
      relation: Object.keys(defs.RelationCondition.properties),
      event: Object.keys(defs.EventCondition.properties),
      sequence: Object.keys(defs.SequenceCondition.properties),
      trait: Object.keys(defs.TraitCondition.properties),
      audience: Object.keys(defs.AudienceCondition.properties),
      group: Object.keys(defs.Group.properties),
    };
    const kinds = ["property", "relation", "event", "sequence", "trait", "audience", "group"] as const;
    const json = toDefinition(draftWith(...kinds.map((k) => newCondition(k))));
    for (const condition of json.conditions ?? []) {
      const kind = condition.kind as string;
      expect(Object.keys(condition).every((k) => allowed[kind].includes(k))).toBe(true);
    }
  });
});

describe("fromDefinition", () => {
  it("round-trips a canonical definition", () => {
    const definition = {
      name: "Cart abandoners",
      description: "Viewed, added, did not check out",
      match: "any" as const,
      negate: true,
      conditions: [
        { kind: "property", column: "country", operator: "in", value: ["US"] },
        {
          kind: "group",
          match: "all",
          conditions: [{ kind: "trait", trait: "order_count", operator: "is_null" }],
        },
        {
          kind: "event",
          event: "order_completed",
          where: { kind: "group", match: "all", conditions: [{ kind: "property", column: "channel", operator: "equals", value: "web" }] },
          aggregate: { function: "sum", column: "revenue" },
          operator: "at_least",
          value: 300,
        },
        {
          kind: "sequence",
          steps: [
            { event: "product_viewed" },
            { event: "added_to_cart", within: { amount: 1, unit: "hours" } },
          ],
          within: { kind: "last", duration: { amount: 30, unit: "days" } },
        },
        { kind: "audience", audience: "VIPs" },
      ],
    };
    expect(toDefinition(fromDefinition(definition))).toEqual(definition);
  });
});

describe("valueJson", () => {
  it("gives every operator a value of the shape the API checks", () => {
    for (const operator of OPERATORS) {
      const v = valueJson(operator, null);
      if (["is_true", "is_false", "is_null", "is_not_null"].includes(operator)) expect(v).toBeUndefined();
      else if (operator === "in" || operator === "not_in") expect(v).toEqual([]);
      else if (operator === "between") expect(v).toEqual([null, null]);
      else expect(v).toBeNull();
    }
  });

  it("truncates duration amounts to whole numbers", () => {
    expect(valueJson("within_last", { amount: 7.6, unit: "days" })).toEqual({ amount: 7, unit: "days" });
  });
});

describe("tree edits", () => {
  it("adds, updates, moves, wraps and removes nested conditions", () => {
    const a = property("a", "equals", 1);
    const b = property("b", "equals", 2);
    const relation = newCondition("relation") as RelationNode;
    relation.where = newGroup();
    let root = draftWith(a, relation).root;

    root = addCondition(root, relation.where.id, b);
    const nested = root.conditions[1] as RelationNode;
    expect(nested.where?.conditions).toEqual([b]);

    root = updateNode<PropertyNode>(root, b.id, (n) => ({ ...n, value: 3 }));
    expect(((root.conditions[1] as RelationNode).where?.conditions[0] as PropertyNode).value).toBe(3);

    root = moveNode(root, relation.id, -1);
    expect(root.conditions.map((c) => c.id)).toEqual([relation.id, a.id]);

    root = wrapInGroup(root, a.id, () => newGroup());
    const wrapped = root.conditions[1] as GroupNode;
    expect(wrapped.kind).toBe("group");
    expect(wrapped.match).toBe("any");
    expect(wrapped.conditions[0].id).toBe(a.id);

    root = removeNode(root, b.id);
    expect((root.conditions[0] as RelationNode).where?.conditions).toEqual([]);
  });

  it("finds what is left to fill in", () => {
    const root = draftWith(property("", "equals", null), property("country", "in", []), property("x", "is_null", null)).root;
    expect(findProblems(root).map((p) => p.message)).toEqual(["pick a column", "add at least one value"]);
  });
});
