// A model's monitoring history: from the console's /api/history/<model> when it answers
// (InfluxDB, as the dashboards read it), else from the /api/live records received since
// the console opened. Either way the same shapes, oldest first.
import { raw } from "../../api/http";
import type { ModelLive } from "../../live/store";

export interface WindowPoint {
  time: string;
  version: string;
  events: number;
  drifted_share: number | null;
  dataset_drift: boolean | null;
  quality_score: number | null;
  late_events?: number;
  business_value_sum?: number | null;
  business_value_mean?: number | null;
  business_value_count?: number | null;
}

export interface FeaturePoint {
  time: string;
  feature: string;
  statistic: number;
  threshold: number;
  p_value: number | null;
  drifted: boolean;
}

export interface BinPoint {
  bin: string;
  upper?: number | null;
  reference_share: number;
  current_share: number;
  current_count?: number;
}

export interface PerformancePoint {
  time: string;
  labelled: number;
  metrics: Record<string, number>;
  business_value_wrong?: number | null;
  version?: string;
}

export interface History {
  source: "history" | "live";
  note: string;
  windows: WindowPoint[];
  features: FeaturePoint[];
  bins: Record<string, BinPoint[]>;
  performance: PerformancePoint[];
}

/** One spelling of an instant ("...T10:00:00.000Z"), so times from InfluxDB and from the topics
 * sort and compare as instants. */
export function norm(t: string): string {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toISOString();
}

/** What /api/live delivered, in the history's shapes. A window's performance can come more
 * than once (labels arrive late): the latest record of a window replaces the earlier. */
export function fromLive(m: ModelLive | undefined, note: string): History {
  const windows = new Map<string, WindowPoint>();
  const features: FeaturePoint[] = [];
  for (const d of m?.drift ?? []) {
    const t = norm(d.window.end);
    windows.set(t, {
      ...(windows.get(t) ?? { quality_score: null }),
      time: t,
      version: d.model_version,
      events: d.window.events,
      late_events: d.window.late_events ?? 0,
      drifted_share: d.drifted_share,
      dataset_drift: d.dataset_drift,
    });
    const all = d.prediction ? [...d.features, { ...d.prediction, feature: "prediction" }] : d.features;
    for (const f of all) {
      features.push({ time: t, feature: f.feature, statistic: f.statistic, threshold: f.threshold, p_value: f.p_value, drifted: f.drifted });
    }
  }
  for (const q of m?.quality ?? []) {
    const t = norm(q.window.end);
    const w = windows.get(t);
    windows.set(t, {
      time: t,
      version: q.model_version,
      events: w?.events ?? q.window.events,
      drifted_share: w?.drifted_share ?? null,
      dataset_drift: w?.dataset_drift ?? null,
      quality_score: q.quality_score,
    });
  }
  const perf = new Map<string, PerformancePoint>();
  for (const p of m?.performance ?? []) {
    perf.set(norm(p.window.end), { time: norm(p.window.end), labelled: p.labelled, metrics: p.metrics, version: p.model_version });
  }
  const byTime = <T extends { time: string }>(a: T, b: T) => a.time.localeCompare(b.time);
  return {
    source: "live",
    note,
    windows: [...windows.values()].sort(byTime),
    features: features.sort(byTime),
    bins: {},
    performance: [...perf.values()].sort(byTime),
  };
}

export async function loadHistory(modelId: string, hours: number, limit?: number): Promise<Omit<History, "source" | "note">> {
  const res = await raw("history", `/${encodeURIComponent(modelId)}?hours=${hours}${limit ? `&limit=${limit}` : ""}`);
  const d = (await res.json()) as Partial<History>;
  const at = <T extends { time: string }>(xs: T[] | undefined) => (xs ?? []).map((x) => ({ ...x, time: norm(x.time) }));
  return {
    windows: at(d.windows),
    features: at(d.features),
    bins: d.bins ?? {},
    performance: at(d.performance),
  };
}

/** The stored history with the live windows that came after it appended. */
export function merged(stored: Omit<History, "source" | "note"> | null, live: History): History {
  if (!stored) return live;
  const lastW = stored.windows[stored.windows.length - 1]?.time ?? "";
  const lastF = stored.features[stored.features.length - 1]?.time ?? "";
  const lastP = stored.performance[stored.performance.length - 1]?.time ?? "";
  return {
    source: "history",
    note: "",
    windows: [...stored.windows, ...live.windows.filter((w) => w.time > lastW)],
    features: [...stored.features, ...live.features.filter((f) => f.time > lastF)],
    bins: stored.bins,
    performance: [...stored.performance, ...live.performance.filter((p) => p.time > lastP)],
  };
}

// --- the reference profile's distributions ------------------------------------------------

interface NumericProfile {
  kind: "numeric";
  histogram?: { edges: number[]; counts: number[] };
  count?: number;
}
interface CategoricalProfile {
  kind: "categorical";
  categories?: Record<string, number>;
  other?: number;
  count?: number;
}

const fmt = (x: number) => Number(x.toPrecision(4)).toString();

/** The reference's shares per bin, from its profile: a numeric feature's histogram (counts
 * between interior edges, open at both ends when there is one count more than edges), a
 * categorical feature's categories (and `other`). */
export function referenceBins(profile: unknown): BinPoint[] {
  if (!profile || typeof profile !== "object") return [];
  const p = profile as NumericProfile | CategoricalProfile;
  if (p.kind === "categorical") {
    const cats = Object.entries(p.categories ?? {});
    const total = cats.reduce((s, [, n]) => s + n, 0) + (p.other ?? 0);
    const out = cats.map(([bin, n]) => ({ bin, reference_share: total ? n / total : 0, current_share: 0 }));
    if (p.other) out.push({ bin: "(other)", reference_share: p.other / total, current_share: 0 });
    return out;
  }
  const h = p.histogram;
  if (!h) return [];
  const total = h.counts.reduce((s, n) => s + n, 0);
  const open = h.counts.length === h.edges.length + 1;
  return h.counts.map((n, i) => {
    let bin: string;
    if (open) {
      const lo = h.edges[i - 1];
      const hi = h.edges[i];
      bin = lo === undefined ? `≤ ${fmt(hi ?? 0)}` : hi === undefined ? `> ${fmt(lo)}` : `${fmt(lo)}–${fmt(hi)}`;
    } else {
      bin = `${fmt(h.edges[i] ?? 0)}–${fmt(h.edges[i + 1] ?? 0)}`;
    }
    return { bin, reference_share: total ? n / total : 0, current_share: 0 };
  });
}
