import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { ADMIN_ME, VIEWER_ME, fakeApi, fakeStream, json } from "../../test/fakeApi";
import { loggedIn, renderApp } from "../../test/render";
import { checkSilence, matchersFor, parseMatcher } from "./matchers";

const GROUPS = [
  {
    labels: { alertname: "DatasetDrift", model: "credit" },
    routeLabels: {},
    receiver: { name: "ops-webhook" },
    alerts: [
      {
        labels: { alertname: "DatasetDrift", model: "credit", tenant: "acme", severity: "critical" },
        annotations: { summary: "50% of the features of credit drifted" },
        receivers: [{ name: "ops-webhook" }],
        fingerprint: "fp1",
        startsAt: "2026-12-03T10:00:00Z",
        updatedAt: "2026-12-03T10:00:00Z",
        endsAt: "2026-12-03T10:05:00Z",
        status: { state: "active", silencedBy: [], inhibitedBy: [], mutedBy: [] },
      },
    ],
  },
];

function routes(me: unknown, extra: Record<string, Parameters<typeof fakeApi>[0][string]> = {}) {
  const live = fakeStream();
  return fakeApi({
    "GET /api/ingestion/v1/auth/me": () => json(me),
    "GET /api/alerting/v1/alerts": () => json([]),
    "GET /api/alerting/api/v2/alerts/groups": () => json(GROUPS),
    "GET /api/alerting/v1/silences": () => json([]),
    "GET /api/alerting/v1/alert-rules": () =>
      json({ defaults: true, rules: [{ id: "dataset-drift", name: "DatasetDrift", model_id: null, condition: { metric: "drift.drifted_share", op: ">=", value: 0.5 }, for_windows: 1, severity: "critical", labels: {}, annotations: {}, remediation: null, enabled: true }] }),
    "GET /api/live": () => live.response(),
    ...extra,
  });
}

describe("silence form", () => {
  it("checks matchers, duration and comment before calling the API", () => {
    expect(parseMatcher('model="credit"')).toEqual({ name: "model", op: "=", value: "credit" });
    expect(parseMatcher('model=~"cred(it"')).toMatch(/not a regular expression/);
    expect(typeof parseMatcher("model=credit")).toBe("string");
    expect(matchersFor({ alertname: "DatasetDrift", model: "credit", tenant: "acme", severity: "critical" })).toEqual([
      'alertname="DatasetDrift"',
      'model="credit"',
    ]);
    const { errors } = checkSilence({ matchers: "", hours: "-1", comment: " " });
    expect(errors).toEqual({
      matchers: "Give at least one matcher, one per line.",
      hours: "The duration must be a positive number of hours.",
      comment: "Say why (the comment is required).",
    });
    expect(checkSilence({ matchers: 'x=~".*"', hours: "1", comment: "c" }).errors.matchers).toMatch(/every alert/);
  });

  it("is prefilled from an alert, refuses a missing comment, then creates the silence", async () => {
    loggedIn();
    let posted: unknown = null;
    const { seen } = routes(ADMIN_ME, {
      "POST /api/alerting/v1/silences": (_r, body) => {
        posted = JSON.parse(body);
        return json({ id: "s1" }, 201);
      },
    });
    const user = userEvent.setup();
    renderApp("/alerts");
    await user.click(await screen.findByRole("button", { name: "Silence DatasetDrift credit" }));
    const matchers = await screen.findByLabelText("Matchers (one per line)");
    expect(matchers).toHaveValue('alertname="DatasetDrift"\nmodel="credit"');
    await user.click(screen.getByRole("button", { name: "Create silence" }));
    const comment = screen.getByLabelText("Comment");
    expect(comment).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByText("Say why (the comment is required).")).toBeInTheDocument();
    expect(seen.some((s) => s.method === "POST")).toBe(false);

    await user.type(comment, "retraining under way");
    await user.click(screen.getByRole("button", { name: "Create silence" }));
    await waitFor(() => expect(posted).not.toBeNull());
    expect(posted).toMatchObject({
      matchers: [
        { name: "alertname", op: "=", value: "DatasetDrift" },
        { name: "model", op: "=", value: "credit" },
      ],
      comment: "retraining under way",
    });
    const ends = Date.parse((posted as { ends_at: string }).ends_at);
    expect(ends - Date.now()).toBeGreaterThan(1.9 * 3600_000);
    expect(ends - Date.now()).toBeLessThan(2.1 * 3600_000);
  });

  it("shows the API's validation messages", async () => {
    loggedIn();
    routes(ADMIN_ME, {
      "POST /api/alerting/v1/silences": () => json({ detail: [{ loc: ["body", "ends_at"], msg: "Input should have timezone info" }] }, 422),
    });
    const user = userEvent.setup();
    renderApp("/alerts/silences?new=1&matchers=model%3D%22credit%22");
    await user.type(await screen.findByLabelText("Comment"), "x");
    await user.click(screen.getByRole("button", { name: "Create silence" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("ends_at");
    expect(alert).toHaveTextContent("Input should have timezone info");
  });
});

describe("role gating", () => {
  it("a viewer sees alerts and rules but no write control", async () => {
    loggedIn();
    routes(VIEWER_ME);
    renderApp("/alerts");
    const group = await screen.findByRole("article", { name: "group to ops-webhook" });
    expect(within(group).getByText("firing")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /Silence/ })).toBeNull();
    expect(screen.queryByRole("link", { name: "Reports" })).toBeNull();
    expect(screen.queryByRole("link", { name: "Audit" })).toBeNull();
    await userEvent.setup().click(screen.getByRole("link", { name: "Rules" }));
    expect(await screen.findByText(/DatasetDrift/, { selector: "th" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /New rule|Edit|Delete/ })).toBeNull();
    await userEvent.setup().click(screen.getByRole("link", { name: "Silences" }));
    expect(await screen.findByText("No silence.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "New silence" })).toBeNull();
  });

  it("an admin gets the same views with their write controls", async () => {
    loggedIn();
    routes(ADMIN_ME);
    renderApp("/alerts/rules");
    expect(await screen.findByRole("button", { name: "Edit rule dataset-drift" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "New rule" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Reports" })).toBeInTheDocument();
  });
});
