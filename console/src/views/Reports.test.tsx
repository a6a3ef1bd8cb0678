import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { unzipSync, zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import fixture from "../reports/fixtures/bundle.json";
import { ADMIN_ME, fakeApi, fakeStream, json } from "../test/fakeApi";
import { loggedIn, renderApp } from "../test/render";

const bundle = Uint8Array.from(atob(fixture.bundle_base64), (c) => c.charCodeAt(0));
const JOB = {
  id: "r1",
  framework: "gdpr",
  status: "done",
  stage: "done",
  progress: 1,
  period_start: "2026-11-01T00:00:00Z",
  period_end: "2026-12-01T00:00:00Z",
  model_id: null,
  formats: ["html", "json", "pdf"],
  requested_by: "user:alice",
  created_at: "2026-12-03T10:00:00Z",
  manifest: { files: [{ name: "report.html" }, { name: "report.json" }, { name: "report.pdf" }] },
};

function routes(zip: Uint8Array, extra: Parameters<typeof fakeApi>[0] = {}) {
  const live = fakeStream();
  return fakeApi({
    "GET /api/ingestion/v1/auth/me": () => json(ADMIN_ME),
    "GET /api/alerting/v1/alerts": () => json([]),
    "GET /api/ingestion/v1/models": () => json([]),
    "GET /api/compliance-report/v1/reports": () => json({ items: [JOB], next_before: null }),
    "GET /api/compliance-report/v1/reports/public-key": () => json({ key_id: "k", public_key: fixture.public_key, fingerprint: fixture.fingerprint }),
    "GET /api/compliance-report/v1/reports/r1/bundle": () => new Response(zip, { headers: { "Content-Type": "application/zip" } }),
    "GET /api/live": () => live.response(),
    ...extra,
  });
}

describe("reports", () => {
  it("verifies a downloaded bundle in the browser with the published key", async () => {
    loggedIn();
    routes(bundle);
    const user = userEvent.setup();
    renderApp("/reports");
    const row = await screen.findByRole("row", { name: /GDPR/ });
    expect(within(row).getByRole("button", { name: "Download report.pdf" })).toBeInTheDocument();
    await user.click(within(row).getByRole("button", { name: "Verify bundle" }));
    expect(await within(row).findByText(/Verified: the signature is valid for the published key/)).toHaveTextContent(fixture.fingerprint);
  });

  it("says a tampered bundle fails and why", async () => {
    loggedIn();
    const files = unzipSync(bundle);
    files["report.html"] = new TextEncoder().encode("<h1>changed</h1>");
    routes(zipSync(files));
    const user = userEvent.setup();
    renderApp("/reports");
    const row = await screen.findByRole("row", { name: /GDPR/ });
    await user.click(within(row).getByRole("button", { name: "Verify bundle" }));
    expect(await within(row).findByText("Verification failed.")).toBeInTheDocument();
    expect(within(row).getByText(/report\.html: SHA-256/)).toBeInTheDocument();
  });

  it("generates a report with the chosen framework and period, and shows the API's refusal", async () => {
    loggedIn();
    const bodies: unknown[] = [];
    routes(bundle, {
      "POST /api/compliance-report/v1/reports": (_r, body) => {
        bodies.push(JSON.parse(body));
        return bodies.length === 1 ? json({ ...JOB, id: "r2", status: "queued" }, 202) : json({ detail: "a report covers at most 400 days" }, 422);
      },
    });
    const user = userEvent.setup();
    renderApp("/reports");
    await user.selectOptions(await screen.findByLabelText("Framework"), "sox");
    await user.click(screen.getByRole("checkbox", { name: "PDF" }));
    await user.click(screen.getByRole("button", { name: "Generate report" }));
    await waitFor(() => expect(bodies).toHaveLength(1));
    expect(bodies[0]).toMatchObject({ framework: "sox", formats: ["json", "html"], model_id: null });
    await user.selectOptions(screen.getByLabelText("Framework"), "model_card");
    await user.click(screen.getByRole("button", { name: "Generate report" }));
    expect(await screen.findByText("A model card needs a model.")).toBeInTheDocument();
    await user.selectOptions(screen.getByLabelText("Framework"), "gdpr");
    await user.click(screen.getByRole("button", { name: "Generate report" }));
    expect(await screen.findByText("a report covers at most 400 days")).toBeInTheDocument();
  });
});
