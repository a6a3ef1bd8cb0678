// Response shapes of the services' routes, as their Python code builds them (most routes
// answer `dict[str, Any]`, which the OpenAPI documents can only call an object). Request
// bodies and paths come from the generated documents (./generated).

export type Role = "admin" | "ml-engineer" | "auditor" | "viewer";
export type Permission = "read" | "write" | "ingest" | "audit" | "admin";

export interface LoginGrant {
  access_token: string;
  token_type: string;
  expires_at: number;
  expires_in: number;
  refresh_token: string;
  session_id: string;
  role: Role;
  mfa_enabled: boolean;
}

export interface Me {
  tenant_id: string;
  kind: string; // "user" | "api_key"
  id: string;
  name: string;
  role: Role | null;
  permissions: Permission[];
  session_id: string | null;
}

export interface FeatureSpec {
  name: string;
  type: string;
  [k: string]: unknown;
}

export interface Model {
  id: string;
  name: string;
  task: "classification" | "regression";
  description: string;
  feature_schema: { features: FeatureSpec[]; [k: string]: unknown };
  monitoring: Record<string, unknown>;
  classes: Record<string, unknown> | null;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export interface ModelVersion {
  model_id: string;
  version: string;
  artifact_uri: string;
  artifact_sha256: string;
  metadata: Record<string, unknown>;
  stage: string;
  submitted_by: string;
  submitted_at: string;
  approved_by: string | null;
  approved_at: string | null;
  approval_comment: string | null;
}

export interface ReferenceProfile {
  version: number;
  rows: number;
  source: Record<string, unknown>;
  profile: Record<string, unknown>;
  created_by: string;
  created_at: string;
}

export interface CurrentAlert {
  fingerprint: string;
  status: "firing" | "resolved";
  labels: Record<string, string>;
  annotations: Record<string, string>;
  starts_at: string;
  value: number;
}

export interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  receivers: { name: string }[];
  fingerprint: string;
  startsAt: string;
  updatedAt: string;
  endsAt: string;
  status: { state: string; silencedBy: string[]; inhibitedBy: string[]; mutedBy: string[] };
}

export interface AmGroup {
  labels: Record<string, string>;
  receiver: { name: string };
  alerts: AmAlert[];
}

export interface Matcher {
  name: string;
  value: string;
  op: "=" | "!=" | "=~" | "!~";
}

export interface SilenceRow {
  id: string;
  matchers: Matcher[];
  starts_at: string;
  ends_at: string;
  created_by: string;
  comment: string;
  state: "active" | "pending" | "expired";
}

export interface DeliveryAttempt {
  attempt: number;
  at: string;
  ok: boolean;
  status_code: number | null;
  error: string | null;
  duration_ms: number | null;
}

export interface Delivery {
  id: string;
  receiver: string;
  kind: string;
  status: string;
  attempts: number;
  last_error: string | null;
  created_at: string;
  finished_at: string | null;
  attempts_log: DeliveryAttempt[];
}

export interface AlertRule {
  id: string;
  name: string;
  model_id: string | null;
  condition: { metric: string; op: string; value: number; feature?: string | null };
  for_windows: number;
  severity: "info" | "warning" | "critical";
  labels: Record<string, string>;
  annotations: Record<string, string>;
  remediation: Record<string, unknown> | null;
  enabled: boolean;
}

export interface ReportFile {
  name: string;
  media_type?: string;
  bytes?: number;
  sha256?: string;
}

export interface ReportJob {
  id: string;
  framework: "gdpr" | "sox" | "fda" | "model_card";
  status: string; // queued | running | done | failed
  stage: string;
  progress: number;
  period_start: string;
  period_end: string;
  model_id: string | null;
  formats: string[];
  requested_by: string;
  created_at: string;
  error?: string | null;
  files?: ReportFile[]; // GET /v1/reports/{id} only; the list has the manifest
  manifest?: { files?: ReportFile[]; [k: string]: unknown } | null;
  downloads?: Record<string, string>;
  [k: string]: unknown;
}

export interface AuditItem {
  seq: number;
  occurred_at: string;
  actor: string;
  action: string;
  resource_type: string;
  resource_id: string;
  outcome: string;
  service: string;
  hash?: string;
  record?: unknown;
  [k: string]: unknown;
}

export interface AuditVerification {
  ok: boolean;
  range: { from_seq: number; to_seq: number | null; [k: string]: unknown };
  first_break: { seq: number; reason: string; [k: string]: unknown } | null;
  [k: string]: unknown;
}
