import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ADMIN_ME, driftRecord, fakeApi, fakeStream, json } from "../test/fakeApi";
import { loggedIn, renderApp } from "../test/render";

const MODELS = [
  { id: "credit", name: "Credit risk", task: "classification", description: "", feature_schema: { features: [] }, monitoring: {}, classes: null },
  { id: "churn", name: "Churn", task: "classification", description: "", feature_schema: { features: [] }, monitoring: {}, classes: null },
];

describe("fleet", () => {
  it("turns a model drifting, then healthy, as windows arrive on the live stream", async () => {
    loggedIn();
    const live = fakeStream();
    const { seen } = fakeApi({
      "GET /api/ingestion/v1/auth/me": () => json(ADMIN_ME),
      "GET /api/ingestion/v1/models": () => json(MODELS),
      "GET /api/alerting/v1/alerts": () =>
        json([{ fingerprint: "f1", status: "firing", labels: { alertname: "DataQuality", model: "churn" }, annotations: {}, starts_at: "2026-12-03T09:00:00Z", value: 80 }]),
      "GET /api/live": () => live.response(),
    });
    renderApp("/");
    const credit = await screen.findByRole("row", { name: /credit/ });
    expect(within(credit).getByText("no data")).toBeInTheDocument();
    const churn = screen.getByRole("row", { name: /churn/ });
    expect(within(churn).getByText("alerting")).toBeInTheDocument();
    expect(await screen.findByText("live")).toBeInTheDocument();

    live.raw(": keepalive\n\n");
    live.send("drift", driftRecord("credit", true));
    expect(await within(credit).findByText("drifting")).toBeInTheDocument();
    expect(within(credit).getByText("50% of features")).toBeInTheDocument();

    live.send("drift", driftRecord("credit", false, "2026-12-03T10:05:00Z"));
    expect(await within(credit).findByText("healthy")).toBeInTheDocument();

    // an alert resolving on the stream closes it in the fleet
    live.send("alert", { event_id: "e1", tenant_id: "acme", occurred_at: "2026-12-03T10:06:00Z", kind: "resolved", fingerprint: "f1", rule_id: "data-quality", severity: "warning", labels: { alertname: "DataQuality", model: "churn" }, annotations: {}, starts_at: null, ends_at: null, receiver: null, details: {} });
    expect(await within(churn).findByText("no data")).toBeInTheDocument();

    const liveCall = seen.find((s) => s.path === "/api/live");
    expect(liveCall?.headers.get("Authorization")).toBe("Bearer tok-1");
    expect(liveCall?.path).not.toContain("tok-1");
  });

  it("starts from each model's latest stored window, and a live window replaces it", async () => {
    loggedIn();
    const live = fakeStream();
    const { seen } = fakeApi({
      "GET /api/ingestion/v1/auth/me": () => json(ADMIN_ME),
      "GET /api/ingestion/v1/models": () => json(MODELS),
      "GET /api/alerting/v1/alerts": () => json([]),
      "GET /api/history/credit": () =>
        json({
          windows: [{ time: "2026-12-03T09:55:00Z", version: "1", events: 400, drifted_share: 0.5, dataset_drift: true, quality_score: 97 }],
          features: [],
          bins: {},
          performance: [{ time: "2026-12-03T09:50:00Z", labelled: 120, metrics: { accuracy: 0.875 } }],
        }),
      "GET /api/history/churn": () => json({ title: "Service Unavailable", detail: "the stored history cannot be read", status: 503 }, 503),
      "GET /api/live": () => live.response(),
    });
    renderApp("/");
    const credit = await screen.findByRole("row", { name: /credit/ });
    expect(await within(credit).findByText("drifting")).toBeInTheDocument();
    expect(within(credit).getByText("97/100")).toBeInTheDocument();
    expect(within(credit).getByText("accuracy 0.875 (120 labelled)")).toBeInTheDocument();
    expect(within(screen.getByRole("row", { name: /churn/ })).getByText("no data")).toBeInTheDocument();
    expect(seen.some((s) => s.path === "/api/history/credit?hours=24&limit=1")).toBe(true);
    live.send("drift", driftRecord("credit", false, "2026-12-03T10:00:00Z"));
    expect(await within(credit).findByText("healthy")).toBeInTheDocument();
  });

  it("shows an error panel, not a blank page, when the registry is down", async () => {
    loggedIn();
    const live = fakeStream();
    fakeApi({
      "GET /api/ingestion/v1/auth/me": () => json(ADMIN_ME),
      "GET /api/ingestion/v1/models": () =>
        json({ title: "Bad Gateway", detail: "ingestion did not answer", status: 502, service: "ingestion" }, 502),
      "GET /api/alerting/v1/alerts": () => json([]),
      "GET /api/live": () => live.response(),
    });
    renderApp("/");
    const panel = await screen.findByRole("alert");
    expect(panel).toHaveTextContent("Could not load models");
    expect(panel).toHaveTextContent("ingestion is unavailable (502)");
    expect(within(panel).getByRole("button", { name: "Retry" })).toBeInTheDocument();
  });
});
