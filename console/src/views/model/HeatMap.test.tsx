import { describe, expect, it } from "vitest";
import { severity } from "./HeatMap";

const point = (statistic: number, threshold: number, p_value: number | null, drifted: boolean) => ({
  time: "2026-12-03T10:00:00.000Z",
  feature: "income",
  statistic,
  threshold,
  p_value,
  drifted,
});

describe("heat map shade", () => {
  it("reads a p-value test's threshold as its significance level", () => {
    // KS with D = 0.02 and p = 0.7 at level 0.05 did not drift: a light cell, not a dark one
    expect(severity(point(0.02, 0.05, 0.7, false))).toBeCloseTo(0.05 / 0.7 / 2, 6);
    // p = 0.0001 at level 0.05 is 500 times past the threshold: the darkest cell
    expect(severity(point(0.4, 0.05, 0.0001, true))).toBe(1);
  });

  it("reads a distance test as statistic over threshold", () => {
    expect(severity(point(0.05, 0.1, null, false))).toBeCloseTo(0.25, 6);
    expect(severity(point(0.15, 0.1, null, true))).toBeCloseTo(0.75, 6);
  });

  it("keeps the verdict's side of the middle", () => {
    expect(severity(point(0.11, 0.1, null, true))).toBeGreaterThanOrEqual(0.5);
    expect(severity(point(0.3, 0.1, null, false))).toBeLessThan(0.5);
  });
});
