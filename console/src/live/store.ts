// What the console has learnt from /api/live since it opened, per model; seeded with the
// alerts the alerting API says are firing.
import type { CurrentAlert } from "../api/types";
import type { AlertRecord, DriftRecord, LiveRecord, PerformanceRecord, QualityRecord } from "./records";
import type { LiveState } from "./sse";

const KEEP = 500; // windows kept per model and kind

export interface ModelLive {
  drift: DriftRecord[];
  quality: QualityRecord[];
  performance: PerformanceRecord[];
  concept: PerformanceRecord[];
}

export interface FiringAlert {
  fingerprint: string;
  model: string;
  alertname: string;
  severity: string;
}

export interface LiveSnapshot {
  state: LiveState;
  detail: string;
  models: Record<string, ModelLive>;
  firing: Record<string, FiringAlert>;
  alerts: AlertRecord[]; // the latest alert events, newest first
  received: number;
}

const empty = (): ModelLive => ({ drift: [], quality: [], performance: [], concept: [] });

function push<T>(list: T[], x: T): T[] {
  const out = [...list, x];
  return out.length > KEEP ? out.slice(out.length - KEEP) : out;
}

export class LiveStore {
  private snap: LiveSnapshot = {
    state: "connecting",
    detail: "",
    models: {},
    firing: {},
    alerts: [],
    received: 0,
  };
  private subs = new Set<() => void>();

  subscribe = (fn: () => void): (() => void) => {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  };

  get = (): LiveSnapshot => this.snap;

  private set(next: LiveSnapshot): void {
    this.snap = next;
    for (const fn of this.subs) fn();
  }

  setState(state: LiveState, detail = ""): void {
    this.set({ ...this.snap, state, detail });
  }

  /** Alerts firing now, from the alerting API (replaces what was known). */
  seedAlerts(alerts: CurrentAlert[]): void {
    const firing: Record<string, FiringAlert> = {};
    for (const a of alerts) {
      if (a.status !== "firing") continue;
      firing[a.fingerprint] = {
        fingerprint: a.fingerprint,
        model: a.labels.model ?? "",
        alertname: a.labels.alertname ?? "",
        severity: a.labels.severity ?? "",
      };
    }
    this.set({ ...this.snap, firing });
  }

  /** A stored window (from /api/history) where none came live yet: it never replaces a
   * newer live one. */
  seed(r: Exclude<LiveRecord, { kind: "alert" }>): void {
    const m = this.snap.models[r.record.model_id];
    const list = !m ? [] : r.kind === "drift" ? m.drift : r.kind === "quality" ? m.quality : r.record.kind === "concept_drift" ? m.concept : m.performance;
    if (list.length === 0) this.add(r);
  }

  add(r: LiveRecord): void {
    const s = this.snap;
    if (r.kind === "alert") {
      const a = r.record;
      const firing = { ...s.firing };
      if (a.kind === "firing") {
        firing[a.fingerprint] = {
          fingerprint: a.fingerprint,
          model: a.labels.model ?? "",
          alertname: a.labels.alertname ?? "",
          severity: a.severity,
        };
      } else if (a.kind === "resolved") {
        delete firing[a.fingerprint];
      }
      this.set({ ...s, firing, alerts: [a, ...s.alerts].slice(0, KEEP), received: s.received + 1 });
      return;
    }
    const rec = r.record;
    if (Object.keys(rec.segment ?? {}).length > 0) {
      // segment windows are on the dashboards; the console shows the whole population
      this.set({ ...s, received: s.received + 1 });
      return;
    }
    const m = s.models[rec.model_id] ?? empty();
    let next: ModelLive;
    if (r.kind === "drift") next = { ...m, drift: push(m.drift, r.record) };
    else if (r.kind === "quality") next = { ...m, quality: push(m.quality, r.record) };
    else if (r.record.kind === "concept_drift") next = { ...m, concept: push(m.concept, r.record) };
    else next = { ...m, performance: push(m.performance, r.record) };
    this.set({ ...s, models: { ...s.models, [rec.model_id]: next }, received: s.received + 1 });
  }
}

// --- health -------------------------------------------------------------------------------

export type HealthStatus = "drifting" | "degraded" | "alerting" | "healthy" | "no data";

const DRIFT_ALERTS = new Set(["DatasetDrift", "FeatureDrift", "PredictionDrift"]);
export const QUALITY_FLOOR = 90; // the default DataQuality rule's threshold

export interface Health {
  status: HealthStatus;
  why: string;
  openAlerts: number;
  drift?: DriftRecord;
  quality?: QualityRecord;
  performance?: PerformanceRecord;
}

const last = <T,>(xs: T[]): T | undefined => xs[xs.length - 1];

/** A model's health from its latest windows and its firing alerts. The latest drift window
 * decides drifting or not; with no window seen yet, a firing drift alert does. */
export function healthOf(modelId: string, snap: LiveSnapshot): Health {
  const m = snap.models[modelId];
  const alerts = Object.values(snap.firing).filter((a) => a.model === modelId);
  const drift = m && last(m.drift);
  const quality = m && last(m.quality);
  const performance = m && last(m.performance);
  const concept = m && last(m.concept);
  const base = { openAlerts: alerts.length, drift, quality, performance };
  if (drift?.dataset_drift) {
    return { ...base, status: "drifting", why: `${Math.round(drift.drifted_share * 100)}% of features drifted in the latest window` };
  }
  if (!drift && alerts.some((a) => DRIFT_ALERTS.has(a.alertname))) {
    return { ...base, status: "drifting", why: "a drift alert is firing" };
  }
  if (quality && quality.quality_score < QUALITY_FLOOR) {
    return { ...base, status: "degraded", why: `data quality ${quality.quality_score.toFixed(1)}/100` };
  }
  if (concept && (!performance || concept.window.end >= performance.window.end)) {
    return { ...base, status: "degraded", why: "concept drift: the error rate rose" };
  }
  if (alerts.length > 0) {
    return { ...base, status: "alerting", why: `${alerts.length} alert(s) firing` };
  }
  if (drift) return { ...base, status: "healthy", why: "no drift in the latest window" };
  return { ...base, status: "no data", why: "no window since the console opened" };
}
