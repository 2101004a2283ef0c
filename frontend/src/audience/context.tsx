/**
 * What the condition editors need to know about the schema: models and their columns,
 * relations and where they lead, traits, event models, other audiences. Model details
 * load lazily, one query per model, shared by every editor on that model.
 */
import { useDebouncedValue } from "@mantine/hooks";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { createContext, useContext } from "react";

import { api } from "../api/endpoints";
import { keys } from "../api/queries";
import type { ModelColumn, ModelDetail, ModelSummary, Relationship, Trait } from "../api/types";

export interface BuilderSchema {
  parent: string;
  models: ModelSummary[];
  relationships: Relationship[];
  traits: Trait[];
  audiences: string[];
  self: string | null;
}

export const BuilderContext = createContext<BuilderSchema | null>(null);

export function useBuilder(): BuilderSchema {
  const value = useContext(BuilderContext);
  if (!value) throw new Error("condition editors need a <BuilderContext>");
  return value;
}

export function useModel(name: string | null | undefined) {
  return useQuery({
    queryKey: keys.model(name ?? ""),
    queryFn: () => api.schema.model(name!),
    enabled: Boolean(name),
    staleTime: 5 * 60_000,
  });
}

/** Columns a marketer may pick (hidden ones left out), labelled by their alias. */
export function visibleColumns(model: ModelDetail | undefined): ModelColumn[] {
  return (model?.columns ?? []).filter((c) => !c.settings?.hidden);
}

export function columnLabel(column: ModelColumn): string {
  const alias = column.settings?.alias;
  return alias && alias !== column.name ? `${alias} (${column.name})` : column.name;
}

/** The model a relation named `relation` leads to from `from`, following the docs' rules. */
export function relationTarget(relationships: Relationship[], from: string, relation: string): string | null {
  for (const r of relationships) {
    const name = r.name ?? r.to ?? r.through?.[r.through.length - 1];
    if (r.from === from && name === relation) return r.through?.length ? r.through[r.through.length - 1] : (r.to ?? null);
  }
  // Every direct relationship can be followed backwards: its reverse is named after its source.
  for (const r of relationships) {
    if (!r.through?.length && r.to === from && r.from === relation) return r.from;
  }
  return null;
}

/** The type of a trait's value, for its operators. */
export function traitType(trait: Trait | undefined, columnType: string | null | undefined): string | null {
  if (!trait) return null;
  if (trait.type) return trait.type;
  switch (trait.aggregate) {
    case "count":
    case "count_distinct":
      return "integer";
    case "sum":
    case "average":
      return "decimal";
    case "list":
      return "list";
    default:
      return columnType ?? null;
  }
}

/** Value suggestions for a column while typing (debounced), most frequent first. */
export function useSuggestions(model: string | null | undefined, column: string | null | undefined, typed: string, enabled = true) {
  const [prefix] = useDebouncedValue(typed, 250);
  return useQuery({
    queryKey: keys.values(model ?? "", column ?? "", prefix),
    queryFn: () => api.schema.values(model!, column!, prefix, 20),
    enabled: enabled && Boolean(model && column),
    placeholderData: keepPreviousData,
    staleTime: 5 * 60_000,
    retry: false,
    // A column without suggestions (pii, hidden, turned off) answers 422: type freely then.
    meta: { quiet: true },
  });
}
