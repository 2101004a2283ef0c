/**
 * Which operators a column takes, by its type, and which editor each operator's value
 * needs. Mirrors corral.audiences.comparisons (operators by type) and
 * corral.audiences.conditions (the shape of each operator's value).
 */
import type { Operator, Period, Unit } from "./model";

export type ColumnType =
  | "string" | "integer" | "decimal" | "float" | "boolean" | "date" | "timestamp" | "list";

const STRING: Operator[] = [
  "equals", "not_equals", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with",
];
const NUMBER: Operator[] = [
  "equals", "not_equals", "in", "not_in", "greater_than", "at_least", "less_than", "at_most",
  "between",
];
const BOOLEAN: Operator[] = ["is_true", "is_false", "equals", "not_equals"];
const TIME: Operator[] = [
  "equals", "not_equals", "before", "after", "on", "between", "greater_than", "at_least",
  "less_than", "at_most", "within_last", "more_than_ago", "within_next", "in_period",
  "anniversary_within_next",
];
const LIST: Operator[] = ["in", "not_in"];
const NULLS: Operator[] = ["is_null", "is_not_null"];

const BY_TYPE: Record<ColumnType, Operator[]> = {
  string: STRING,
  integer: NUMBER,
  decimal: NUMBER,
  float: NUMBER,
  boolean: BOOLEAN,
  date: TIME,
  timestamp: TIME,
  list: LIST,
};

/** The operators a column (or trait) of this type takes; unknown types get string's. */
export function operatorsFor(type: string | null | undefined): Operator[] {
  const own = BY_TYPE[(type ?? "string") as ColumnType] ?? STRING;
  return [...own, ...NULLS];
}

/** Operators for comparing a count or an aggregate of rows (always a number). */
export function measureOperators(): Operator[] {
  return NUMBER.filter((o) => o !== "in" && o !== "not_in");
}

export function isNumeric(type: string | null | undefined): boolean {
  return type === "integer" || type === "decimal" || type === "float";
}

export const OPERATOR_LABELS: Record<Operator, string> = {
  equals: "is",
  not_equals: "is not",
  in: "is one of",
  not_in: "is none of",
  contains: "contains",
  not_contains: "does not contain",
  starts_with: "starts with",
  ends_with: "ends with",
  greater_than: "is more than",
  at_least: "is at least",
  less_than: "is less than",
  at_most: "is at most",
  between: "is between",
  is_true: "is true",
  is_false: "is false",
  before: "is before",
  after: "is after",
  on: "is on the day",
  within_last: "is within the last",
  more_than_ago: "is more than … ago",
  within_next: "is within the next",
  in_period: "is in",
  anniversary_within_next: "has its anniversary within the next",
  is_null: "is empty",
  is_not_null: "is not empty",
};

/** Labels for time columns, where "greater than" reads better as "later than". */
const TIME_LABELS: Partial<Record<Operator, string>> = {
  greater_than: "is later than",
  at_least: "is on or after",
  less_than: "is earlier than",
  at_most: "is on or before",
};

export function operatorLabel(operator: Operator, type?: string | null): string {
  if (type === "date" || type === "timestamp") return TIME_LABELS[operator] ?? OPERATOR_LABELS[operator];
  return OPERATOR_LABELS[operator];
}

/** The shape of value an operator takes, as the API checks it. */
export type ValueShape = "none" | "scalar" | "string" | "list" | "pair" | "duration" | "period" | "days";

const SHAPES: Record<Operator, ValueShape> = {
  equals: "scalar",
  not_equals: "scalar",
  in: "list",
  not_in: "list",
  contains: "string",
  not_contains: "string",
  starts_with: "string",
  ends_with: "string",
  greater_than: "scalar",
  at_least: "scalar",
  less_than: "scalar",
  at_most: "scalar",
  between: "pair",
  is_true: "none",
  is_false: "none",
  before: "scalar",
  after: "scalar",
  on: "scalar",
  within_last: "duration",
  more_than_ago: "duration",
  within_next: "duration",
  in_period: "period",
  anniversary_within_next: "days",
  is_null: "none",
  is_not_null: "none",
};

export function valueShape(operator: string): ValueShape {
  return SHAPES[operator as Operator] ?? "scalar";
}

/** Which input the editor shows for an operator's value on a column of a type. */
export type ValueEditorKind =
  | "none"
  | "text"
  | "suggest"
  | "number"
  | "boolean"
  | "date"
  | "datetime"
  | "tags"
  | "number-tags"
  | "number-range"
  | "date-range"
  | "datetime-range"
  | "duration"
  | "period"
  | "days";

export function valueEditorFor(operator: Operator, type: string | null | undefined): ValueEditorKind {
  const shape = valueShape(operator);
  const numeric = isNumeric(type);
  switch (shape) {
    case "none":
      return "none";
    case "string":
      return "text";
    case "duration":
      return "duration";
    case "period":
      return "period";
    case "days":
      return "days";
    case "list":
      return numeric ? "number-tags" : "tags";
    case "pair":
      if (numeric) return "number-range";
      if (type === "date") return "date-range";
      if (type === "timestamp") return "datetime-range";
      return "number-range";
    case "scalar":
      if (numeric) return "number";
      if (type === "boolean") return "boolean";
      if (type === "date") return "date";
      if (type === "timestamp") return operator === "on" ? "date" : "datetime";
      return "suggest";
  }
}

/** The value an operator starts with when the user picks it. */
export function defaultValue(operator: Operator, type: string | null | undefined): unknown {
  switch (valueEditorFor(operator, type)) {
    case "none":
      return null;
    case "tags":
    case "number-tags":
      return [];
    case "number-range":
    case "date-range":
    case "datetime-range":
      return [null, null];
    case "duration":
      return { amount: 30, unit: "days" satisfies Unit };
    case "period":
      return "this_month" satisfies Period;
    case "days":
      return 7;
    case "boolean":
      return true;
    default:
      return null;
  }
}

/** Keep a value when switching operators if it still fits, else the new default. */
export function carryValue(
  from: Operator, to: Operator, value: unknown, type: string | null | undefined,
): unknown {
  return valueEditorFor(from, type) === valueEditorFor(to, type) ? value : defaultValue(to, type);
}

/** Why a value is not ready to send, or null when it is. */
export function valueProblem(operator: Operator, value: unknown, type?: string | null): string | null {
  const kind = valueEditorFor(operator, type);
  const empty = (v: unknown) => v === null || v === undefined || v === "";
  switch (kind) {
    case "none":
      return null;
    case "tags":
    case "number-tags":
      return Array.isArray(value) && value.length > 0 ? null : "add at least one value";
    case "number-range":
    case "date-range":
    case "datetime-range":
      return Array.isArray(value) && !empty(value[0]) && !empty(value[1]) ? null : "fill in both ends";
    case "duration": {
      const d = value as { amount?: number } | null;
      return d && typeof d.amount === "number" ? null : "enter an amount";
    }
    case "days":
      return typeof value === "number" && value >= 0 && value <= 366 ? null : "enter 0 to 366 days";
    default:
      return empty(value) ? "enter a value" : null;
  }
}

export const PERIOD_LABELS: Record<Period, string> = {
  this_week: "this week",
  last_week: "last week",
  this_month: "this month",
  last_month: "last month",
  this_quarter: "this quarter",
  last_quarter: "last quarter",
  this_year: "this year",
  last_year: "last year",
};
