import { describe, expect, it } from "vitest";

import type { Relationship } from "../../api/types";
import { NODE_HEIGHT, cardinalityLabel, layoutSchema } from "./layout";

const MODELS = [
  { name: "users", kind: "parent" },
  { name: "households", kind: "related" },
  { name: "purchases", kind: "related" },
  { name: "products", kind: "related" },
  { name: "events", kind: "event" },
  { name: "consents", kind: "related" },
  { name: "orphans", kind: "related" },
];
const RELATIONSHIPS: Relationship[] = [
  { from: "users", to: "purchases", cardinality: "one_to_many", join: { user_id: "user_id" } },
  { from: "purchases", to: "products", cardinality: "many_to_one", join: { product_id: "product_id" } },
  { from: "users", to: "households", cardinality: "many_to_one", join: { household_id: "household_id" } },
  { from: "users", to: "events", cardinality: "one_to_many", join: { user_id: "user_id" } },
  { from: "users", to: "consents", cardinality: "one_to_many", join: { user_id: "user_id" } },
  { name: "purchased_products", from: "users", through: ["purchases", "products"] },
];

describe("layoutSchema", () => {
  const layout = layoutSchema(MODELS, RELATIONSHIPS);
  const at = (name: string) => layout.models.find((m) => m.name === name)!;

  it("puts the parent first and each model one column further than what joins it", () => {
    expect(at("users").column).toBe(0);
    expect(["purchases", "households", "events", "consents"].map((n) => at(n).column)).toEqual([1, 1, 1, 1]);
    expect(at("products").column).toBe(2);
    expect(at("orphans").column).toBe(3);
  });

  it("never overlaps two models of a column and keeps a model level with what leads to it", () => {
    const column = layout.models.filter((m) => m.column === 1).map((m) => m.y).sort((a, b) => a - b);
    for (let i = 1; i < column.length; i++) expect(column[i] - column[i - 1]).toBeGreaterThanOrEqual(NODE_HEIGHT);
    expect(at("products").y).toBe(at("purchases").y);
    expect(at("events").y).toBe(Math.max(...column)); // events last
  });

  it("resolves a through relationship to the model it ends at and runs it below every model", () => {
    expect(layout.through).toEqual([
      expect.objectContaining({ source: "users", target: "products", name: "purchased_products", path: ["purchases", "products"] }),
    ]);
    expect(layout.direct).toHaveLength(5);
    expect(layout.laneY).toBeGreaterThan(Math.max(...layout.models.map((m) => m.y)) + NODE_HEIGHT);
  });

  it("labels cardinalities", () => {
    expect(cardinalityLabel("one_to_many")).toBe("1 → many");
    expect(cardinalityLabel(undefined)).toBeNull();
  });
});
