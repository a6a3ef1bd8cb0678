import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { ADMIN_ME, VIEWER_ME, driftRecord, fakeApi, fakeStream, json } from "../../test/fakeApi";
import { loggedIn, renderApp } from "../../test/render";
import { fromLive, merged, referenceBins } from "./history";

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

const version = (v: string, by: string) => ({
  model_id: "credit",
  version: v,
  artifact_uri: `s3://models/credit/${v}`,
  artifact_sha256: "0".repeat(64),
  metadata: {},
  stage: "staging",
  submitted_by: by,
  submitted_at: "2026-12-02T00:00:00Z",
  approved_by: null,
  approved_at: null,
  approval_comment: null,
});

function routes(me: unknown, extra: Parameters<typeof fakeApi>[0] = {}) {
  const live = fakeStream();
  const api = fakeApi({
    "GET /api/ingestion/v1/auth/me": () => json(me),
    "GET /api/alerting/v1/alerts": () => json([]),
    "GET /api/ingestion/v1/models/credit": () => json(MODEL),
    "GET /api/ingestion/v1/models/credit/versions": () => json([version("1", "user:alice"), version("2", "user:bob")]),
    "GET /api/history/credit": () => json({ detail: "Not Found" }, 404),
    "GET /api/live": () => live.response(),
    ...extra,
  });
  return { ...api, live };
}

describe("model view", () => {
  it("shows separation of duties: the submitter's approve button is disabled, another's goes to the API", async () => {
    loggedIn();
    let approved = "";
    routes(ADMIN_ME, {
      "POST /api/ingestion/v1/models/credit/versions/2/approve": () => {
        approved = "2";
        return json({ ...version("2", "user:bob"), approved_by: "user:alice" });
      },
    });
    const user = userEvent.setup();
    renderApp("/models/credit");
    const own = await screen.findByRole("button", { name: "Approve 1" });
    expect(own).toBeDisabled();
    expect(own).toHaveAccessibleDescription("You submitted this version: another person must approve it.");
    await user.click(screen.getByRole("button", { name: "Approve 2" }));
    await waitFor(() => expect(approved).toBe("2"));
  });

  it("shows the registry's refusal of a monitoring configuration", async () => {
    loggedIn();
    routes(ADMIN_ME, {
      "PUT /api/ingestion/v1/models/credit/monitoring": () =>
        json({ detail: [{ loc: ["body", "dataset_drift_share"], msg: "Input should be less than or equal to 1" }] }, 422),
    });
    const user = userEvent.setup();
    renderApp("/models/credit/monitoring");
    const box = await screen.findByLabelText("Monitoring (JSON)");
    await user.clear(box);
    await user.click(box);
    await user.paste('{"dataset_drift_share": 3}');
    await user.click(screen.getByRole("button", { name: "Save monitoring" }));
    const err = await screen.findByRole("alert");
    expect(err).toHaveTextContent("dataset_drift_share");
    expect(err).toHaveTextContent("less than or equal to 1");
  });

  it("a viewer sees versions without approve or stage controls, and the configuration read-only", async () => {
    loggedIn();
    routes(VIEWER_ME);
    renderApp("/models/credit");
    expect(await screen.findByRole("row", { name: /^2/ })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /Approve|Set stage|Submit version/ })).toBeNull();
    await userEvent.setup().click(screen.getByRole("link", { name: "Monitoring" }));
    expect(await screen.findByText(/dataset_drift_share/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Save monitoring" })).toBeNull();
  });

  it("draws the drift heat map from live windows when no stored history answers", async () => {
    loggedIn();
    const { live } = routes(ADMIN_ME);
    renderApp("/models/credit/drift");
    expect(await screen.findByText(/Stored history is not available/)).toBeInTheDocument();
    live.send("drift", driftRecord("credit", true, "2026-12-03T10:00:00Z"));
    live.send("drift", driftRecord("credit", false, "2026-12-03T10:05:00Z"));
    const map = await screen.findByRole("img", { name: /Drift per feature over the last 2 windows/ });
    expect(within(map).getAllByText("×")).toHaveLength(1); // income drifted in the first window only
    const table = screen.getByRole("table");
    expect(within(table).getByRole("row", { name: /income 2 1/ })).toBeInTheDocument();
  });
});

