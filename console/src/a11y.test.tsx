// axe-core over every view as rendered with a fake API: roles, names, labels, landmarks,
// headings, ARIA. (Colour contrast needs a real layout engine: jsdom has none, so that rule
// is off here; the palette in styles.css is chosen for >= 7:1 and checked in Chromium.)
import { screen } from "@testing-library/react";
import axe from "axe-core";
import { describe, expect, it } from "vitest";
import fixture from "./reports/fixtures/bundle.json";
import { ADMIN_ME, driftRecord, fakeApi, fakeStream, json } from "./test/fakeApi";
import { loggedIn, renderApp } from "./test/render";

const MODEL = {
  id: "credit",
  name: "Credit risk",
  task: "classification",
  description: "",
  feature_schema: { features: [{ name: "income", kind: "numeric" }] },
  monitoring: { dataset_drift_share: 0.5 },
  classes: null,
  created_by: "user:alice",
  created_at: "2026-12-01T00:00:00Z",
  updated_at: "2026-12-01T00:00:00Z",
};
const t = (m: number) => `2026-12-03T10:${String(m).padStart(2, "0")}:00Z`;

function world() {
  const live = fakeStream();
  fakeApi({
    "GET /api/ingestion/v1/auth/me": () => json(ADMIN_ME),
    "GET /api/ingestion/v1/auth/oidc/config": () => json({ enabled: true, login_url: "/v1/auth/oidc/login" }),
    "GET /api/ingestion/v1/models": () => json([MODEL]),
    "GET /api/ingestion/v1/models/credit": () => json(MODEL),
    "GET /api/ingestion/v1/models/credit/versions": () =>
      json([{ model_id: "credit", version: "1", artifact_uri: "s3://m/1", artifact_sha256: "0".repeat(64), metadata: {}, stage: "staging", submitted_by: "user:alice", submitted_at: t(0), approved_by: null, approved_at: null, approval_comment: null }]),
    "GET /api/ingestion/v1/models/credit/reference": () =>
      json({ version: 1, rows: 10, source: {}, profile: { features: { income: { kind: "numeric", histogram: { edges: [10], counts: [5, 5] } } } }, created_by: "user:alice", created_at: t(0) }),
    "GET /api/history/credit": () =>
      json({
        windows: [0, 5].map((m) => ({ time: t(m), version: "1", events: 9, drifted_share: 0, dataset_drift: false, quality_score: 99, business_value_sum: 3, business_value_mean: 1, business_value_count: 3 })),
        features: [0, 5].map((m) => ({ time: t(m), feature: "income", statistic: 0.01, threshold: 0.1, p_value: 0.5, drifted: false })),
        bins: {},
        performance: [{ time: t(5), labelled: 9, metrics: { accuracy: 0.9 } }],
      }),
    "GET /api/alerting/v1/alerts": () => json([{ fingerprint: "f", status: "resolved", labels: { alertname: "DatasetDrift", model: "credit" }, annotations: {}, starts_at: t(0), value: 1 }]),
    "GET /api/alerting/api/v2/alerts/groups": () =>
      json([{ labels: { alertname: "DatasetDrift" }, receiver: { name: "hook" }, alerts: [{ labels: { alertname: "DatasetDrift", model: "credit" }, annotations: { summary: "s" }, receivers: [{ name: "hook" }], fingerprint: "f", startsAt: t(0), updatedAt: t(0), endsAt: t(5), status: { state: "active", silencedBy: [], inhibitedBy: [], mutedBy: [] } }] }]),
    "GET /api/alerting/v1/silences": () => json([{ id: "s", matchers: [{ name: "model", op: "=", value: "credit" }], starts_at: t(0), ends_at: t(9), created_by: "user:alice", comment: "c", state: "active" }]),
    "GET /api/alerting/v1/deliveries": () =>
      json([{ id: "d", receiver: "hook", kind: "webhook", status: "delivered", attempts: 1, last_error: null, created_at: t(0), finished_at: t(0), attempts_log: [{ attempt: 1, at: t(0), ok: true, status_code: 200, error: null, duration_ms: 12 }] }]),
    "GET /api/alerting/v1/alert-rules": () =>
      json({ defaults: true, rules: [{ id: "dataset-drift", name: "DatasetDrift", model_id: null, condition: { metric: "drift.drifted_share", op: ">=", value: 0.5 }, for_windows: 1, severity: "critical", labels: {}, annotations: {}, remediation: null, enabled: true }] }),
    "GET /api/compliance-report/v1/reports": () =>
      json({ items: [{ id: "r1", framework: "gdpr", status: "running", stage: "rendering", progress: 0.5, period_start: t(0), period_end: t(5), model_id: null, formats: ["json"], requested_by: "user:alice", created_at: t(0) }], next_before: null }),
    "GET /api/compliance-report/v1/reports/public-key": () => json({ key_id: "k", public_key: fixture.public_key, fingerprint: fixture.fingerprint }),
    "GET /api/platform": () => json({ services: [{ service: "audit", reachable: false, ready: false, error: "refused", consumer_lag: [], dead_letters: [] }] }),
    "GET /api/live": () => live.response(),
  });
  return live;
}

const VIEWS: [string, string][] = [
  ["/", "Fleet"],
  ["/alerts", "Alert center"],
  ["/alerts/silences?new=1&matchers=model%3D%22credit%22", "Alert center"],
  ["/alerts/deliveries", "Alert center"],
  ["/alerts/rules", "Alert center"],
  ["/models/credit", "Credit risk (credit)"],
  ["/models/credit/reference", "Credit risk (credit)"],
  ["/models/credit/monitoring", "Credit risk (credit)"],
  ["/models/credit/drift", "Credit risk (credit)"],
  ["/models/credit/performance", "Credit risk (credit)"],
  ["/reports", "Reports"],
  ["/audit", "Audit trail"],
  ["/platform", "Platform"],
  ["/account", "Account"],
];

async function violations(): Promise<string[]> {
  const res = await axe.run(document.body, { rules: { "color-contrast": { enabled: false } } });
  return res.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

describe("accessibility (axe-core)", () => {
  it.each(VIEWS)("%s has no violation", async (path, heading) => {
    loggedIn();
    const live = world();
    renderApp(path);
    await screen.findByRole("heading", { level: 1, name: heading });
    live.send("drift", driftRecord("credit", true, t(10)));
    await screen.findAllByText(/drifting|Credit risk|Alert center|Reports|Audit trail|Platform|Account/);
    expect(await violations()).toEqual([]);
  });

  it("the login page has no violation", async () => {
    world();
    renderApp("/login");
    await screen.findByRole("link", { name: "Sign in with SSO" });
    expect(await violations()).toEqual([]);
  });
});
