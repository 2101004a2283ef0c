/** TanStack Query: the client, the keys, and how errors reach the user. */
import { notifications } from "@mantine/notifications";
import { MutationCache, QueryCache, QueryClient } from "@tanstack/react-query";

import { ApiError } from "./client";

export function errorText(error: unknown): { title: string; message: string } {
  if (error instanceof ApiError) {
    const where = error.where ? ` (${error.where})` : "";
    return {
      title: error.message + where,
      message: error.hint ?? "",
    };
  }
  return { title: "Something went wrong", message: error instanceof Error ? error.message : String(error) };
}

export function notifyError(error: unknown, title?: string): void {
  const text = errorText(error);
  notifications.show({
    color: "red",
    title: title ?? text.title,
    message: title ? `${text.title}${text.message ? `. ${text.message}` : ""}` : text.message || undefined,
    autoClose: 10000,
  });
}

export function notifyDone(message: string): void {
  notifications.show({ color: "teal", message, autoClose: 3000 });
}

export const queryClient = new QueryClient({
  queryCache: new QueryCache({
    onError: (error, query) => {
      // Screens show their own errors inline; only background refetch failures pop up.
      if (query.state.data !== undefined && !(error instanceof ApiError && error.status === 401)) notifyError(error);
    },
  }),
  mutationCache: new MutationCache({
    onError: (error, _vars, _ctx, mutation) => {
      if (mutation.options.meta?.quiet) return;
      if (error instanceof ApiError && error.status === 401) return;
      notifyError(error);
    },
  }),
  defaultOptions: {
    queries: {
      retry: (count, error) => !(error instanceof ApiError && error.status > 0 && error.status < 500) && count < 2,
      staleTime: 15_000,
      refetchOnWindowFocus: false,
    },
  },
});

declare module "@tanstack/react-query" {
  interface Register {
    mutationMeta: { quiet?: boolean };
  }
}

export const keys = {
  me: ["me"] as const,
  sources: ["sources"] as const,
  tables: ["sources", "tables"] as const,
  tableColumns: (table: string) => ["sources", "tables", table] as const,
  schema: ["schema"] as const,
  models: ["schema", "models"] as const,
  model: (name: string) => ["schema", "models", name] as const,
  relationships: ["schema", "relationships"] as const,
  traits: ["schema", "traits"] as const,
  values: (model: string, column: string, prefix: string) => ["schema", "values", model, column, prefix] as const,
  audiences: ["audiences"] as const,
  audience: (name: string) => ["audiences", name] as const,
  versions: (name: string) => ["audiences", name, "versions"] as const,
  sizes: (name: string) => ["audiences", name, "sizes"] as const,
  sql: (name: string, dialect: string) => ["audiences", name, "sql", dialect] as const,
  members: (name: string) => ["audiences", name, "members"] as const,
  destinationTypes: ["destination-types"] as const,
  destinations: ["destinations"] as const,
  destination: (name: string) => ["destinations", name] as const,
  syncs: ["syncs"] as const,
  sync: (name: string) => ["syncs", name] as const,
  runs: (name: string) => ["syncs", name, "runs"] as const,
  rejected: (name: string) => ["syncs", name, "rejected"] as const,
  run: (id: string) => ["runs", id] as const,
  logs: (id: string) => ["runs", id, "logs"] as const,
  users: ["users"] as const,
  roles: ["roles"] as const,
  permissions: ["permissions"] as const,
  tokens: ["tokens"] as const,
  audit: ["audit"] as const,
};
