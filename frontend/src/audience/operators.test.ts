import { describe, expect, it } from "vitest";

import { OPERATORS } from "./model";
import {
  carryValue,
  defaultValue,
  operatorsFor,
  valueEditorFor,
  valueProblem,
  valueShape,
} from "./operators";

describe("operatorsFor", () => {
  it("follows docs/audiences.md per column type, with the null checks for every type", () => {
    expect(operatorsFor("string")).toEqual([
      "equals", "not_equals", "in", "not_in", "contains", "not_contains", "starts_with",
      "ends_with", "is_null", "is_not_null",
    ]);
    for (const type of ["integer", "decimal", "float"]) {
      expect(operatorsFor(type)).toContain("between");
      expect(operatorsFor(type)).not.toContain("contains");
    }
    expect(operatorsFor("boolean")).toEqual(["is_true", "is_false", "equals", "not_equals", "is_null", "is_not_null"]);
    for (const type of ["date", "timestamp"]) {
      expect(operatorsFor(type)).toEqual(expect.arrayContaining([
        "before", "after", "on", "within_last", "more_than_ago", "within_next", "in_period",
        "anniversary_within_next",
      ]));
    }
    expect(operatorsFor("list")).toEqual(["in", "not_in", "is_null", "is_not_null"]);
  });

  it("offers every operator for some type", () => {
    const offered = new Set(
      ["string", "integer", "boolean", "date", "list"].flatMap((t) => operatorsFor(t)),
    );
    expect([...offered].sort()).toEqual([...OPERATORS].sort());
  });
});

describe("valueEditorFor", () => {
  const cases: [string, string, string][] = [
    ["equals", "string", "suggest"],
    ["equals", "integer", "number"],
    ["equals", "boolean", "boolean"],
    ["equals", "date", "date"],
    ["equals", "timestamp", "datetime"],
    ["on", "timestamp", "date"],
    ["in", "string", "tags"],
    ["not_in", "decimal", "number-tags"],
    ["contains", "string", "text"],
    ["between", "float", "number-range"],
    ["between", "date", "date-range"],
    ["between", "timestamp", "datetime-range"],
    ["within_last", "date", "duration"],
    ["more_than_ago", "timestamp", "duration"],
    ["within_next", "date", "duration"],
    ["in_period", "date", "period"],
    ["anniversary_within_next", "date", "days"],
    ["is_null", "string", "none"],
    ["is_true", "boolean", "none"],
  ];
  it.each(cases)("%s on %s uses the %s editor", (operator, type, editor) => {
    expect(valueEditorFor(operator as never, type)).toBe(editor);
  });

  it("has an editor for every operator on every type that takes it", () => {
    for (const type of ["string", "integer", "decimal", "float", "boolean", "date", "timestamp", "list"]) {
      for (const operator of operatorsFor(type)) {
        const editor = valueEditorFor(operator, type);
        expect(editor === "none").toBe(valueShape(operator) === "none");
      }
    }
  });
});

describe("default values", () => {
  it("start valid where a default makes sense", () => {
    expect(defaultValue("within_last", "date")).toEqual({ amount: 30, unit: "days" });
    expect(defaultValue("in_period", "date")).toBe("this_month");
    expect(defaultValue("anniversary_within_next", "date")).toBe(7);
    expect(defaultValue("between", "integer")).toEqual([null, null]);
    expect(valueProblem("between", defaultValue("between", "integer"), "integer")).toBe("fill in both ends");
    expect(valueProblem("is_null", null)).toBeNull();
  });

  it("carry a value over between operators with the same editor", () => {
    expect(carryValue("equals", "not_equals", "US", "string")).toBe("US");
    expect(carryValue("equals", "in", "US", "string")).toEqual([]);
    expect(carryValue("within_last", "more_than_ago", { amount: 3, unit: "weeks" }, "date")).toEqual({ amount: 3, unit: "weeks" });
  });
});
