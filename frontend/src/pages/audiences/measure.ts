/**
 * Measuring the audiences list in the background: every audience without a size, or with
 * one measured on an older definition, is previewed a few at a time; each size lands in
 * the list as soon as it is known (the API records it, so the next visit has it too).
 */
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";

import { api } from "../../api/endpoints";
import { keys } from "../../api/queries";
import type { AudienceSummary } from "../../api/types";

/** Previews running at once: the warehouse also serves the people using the studio. */
export const MEASURE_CONCURRENCY = 2;

export interface Measuring {
  /** Names being measured now. */
  running: ReadonlySet<string>;
  /** Names waiting their turn. */
  queued: ReadonlySet<string>;
  /** Names whose measure failed, with the error; not retried until the page is opened again. */
  failed: ReadonlyMap<string, unknown>;
}

/** Which audiences the list should measure: never measured, or measured on an older definition. */
export function needsMeasure(a: AudienceSummary): boolean {
  return a.size == null || Boolean(a.size_stale);
}

export function useBackgroundMeasure(audiences: AudienceSummary[] | undefined, enabled: boolean): Measuring {
  const queryClient = useQueryClient();
  const tried = useRef(new Set<string>()); // by name and etag: an edit is measured again
  const busy = useRef(0);
  const [running, setRunning] = useState<ReadonlySet<string>>(new Set());
  const [queued, setQueued] = useState<ReadonlySet<string>>(new Set());
  const [failed, setFailed] = useState<ReadonlyMap<string, unknown>>(new Map());
  const [tick, setTick] = useState(0);

  useEffect(() => {
    if (!enabled || !audiences) return;
    const waiting = audiences.filter((a) => needsMeasure(a) && !tried.current.has(`${a.name}\u0000${a.etag}`));
    const starting = waiting.slice(0, Math.max(0, MEASURE_CONCURRENCY - busy.current));
    setQueued(new Set(waiting.slice(starting.length).map((a) => a.name)));
    for (const audience of starting) {
      tried.current.add(`${audience.name}\u0000${audience.etag}`);
      busy.current += 1;
      setRunning((r) => new Set(r).add(audience.name));
      api.audiences
        .measure(audience.name)
        .then((preview) => {
          queryClient.setQueryData<AudienceSummary[]>(keys.audiences, (list) =>
            list?.map((a) =>
              a.name === audience.name && a.etag === audience.etag
                ? {
                    ...a,
                    size: preview.size,
                    parent_rows: preview.parent_rows,
                    sized_at: new Date().toISOString(),
                    size_as_of: preview.as_of,
                    size_stale: false,
                    size_source: "studio",
                  }
                : a,
            ),
          );
          queryClient.invalidateQueries({ queryKey: keys.sizes(audience.name) });
        })
        .catch((error: unknown) => setFailed((f) => new Map(f).set(audience.name, error)))
        .finally(() => {
          busy.current -= 1;
          setRunning((r) => {
            const next = new Set(r);
            next.delete(audience.name);
            return next;
          });
          setTick((t) => t + 1);
        });
    }
  }, [audiences, enabled, tick, queryClient]);

  return { running, queued, failed };
}
