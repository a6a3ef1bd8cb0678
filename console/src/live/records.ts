// The result records /api/live forwards, as they are on their topics
// (libs/driftline-core/src/driftline_core/events: drift, quality, performance, alerts).

export interface WindowSpan {
  start: string;
  end: string;
  events: number;
  late_events?: number;
}

interface WindowResult {
  event_id: string;
  tenant_id: string;
  occurred_at: string;
  model_id: string;
  model_version: string;
  segment: Record<string, string>;
  window: WindowSpan;
}

export interface FeatureDrift {
  feature: string;
  test: string;
  statistic: number;
  p_value: number | null;
  threshold: number;
  drifted: boolean;
}

export interface DriftRecord extends WindowResult {
  features: FeatureDrift[];
  prediction: FeatureDrift | null;
  drifted_share: number;
  dataset_drift: boolean;
  multivariate: { method: string; score: number; threshold: number; drifted: boolean } | null;
}

export interface FeatureQuality {
  feature: string;
  count: number;
  missing: number;
  out_of_range: number;
  unseen_categories: number;
  type_errors: number;
  outliers: number;
}

export interface QualityRecord extends WindowResult {
  features: FeatureQuality[];
  quality_score: number;
}

export interface PerformanceRecord extends WindowResult {
  kind: "window_metrics" | "concept_drift";
  task: "classification" | "regression";
  labelled: number;
  metrics: Record<string, number>;
  detector: string | null;
}

export interface AlertRecord {
  event_id: string;
  tenant_id: string;
  occurred_at: string;
  kind:
    | "firing"
    | "resolved"
    | "silence_created"
    | "silence_expired"
    | "delivery_succeeded"
    | "delivery_failed";
  fingerprint: string;
  rule_id: string | null;
  severity: "info" | "warning" | "critical";
  labels: Record<string, string>;
  annotations: Record<string, string>;
  starts_at: string | null;
  ends_at: string | null;
  receiver: string | null;
  details: Record<string, unknown>;
}

export type LiveRecord =
  | { kind: "drift"; record: DriftRecord }
  | { kind: "quality"; record: QualityRecord }
  | { kind: "performance"; record: PerformanceRecord }
  | { kind: "alert"; record: AlertRecord };

const KINDS = new Set(["drift", "quality", "performance", "alert"]);

/** A message of the stream as a record, or null for kinds and data this console does not
 * know (they are skipped, never fatal). */
export function toRecord(event: string, data: string): LiveRecord | null {
  if (!KINDS.has(event)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return null;
  }
  if (!parsed || typeof parsed !== "object") return null;
  const r = parsed as Record<string, unknown>;
  if (event === "alert") {
    return typeof r.fingerprint === "string" ? { kind: "alert", record: parsed as AlertRecord } : null;
  }
  if (typeof r.model_id !== "string" || !r.window) return null;
  return { kind: event, record: parsed } as LiveRecord;
}
