import { describe, expect, it } from "vitest";

import type { AudienceSummary } from "../../api/types";
import { formatAgo } from "../../components/format";
import { needsMeasure } from "./measure";

const audience = (change: Partial<AudienceSummary>): AudienceSummary => ({
  name: "VIPs",
  description: null,
  file: "audiences/vips.yaml",
  etag: '"1"',
  conditions: 2,
  size: 968,
  sized_at: "2026-12-04T10:00:00Z",
  size_stale: false,
  syncs: [],
  ...change,
});

describe("the audiences list", () => {
  it("measures audiences never measured or measured on an older definition", () => {
    expect(needsMeasure(audience({}))).toBe(false);
    expect(needsMeasure(audience({ size: null, sized_at: null }))).toBe(true);
    expect(needsMeasure(audience({ size_stale: true }))).toBe(true);
  });

  it("says how fresh a size is, long or short", () => {
    const now = Date.parse("2026-12-04T10:05:00Z");
    expect(formatAgo("2026-12-04T10:00:00Z", now)).toBe("5 minutes ago");
    expect(formatAgo("2026-12-04T10:00:00Z", now, true)).toBe("5 min ago");
    expect(formatAgo("2026-12-04T10:04:58Z", now)).toBe("just now");
    expect(formatAgo(null, now)).toBe("never");
  });
});
