/**
 * One function per endpoint the studio calls. Screens use these through TanStack Query
 * (queries.ts); nothing else knows a path.
 */
import type { AudienceDefinition } from "../audience/model";
import { client, ifMatch, unwrap, unwrapWithEtag } from "./client";
import type { paths } from "./schema.gen";
import type * as T from "./types";

const V1 = "/api/v1";

/** A path of the OpenAPI document without its prefix: typos fail to compile. */
type ApiPath = keyof paths extends infer K ? (K extends `/api/v1${infer Rest}` ? Rest : never) : never;

/** Fill `{name}` placeholders: path("/audiences/{name}", {name: "VIPs"}). */
function path(template: ApiPath, params: Record<string, string | number> = {}): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => encodeURIComponent(String(params[key])));
}

type Query = Record<string, string | number | boolean | undefined | null>;

function get<R>(route: string, query?: Query): Promise<R> {
  return unwrap<R>(client.GET(`${V1}${route}` as never, { params: { query } } as never) as never);
}

function getTagged<R>(route: string, query?: Query): Promise<{ data: R; etag: string | null }> {
  return unwrapWithEtag<R>(client.GET(`${V1}${route}` as never, { params: { query } } as never) as never);
}

function send<R>(
  method: "POST" | "PUT" | "PATCH" | "DELETE",
  route: string,
  body?: unknown,
  options: { etag?: string | null; query?: Query } = {},
): Promise<R> {
  const init = { body, headers: ifMatch(options.etag), params: { query: options.query } };
  const call = client[method] as unknown as (route: string, init: unknown) => Promise<{ data?: R; error?: unknown; response: Response }>;
  return unwrap<R>(call(`${V1}${route}`, init));
}


/** Every page of a list, for the few lists the studio shows whole (models, syncs...). */
async function all<R>(route: string, query: Query = {}): Promise<R[]> {
  const items: R[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 50; page++) {
    const result: T.Page<R> = await get<T.Page<R>>(route, { ...query, limit: 500, cursor });
    items.push(...result.items);
    cursor = result.next_cursor;
    if (!cursor) break;
  }
  return items;
}

