// A fake of the console origin for component tests: routes "METHOD /api/..." to handlers,
// records every request, and answers 404 for anything unrouted (so a test sees it).
import { vi } from "vitest";

export type Handler = (req: Request, body: string) => Response | Promise<Response>;

export interface Seen {
  method: string;
  path: string;
  body: string;
  headers: Headers;
}

export function json(data: unknown, status = 200): Response {
  return new Response(JSON.stringify(data), { status, headers: { "Content-Type": "application/json" } });
}

export function fakeApi(routes: Record<string, Handler>) {
  const seen: Seen[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(req.url);
    const body = req.method === "GET" || req.method === "HEAD" ? "" : await req.clone().text();
    seen.push({ method: req.method, path: url.pathname + url.search, body, headers: req.headers });
    const exact = routes[`${req.method} ${url.pathname}${url.search}`] ?? routes[`${req.method} ${url.pathname}`];
    if (exact) return exact(req, body);
    return json({ detail: `no fake route for ${req.method} ${url.pathname}` }, 404);
  });
  vi.stubGlobal("fetch", fetch);
  return { seen, fetch };
}

/** A /api/live response whose events the test pushes. */
export function fakeStream() {
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      ctl = c;
    },
  });
  const enc = new TextEncoder();
  return {
    response: () => new Response(stream, { status: 200, headers: { "Content-Type": "text/event-stream" } }),
    send: (event: string, data: unknown) => ctl.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)),
    raw: (text: string) => ctl.enqueue(enc.encode(text)),
    close: () => ctl.close(),
  };
}

export const ADMIN_ME = {
  tenant_id: "acme",
  kind: "user",
  id: "u-1",
  name: "alice",
  role: "admin",
  permissions: ["admin", "audit", "ingest", "read", "write"],
  session_id: "s-1",
};

export const VIEWER_ME = { ...ADMIN_ME, id: "u-2", name: "victor", role: "viewer", permissions: ["read"] };

export function driftRecord(model: string, drifted: boolean, end = "2026-12-03T10:00:00Z") {
  return {
    event_id: crypto.randomUUID(),
    tenant_id: "acme",
    occurred_at: end,
    model_id: model,
    model_version: "1",
    segment: {},
    window: { start: "2026-12-03T09:55:00Z", end, events: 500 },
    features: [
      { feature: "income", test: "ks", statistic: drifted ? 0.4 : 0.02, p_value: drifted ? 0.0001 : 0.7, threshold: 0.05, drifted },
      { feature: "age", test: "ks", statistic: 0.01, p_value: 0.9, threshold: 0.05, drifted: false },
    ],
    prediction: null,
    drifted_share: drifted ? 0.5 : 0,
    dataset_drift: drifted,
    multivariate: null,
  };
}
