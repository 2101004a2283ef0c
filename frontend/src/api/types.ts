/**
 * The shapes the screens work with. Where the OpenAPI document types a response, these
 * match it (and endpoints.ts checks the paths against the generated `paths`); where the
 * API answers a free-form object (previews, schema parts), they follow the Python code
 * that builds it (corral.audiences.preview, corral.schema.model).
 */
import type { AudienceDefinition } from "../audience/model";
import type { components } from "./schema.gen";

type Schemas = components["schemas"];

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export type Me = Schemas["PrincipalOut"];
export type Grant = Schemas["GrantModel"];

// ---- sources ------------------------------------------------------------------------------

export interface Source {
  name: string;
  dialect: string;
  url: string;
  planner_schema: string;
}

export interface TableRef {
  schema_name: string | null;
  name: string;
}

export interface WarehouseColumn {
  name: string;
  type: string;
  native_type: string;
  nullable: boolean;
}

export interface ConnectionTest {
  ok: boolean;
  message: string;
  dialect: string | null;
  milliseconds: number;
  tables: TableRef[];
}

// ---- schema -------------------------------------------------------------------------------

export type Privacy = "public" | "internal" | "pii" | "sensitive";

export interface ColumnSettings {
  alias?: string | null;
  type?: string | null;
  hidden?: boolean;
  privacy?: Privacy;
  description?: string | null;
  suggestions?: boolean;
}

export interface ModelSummary {
  name: string;
  kind: "parent" | "related" | "event";
  table: string | null;
  sql: string | null;
  primary_key: string;
  description?: string | null;
}

export interface ModelColumn {
  name: string;
  type: string | null;
  native_type: string | null;
  in_warehouse: boolean;
  settings: ColumnSettings;
}

export interface ModelDetail extends ModelSummary {
  label_columns: string[];
  time_column: string | null;
  event: { timestamp: string; type?: string | null } | null;
  columns: ModelColumn[];
  relations: string[];
}

export interface ModelDefinition {
  name: string;
  table?: string | null;
  sql?: string | null;
  primary_key: string;
  label_columns?: string[];
  columns?: Record<string, ColumnSettings>;
  timestamp?: string | null;
  event?: { timestamp: string; type?: string | null } | null;
  description?: string | null;
}

export interface Relationship {
  name?: string | null;
  from: string;
  to?: string | null;
  cardinality?: "one_to_one" | "one_to_many" | "many_to_one";
  join?: Record<string, string>;
  through?: string[];
}

export interface Trait {
  name: string;
  relation?: string | null;
  aggregate?: string | null;
  column?: string | null;
  where?: unknown;
  order_by?: string | null;
  formula?: string | null;
  sql?: string | null;
  type?: string | null;
  description?: string | null;
}

export interface SchemaDocument {
  parent: ModelDefinition;
  models?: ModelDefinition[];
  relationships?: Relationship[];
  traits?: Trait[];
}

export interface CheckProblem {
  where: string;
  message: string;
  hint?: string | null;
}

export interface CheckResult {
  ok: boolean;
  problems: CheckProblem[];
}

export interface Suggestion {
  value: unknown;
  count: number;
}

// ---- audiences ----------------------------------------------------------------------------

export interface SyncUse {
  name: string;
  destination: string;
  status: string | null;
  finished_at?: string | null;
}

export interface AudienceSummary {
  name: string;
  description: string | null;
  file: string;
  etag: string;
  conditions: number;
  /** The latest measured size (on this definition when it ever was), null if never measured. */
  size: number | null;
  parent_rows?: number | null;
  sized_at?: string | null;
  size_as_of?: string | null;
  /** Measured on an older definition: the audience (or one it refers to) changed since. */
  size_stale?: boolean;
  size_source?: string | null;
  syncs: SyncUse[];
}

export type MeasuredSize = Schemas["MeasuredSize"];

export interface AudienceDetail {
  name: string;
  description: string | null;
  file: string;
  etag: string;
  definition: AudienceDefinition;
  yaml: string;
  used_by: string[];
}

export interface Version {
  audience: string;
  version: number;
  action: string;
  author: string | null;
  saved_at: string;
  definition: string;
}

export interface Block {
  /** The top-level condition's position, counting from 1. */
  index: number;
  description: string;
  size: number;
}