export const api = {
  health: () => get<{ status: string; version: string; workspace: string }>(path("/health")),

  auth: {
    me: () => get<T.Me>(path("/auth/me")),
    login: (email: string, password: string) => send<unknown>("POST", path("/auth/login"), { email, password }),
    logout: () => send<void>("POST", path("/auth/logout")),
  },

  sources: {
    list: () => get<T.Page<T.Source>>(path("/sources")).then((p) => p.items),
    put: (url: string, planner_schema?: string | null) =>
      send<T.Source>("PUT", path("/sources/warehouse"), { url, planner_schema: planner_schema || null }),
    test: () => send<T.ConnectionTest>("POST", path("/sources/warehouse/test")),
    tables: () => all<T.TableRef>(path("/sources/warehouse/tables")),
    columns: (table: string) => all<T.WarehouseColumn>(path("/sources/warehouse/tables/{table}/columns", { table })),
  },

  schema: {
    get: () => getTagged<T.SchemaDocument>(path("/schema")),
    put: (schema: T.SchemaDocument, etag: string | null) => send<T.SchemaDocument>("PUT", path("/schema"), schema, { etag }),
    models: () => all<T.ModelSummary>(path("/schema/models")),
    model: (name: string) => get<T.ModelDetail>(path("/schema/models/{name}", { name })),
    putColumn: (model: string, column: string, settings: T.ColumnSettings, etag: string | null) =>
      send<T.ColumnSettings>("PUT", path("/schema/models/{model}/columns/{column}", { model, column }), settings, { etag }),
    relationships: () => all<T.Relationship>(path("/schema/relationships")),
    traits: () => all<T.Trait>(path("/schema/traits")),
    check: (uniqueKeys = false) =>
      send<T.CheckResult>("POST", path("/schema/check"), undefined, { query: { unique_keys: uniqueKeys } }),
    values: (model: string, column: string, prefix: string, limit = 20) =>
      get<T.Suggestion[]>(path("/schema/models/{model}/columns/{column}/values", { model, column }), {
        prefix: prefix || undefined,
        limit,
      }),
  },

  audiences: {
    list: () => all<T.AudienceSummary>(path("/audiences")),
    get: (name: string) => getTagged<T.AudienceDetail>(path("/audiences/{name}", { name })),
    create: (definition: AudienceDefinition) => send<T.AudienceDetail>("POST", path("/audiences"), definition),
    put: (name: string, definition: AudienceDefinition, etag: string | null) =>
      send<T.AudienceDetail>("PUT", path("/audiences/{name}", { name }), definition, { etag }),
    remove: (name: string, etag: string | null) =>
      send<void>("DELETE", path("/audiences/{name}", { name }), undefined, { etag }),
    versions: (name: string) => get<T.Page<T.Version>>(path("/audiences/{name}/versions", { name }), { limit: 100 }),
    restore: (name: string, version: number, etag: string | null) =>
      send<T.AudienceDetail>("POST", path("/audiences/{name}/versions/{version}/restore", { name, version }), undefined, { etag }),
    livePreview: (definition: AudienceDefinition, signal?: AbortSignal) =>
      unwrap<T.Preview>(
        client.POST(`${V1}${path("/audiences/preview")}` as never, { body: { definition, blocks: true }, signal } as never) as never,
      ),
    preview: (
      name: string,
      options: { breakdowns?: string[]; sample?: number; sample_columns?: string[]; blocks?: boolean },
    ) => send<T.Preview>("POST", path("/audiences/{name}/preview", { name }), { blocks: true, ...options }),
    /** Measure a saved audience's size only (recorded for the list). */
    measure: (name: string) =>
      send<T.Preview>("POST", path("/audiences/{name}/preview", { name }), { blocks: false }),
    sizes: (name: string) => get<T.MeasuredSize[]>(path("/audiences/{name}/sizes", { name }), { limit: 200 }),
    members: (name: string, cursor?: string | null, columns?: string[]) =>
      get<T.Members>(path("/audiences/{name}/members", { name }), {
        limit: 50,
        cursor: cursor || undefined,
        columns: columns?.length ? columns.join(",") : undefined,
      }),
    sql: (name: string, dialect?: string) => get<T.AudienceSql>(path("/audiences/{name}/sql", { name }), { dialect }),
  },

  destinations: {
    types: () => all<T.DestinationType>(path("/destination-types")),
    list: () => all<T.Destination>(path("/destinations")),
    get: (name: string) => getTagged<T.Destination>(path("/destinations/{name}", { name })),
    create: (destination: T.DestinationBody) => send<T.Destination>("POST", path("/destinations"), destination),
    put: (name: string, destination: T.DestinationBody, etag: string | null) =>
      send<T.Destination>("PUT", path("/destinations/{name}", { name }), destination, { etag }),
    remove: (name: string, etag: string | null) =>
      send<void>("DELETE", path("/destinations/{name}", { name }), undefined, { etag }),
    test: (name: string) => send<{ ok: boolean; message: string }>("POST", path("/destinations/{name}/test", { name })),
  },

  syncs: {
    list: () => all<T.SyncView>(path("/syncs")),
    get: (name: string) => getTagged<T.SyncView>(path("/syncs/{name}", { name })),
    create: (sync: T.SyncDefinition) => send<T.SyncView>("POST", path("/syncs"), sync),
    put: (name: string, sync: T.SyncDefinition, etag: string | null) =>
      send<T.SyncView>("PUT", path("/syncs/{name}", { name }), sync, { etag }),
    remove: (name: string, etag: string | null) => send<void>("DELETE", path("/syncs/{name}", { name }), undefined, { etag }),
    run: (name: string) => send<T.RunAccepted>("POST", path("/syncs/{name}/run", { name })),
    dryRun: (name: string) => send<T.DryRun>("POST", path("/syncs/{name}/dry-run", { name })),
    runs: (name: string) => get<T.Page<T.Run>>(path("/syncs/{name}/runs", { name }), { limit: 100 }).then((p) => p.items),
    rejected: (name: string) =>
      get<T.Page<T.RejectedRow>>(path("/syncs/{name}/rejected", { name }), { limit: 200 }).then((p) => p.items),
  },

  runs: {
    get: (id: string) => get<T.Run>(path("/runs/{run_id}", { run_id: id })),
    logs: (id: string) => all<T.LogLine>(path("/runs/{run_id}/logs", { run_id: id })),
  },

  users: {
    list: () => get<T.User[]>(path("/users")),
    create: (user: T.UserCreate) => send<T.User>("POST", path("/users"), user),
    update: (id: string, change: T.UserUpdate) => send<T.User>("PATCH", path("/users/{user_id}", { user_id: id }), change),
    remove: (id: string) => send<void>("DELETE", path("/users/{user_id}", { user_id: id })),
  },

  roles: {
    list: () => get<T.Role[]>(path("/roles")),
    create: (role: T.RoleCreate) => send<T.Role>("POST", path("/roles"), role),
    update: (name: string, change: T.RoleUpdate) => send<T.Role>("PATCH", path("/roles/{name}", { name }), change),
    remove: (name: string) => send<void>("DELETE", path("/roles/{name}", { name })),
    permissions: () => get<T.Permission[]>(path("/permissions")),
  },

  tokens: {
    list: () => get<T.ApiToken[]>(path("/tokens")),
    create: (name: string, expires_in_days: number | null) =>
      send<T.TokenCreated>("POST", path("/tokens"), { name, expires_in_days }),
    remove: (id: string) => send<void>("DELETE", path("/tokens/{token_id}", { token_id: id })),
  },

  audit: {
    list: (cursor?: string | null) => get<T.AuditPage>(path("/audit"), { limit: 100, cursor: cursor || undefined }),
  },
};