describe("stored history", () => {
  it("draws the heat map and the current distribution from the console's /api/history", async () => {
    loggedIn();
    const t = (m: number) => `2026-12-03T10:${String(m).padStart(2, "0")}:00Z`;
    routes(ADMIN_ME, {
      "GET /api/history/credit": () =>
        json({
          model_id: "credit",
          hours: 24,
          windows: [0, 5, 10].map((m) => ({ time: t(m), version: "1", events: 500, drifted_share: m === 10 ? 1 : 0, dataset_drift: m === 10, quality_score: 98, business_value_sum: null, business_value_mean: null, business_value_count: null })),
          features: [0, 5, 10].map((m) => ({ time: t(m), feature: "income", statistic: m === 10 ? 0.5 : 0.01, threshold: 0.1, p_value: null, drifted: m === 10 })),
          bins: { income: [{ bin: "b00", upper: 10, reference_share: 0.5, current_share: 0.2, current_count: 20 }, { bin: "b01", upper: null, reference_share: 0.5, current_share: 0.8, current_count: 80 }] },
          performance: [],
        }),
      "GET /api/ingestion/v1/models/credit/reference": () =>
        json({ version: 1, rows: 10, source: {}, profile: { features: { income: { kind: "numeric", histogram: { edges: [10], counts: [5, 5] } } } }, created_by: "user:alice", created_at: t(0) }),
    });
    renderApp("/models/credit/drift");
    const map = await screen.findByRole("img", { name: /over the last 3 windows/ });
    expect(within(map).getAllByText("×")).toHaveLength(1);
    expect(screen.queryByText(/Stored history is not available/)).toBeNull();
    await userEvent.setup().click(screen.getByRole("link", { name: "Reference" }));
    expect(await screen.findByRole("img", { name: "Distribution of income: reference and current share per bin" })).toBeInTheDocument();
  });
});

describe("history", () => {
  it("appends to the stored history only the live windows after it, whatever their spelling", () => {
    const live = fromLive(
      {
        drift: [driftRecord("credit", true, "2026-12-03T10:00:00.000000Z"), driftRecord("credit", false, "2026-12-03T10:05:00Z")],
        quality: [],
        performance: [],
        concept: [],
      } as never,
      "",
    );
    const stored = {
      windows: [{ time: "2026-12-03T10:00:00.000Z", version: "1", events: 500, drifted_share: 0.5, dataset_drift: true, quality_score: 99 }],
      features: [{ time: "2026-12-03T10:00:00.000Z", feature: "income", statistic: 0.4, threshold: 0.05, p_value: null, drifted: true }],
      bins: {},
      performance: [],
    };
    const h = merged(stored, live);
    expect(h.source).toBe("history");
    expect(h.windows.map((w) => [w.time, w.dataset_drift])).toEqual([
      ["2026-12-03T10:00:00.000Z", true],
      ["2026-12-03T10:05:00.000Z", false],
    ]);
    expect(h.features.filter((f) => f.feature === "income").map((f) => f.drifted)).toEqual([true, false]);
  });

  it("keeps the latest performance record of a window (late labels) and the reference's open-ended bins", () => {
    const perf = (labelled: number, acc: number) => ({
      event_id: String(labelled),
      tenant_id: "acme",
      occurred_at: "",
      model_id: "credit",
      model_version: "1",
      segment: {},
      window: { start: "2026-12-03T09:55:00Z", end: "2026-12-03T10:00:00Z", events: 100 },
      kind: "window_metrics" as const,
      task: "classification" as const,
      labelled,
      metrics: { accuracy: acc },
      detector: null,
    });
    const h = fromLive({ drift: [], quality: [], concept: [], performance: [perf(10, 0.5), perf(80, 0.9)] }, "");
    expect(h.performance).toEqual([{ time: "2026-12-03T10:00:00.000Z", labelled: 80, metrics: { accuracy: 0.9 }, version: "1" }]);
    const bins = referenceBins({ kind: "numeric", histogram: { edges: [10, 20], counts: [1, 2, 1] } });
    expect(bins.map((b) => [b.bin, b.reference_share])).toEqual([
      ["≤ 10", 0.25],
      ["10–20", 0.5],
      ["> 20", 0.25],
    ]);
    expect(referenceBins({ kind: "categorical", categories: { a: 3 }, other: 1 }).map((b) => b.reference_share)).toEqual([0.75, 0.25]);
  });
});