export interface Breakdown {
  name: string;
  source: "column" | "trait";
  type: string;
  kind: "top_values" | "histogram";
  nulls: number;
  values?: { value: unknown; count: number }[];
  other?: number;
  unit?: string | null;
  bins?: { low: unknown; high: unknown; count: number }[];
}

export interface Sample {
  columns: string[];
  rows: Record<string, unknown>[];
  redacted: string[];
}

export interface Timing {
  step: string;
  total_ms: number;
  warehouse_ms: number;
  corral_ms: number;
}

export interface Preview {
  audience: string;
  size: number;
  parent_rows: number;
  share: number;
  as_of: string;
  time_zone: string;
  dialect: string;
  sql: string;
  blocks: Block[];
  breakdowns: Breakdown[];
  sample: Sample | null;
  timings: Timing[];
  total_ms: number;
}

export interface Members {
  columns: string[];
  redacted: string[];
  items: Record<string, unknown>[];
  next_cursor: string | null;
}

export interface AudienceSql {
  audience: string;
  dialect: string;
  sql: string;
}

// ---- destinations and syncs ---------------------------------------------------------------

export interface IdentifierInfo {
  kind: string;
  rules: string;
  hashed: boolean;
}

export type DestinationType = Omit<Schemas["DestinationType"], "identifiers" | "config_schema"> & {
  identifiers: Record<string, IdentifierInfo>;
  config_schema: JsonSchema;
};

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  writeOnly?: boolean;
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  format?: string;
  minimum?: number;
  maximum?: number;
}

export type Destination = Schemas["DestinationView"];
export type DestinationBody = Schemas["DestinationBody"];

export type MappedValue = string | { constant: string | number | boolean | null } | { template: string };

export type Schedule =
  | "manual"
  | { every: string }
  | { cron: string; time_zone?: string }
  | { after: string };

export interface SyncDefinition {
  name: string;
  audience?: string | null;
  model?: string | null;
  destination: string;
  mode: string;
  key?: string | null;
  mapping: Record<string, MappedValue>;
  schedule?: Schedule;
  guards?: { max_removal_share?: number; hold_when_empty?: boolean };
  description?: string | null;
}

export interface RunCounts {
  planned_added: number;
  planned_changed: number;
  planned_removed: number;
  added: number;
  changed: number;
  removed: number;
  rejected: number;
  retried: number;
  held_removals: number;
  members: number;
}

/** A run as GET /runs/{id} answers it (corral.store.records.RunRecord.to_dict). */
export interface Run {
  id: string;
  sync: string;
  status: string;
  trigger: string;
  dry_run: boolean;
  queued_at: string | null;
  scheduled_for?: string | null;
  triggered_by?: string | null;
  started_at: string | null;
  finished_at: string | null;
  seconds?: number | null;
  worker_id?: string | null;
  attempt?: number;
  counts: Partial<RunCounts>;
  timings?: Record<string, number>;
  error?: string | null;
  rejected?: RejectedRow[];
  url?: string;
}

/** What POST /syncs/{name}/dry-run answers (corral.activation.runs.RunReport.to_dict). */
export interface DryRun {
  sync: string;
  run_id: string;
  status: string;
  counts: Partial<RunCounts>;
  error: string | null;
  rejected: RejectedRow[];
  samples: Record<string, Record<string, unknown>[]>;
  timings: Record<string, number>;
  seconds: number | null;
}

export type SyncView = Omit<Schemas["SyncView"], "definition" | "latest_run"> & {
  definition: SyncDefinition;
  latest_run: Run | null;
};

export type RunAccepted = Schemas["RunAccepted"];
export type RejectedRow = Schemas["RejectedRowView"];
export type LogLine = Schemas["LogLineView"];

// ---- governance ---------------------------------------------------------------------------

export type User = Schemas["UserOut"];
export type UserCreate = Schemas["UserCreate"];
export type UserUpdate = Schemas["UserUpdate"];
export type Role = Schemas["RoleOut"];
export type RoleCreate = Schemas["RoleCreate"];
export type RoleUpdate = Schemas["RoleUpdate"];
export type Permission = Schemas["PermissionOut"];
export type ApiToken = Schemas["TokenOut"];
export type TokenCreated = Schemas["TokenCreated"];
export type AuditEntry = Schemas["AuditEntryOut"];
export type AuditPage = Schemas["AuditPageOut"];
