/**
 * Where the relationship diagram puts each model: the parent on the left, then one column
 * per step away from it (related and event models it joins directly, then what those
 * join), each model level with the models that lead to it. Models nothing reaches go in a
 * last column. Pure, so it is unit-tested.
 */
import type { Relationship } from "../../api/types";

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 78;
export const COLUMN_GAP = 170;
export const ROW_GAP = 34;

export interface LaidModel {
  name: string;
  kind: string;
  column: number;
  x: number;
  y: number;
}

export interface DirectEdge {
  id: string;
  source: string;
  target: string;
  name: string;
  cardinality: string | null;
  /** A join that points back to an earlier column (or within one). */
  backwards: boolean;
}

export interface ThroughEdge {
  id: string;
  source: string;
  target: string;
  name: string;
  /** The model names on the way, from the first hop's target to the last. */
  path: string[];
}

export interface Layout {
  models: LaidModel[];
  direct: DirectEdge[];
  through: ThroughEdge[];
  /** Below every model: where `through` edges run, one lane each. */
  laneY: number;
}

/** "one_to_many" → "1 → many"; null when unknown. */
export function cardinalityLabel(cardinality: string | null | undefined): string | null {
  switch (cardinality) {
    case "one_to_many":
      return "1 → many";
    case "many_to_one":
      return "many → 1";
    case "one_to_one":
      return "1 → 1";
    default:
      return null;
  }
}

export function layoutSchema(models: { name: string; kind: string }[], relationships: Relationship[]): Layout {
  const known = new Set(models.map((m) => m.name));
  const parent = models.find((m) => m.kind === "parent")?.name ?? models[0]?.name;
  const direct = relationships.filter((r) => !r.through?.length && r.to && known.has(r.from) && known.has(r.to));

  // Columns: steps from the parent along direct relationships, either way round.
  const column = new Map<string, number>();
  if (parent) column.set(parent, 0);
  for (let frontier = parent ? [parent] : []; frontier.length; ) {
    const next: string[] = [];
    for (const name of frontier) {
      for (const r of direct) {
        const other = r.from === name ? r.to! : r.to === name ? r.from : null;
        if (other && !column.has(other)) {
          column.set(other, column.get(name)! + 1);
          next.push(other);
        }
      }
    }
    frontier = next;
  }
  const last = Math.max(0, ...column.values()) + 1;
  for (const m of models) if (!column.has(m.name)) column.set(m.name, last);

  // Rows: column by column, each model near the models that lead to it.
  const y = new Map<string, number>();
  const columns = [...new Set(column.values())].sort((a, b) => a - b);
  const step = NODE_HEIGHT + ROW_GAP;
  for (const c of columns) {
    const here = models.filter((m) => column.get(m.name) === c);
    const wanted = new Map(
      here.map((m) => {
        const from = direct
          .filter((r) => (r.to === m.name && y.has(r.from)) || (r.from === m.name && y.has(r.to!)))
          .map((r) => y.get(r.to === m.name ? r.from : r.to!)!);
        return [m.name, from.length ? from.reduce((a, b) => a + b, 0) / from.length : 0] as const;
      }),
    );
    // Events last in a column: they are the busiest tables and usually join only the parent.
    here.sort((a, b) => wanted.get(a.name)! - wanted.get(b.name)! || Number(a.kind === "event") - Number(b.kind === "event"));
    // Models that want the same row share it, spread around it; then none overlaps.
    let above = -Infinity;
    here.forEach((m) => {
      const w = wanted.get(m.name)!;
      const same = here.filter((o) => wanted.get(o.name) === w);
      const desired = w + (same.indexOf(m) - (same.length - 1) / 2) * step;
      const at = Math.max(desired, above + step);
      y.set(m.name, at);
      above = at;
    });
  }

  const laid = models.map((m) => ({
    name: m.name,
    kind: m.kind,
    column: column.get(m.name)!,
    x: column.get(m.name)! * (NODE_WIDTH + COLUMN_GAP),
    y: y.get(m.name)!,
  }));
  const byName = new Map(relationships.map((r) => [r.name ?? r.to ?? "", r]));
  return {
    models: laid,
    direct: direct.map((r, i) => ({
      id: `direct-${i}`,
      source: r.from,
      target: r.to!,
      name: r.name ?? r.to!,
      cardinality: cardinalityLabel(r.cardinality),
      backwards: column.get(r.to!)! <= column.get(r.from)!,
    })),
    through: relationships
      .filter((r) => r.through?.length)
      .map((r, i) => {
        const path = r.through!.map((hop) => byName.get(hop)?.to ?? hop);
        return { id: `through-${i}`, source: r.from, target: path[path.length - 1], name: r.name ?? path.join("_"), path };
      })
      .filter((e) => known.has(e.source) && known.has(e.target)),
    laneY: Math.max(0, ...laid.map((m) => m.y)) + NODE_HEIGHT + 40,
  };
}
