import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { ADMIN_ME, VIEWER_ME, fakeApi, fakeStream, json } from "../test/fakeApi";
import { loggedIn, renderApp } from "../test/render";
import { cursorAfter } from "./Audit";

const rec = (seq: number) => ({
  tenant_id: "acme",
  seq,
  service: "ingestion",
  occurred_at: "2026-12-03T10:00:00Z",
  actor: "user:alice",
  action: "model.create",
  resource_type: "model",
  resource_id: "credit",
  outcome: "success",
  record: { action: "model.create" },
});

function base(me: unknown, extra: Parameters<typeof fakeApi>[0] = {}) {
  const live = fakeStream();
  return fakeApi({
    "GET /api/ingestion/v1/auth/me": () => json(me),
    "GET /api/alerting/v1/alerts": () => json([]),
    "GET /api/live": () => live.response(),
    ...extra,
  });
}

describe("audit", () => {
  it("uses the audit API's cursor for 'after seq'", () => {
    expect(atob(cursorAfter(41).replace(/-/g, "+").replace(/_/g, "/"))).toBe("seq:41");
  });

  it("queries the trail and, when a range does not verify, shows the first broken record", async () => {
    loggedIn();
    const { seen } = base(ADMIN_ME, {
      "GET /api/audit/v1/audit/records": (req) => {
        const c = new URL(req.url).searchParams.get("cursor");
        return json({ items: c ? [rec(42)] : [rec(1), rec(2)], next_cursor: null });
      },
      "GET /api/audit/v1/audit/verify": () =>
        json({ ok: false, records: 41, checkpoints: 0, first_break: { tenant_id: "acme", seq: 42, reason: "hash mismatch: the record was changed" }, range: { from_seq: 1, to_seq: null } }),
    });
    const user = userEvent.setup();
    renderApp("/audit");
    await user.type(await screen.findByLabelText("Action"), "model.create");
    await user.click(screen.getByRole("button", { name: "Search" }));
    expect(await screen.findByRole("row", { name: /^2 / })).toBeInTheDocument();
    expect(seen.find((s) => s.path.startsWith("/api/audit/v1/audit/records"))?.path).toContain("action=model.create");

    await user.click(screen.getByRole("button", { name: "Verify chain" }));
    const verdict = await screen.findByText(/The chain is broken at record 42: hash mismatch/);
    const panel = verdict.closest("[role=status]") as HTMLElement;
    expect(within(panel).getByRole("row", { name: /^42 / })).toBeInTheDocument();
    expect(seen.some((s) => s.path.includes(`cursor=${cursorAfter(41)}`))).toBe(true);
  });

  it("a viewer is told the trail needs the audit permission", async () => {
    loggedIn();
    base(VIEWER_ME);
    renderApp("/audit");
    expect(await screen.findByText(/needs the audit permission/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Verify chain" })).toBeNull();
  });
});

describe("platform", () => {
  it("lists a service that does not answer as unreachable, with lag and dead letters of the others", async () => {
    loggedIn();
    base(ADMIN_ME, {
      "GET /api/platform": () =>
        json({
          services: [
            { service: "drift-detection", reachable: true, ready: true, status: "ok", checks: { kafka: { ok: true } }, consumer_lag: [{ group: "drift", topic: "driftline.predictions.v1", lag: 12 }], dead_letters: [{ source_topic: "driftline.predictions.v1", reason: "schema_mismatch", count: 3 }] },
            { service: "audit", reachable: false, ready: false, error: "ConnectError: refused", consumer_lag: [], dead_letters: [] },
          ],
        }),
    });
    renderApp("/platform");
    const audit = await screen.findByRole("row", { name: /^audit/ });
    expect(within(audit).getByText("unreachable")).toBeInTheDocument();
    expect(within(audit).getByText("ConnectError: refused")).toBeInTheDocument();
    expect(screen.getByRole("row", { name: /drift driftline.predictions.v1 drift-detection 12/ })).toBeInTheDocument();
    expect(screen.getByRole("row", { name: /schema_mismatch driftline.predictions.v1 drift-detection 3/ })).toBeInTheDocument();
  });

  it("shows an error panel when the console cannot give the platform's state", async () => {
    loggedIn();
    base(ADMIN_ME, { "GET /api/platform": () => new Response("upstream failure", { status: 500 }) });
    renderApp("/platform");
    expect(await screen.findByRole("alert")).toHaveTextContent("Could not load the platform's state");
  });
});
