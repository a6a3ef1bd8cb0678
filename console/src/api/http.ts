// One thin typed client per service, all on the console's own origin: /api/<service>/...
// (the console service proxies each; CONSOLE.md). The session token rides on every call as
// `Authorization: Bearer`; a 401 with a refresh token left is refreshed once and retried.
import createClient, { type Client } from "openapi-fetch";
import type { paths as IngestionPaths } from "./generated/ingestion";
import type { paths as AlertingPaths } from "./generated/alerting";
import type { paths as AuditPaths } from "./generated/audit";
import type { paths as ReportPaths } from "./generated/compliance-report";
import type { paths as DriftPaths } from "./generated/drift-detection";
import type { LoginGrant } from "./types";

export type Service = "ingestion" | "drift-detection" | "alerting" | "audit" | "compliance-report";
export const SERVICES: Service[] = [
  "ingestion",
  "drift-detection",
  "alerting",
  "audit",
  "compliance-report",
];

export interface FieldProblem {
  field: string;
  msg: string;
}

/** What an API refused, said plainly: the status, a one-line reason and, for validation
 * errors, each field with its message. Status 0: the request never got an answer. */
export class ApiError extends Error {
  readonly status: number;
  readonly service: string;
  readonly problems: FieldProblem[];
  /** The refusal's headers (Retry-After, X-MFA-Enrollment-Token); empty without an answer. */
  headers: Headers = new Headers();
  constructor(status: number, message: string, service: string, problems: FieldProblem[] = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.service = service;
    this.problems = problems;
  }
}

function fieldOf(loc: unknown): string {
  if (!Array.isArray(loc)) return "";
  const parts = loc.filter((p) => p !== "body" && !(typeof p === "string" && p.startsWith("function-")));
  return parts.map(String).join(".");
}

/** FastAPI's {"detail": str | [{loc,msg}] | [{field,msg}]}, RFC 9457 problems
 * ({"title","detail"}), the console proxy's 502 ({"service", ...}) and Alertmanager's
 * plain-text errors, as one ApiError. */
export function errorFrom(status: number, body: unknown, service: string): ApiError {
  let message = `HTTP ${status}`;
  let problems: FieldProblem[] = [];
  let svc = service;
  if (typeof body === "string" && body.trim()) {
    message = body.trim();
  } else if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    if (typeof b.service === "string") svc = b.service;
    const detail = b.detail;
    // RFC 9457 problems (driftline_core.problems): `detail` a sentence, every failed check
    // in `errors`; earlier FastAPI answers put that list in `detail` itself
    const list = Array.isArray(b.errors) ? b.errors : Array.isArray(detail) ? detail : null;
    if (list) {
      problems = list.map((d: unknown) => {
        const x = (d ?? {}) as Record<string, unknown>;
        const field = typeof x.field === "string" ? x.field : fieldOf(x.loc);
        return { field, msg: String(x.msg ?? JSON.stringify(d)) };
      });
      message =
        typeof detail === "string" && detail ? detail : problems.map((p) => (p.field ? `${p.field}: ${p.msg}` : p.msg)).join("; ");
    } else if (typeof detail === "string" && detail) {
      message = detail;
    } else if (typeof b.title === "string") {
      message = b.title;
    } else if (typeof b.error === "string") {
      message = b.error;
    }
  }
  if (status === 502 || status === 503 || status === 504) {
    message = `${svc} is unavailable (${status}): ${message}`;
  }
  return new ApiError(status, message, svc, problems);
}

// --- the session ------------------------------------------------------------------------

const STORE_KEY = "driftline.session";

export interface Session {
  accessToken: string;
  refreshToken: string | null;
  expiresAt: number; // epoch seconds
}

let session: Session | null = load();
const listeners = new Set<(s: Session | null) => void>();

function load(): Session | null {
  try {
    const raw = typeof sessionStorage === "undefined" ? null : sessionStorage.getItem(STORE_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function getSession(): Session | null {
  return session;
}

export function setSession(s: Session | null): void {
  session = s;
  try {
    if (s) sessionStorage.setItem(STORE_KEY, JSON.stringify(s));
    else sessionStorage.removeItem(STORE_KEY);
  } catch {
    /* storage unavailable: the session lives in memory only */
  }
  for (const l of listeners) l(s);
}

export function onSession(l: (s: Session | null) => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

export function sessionFromGrant(g: LoginGrant): Session {
  return { accessToken: g.access_token, refreshToken: g.refresh_token, expiresAt: g.expires_at };
}

export function authHeader(): Record<string, string> {
  return session ? { Authorization: `Bearer ${session.accessToken}` } : {};
}

/** The console service's own routes beside the proxied services (services/console). */
export type ConsoleRoute = "live" | "platform" | "history";

export function apiUrl(service: Service | ConsoleRoute, path = ""): string {
  const origin = typeof window !== "undefined" ? window.location.origin : "";
  return `${origin}/api/${service}${path}`;
}

let refreshing: Promise<boolean> | null = null;

/** Trade the refresh token for a new session once, however many calls saw the 401. */
export function refreshSession(): Promise<boolean> {
  const current = session;
  if (!current?.refreshToken) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      const res = await globalThis.fetch(apiUrl("ingestion", "/v1/auth/refresh"), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: current.refreshToken }),
      });
      if (!res.ok) {
        setSession(null);
        return false;
      }
      setSession(sessionFromGrant((await res.json()) as LoginGrant));
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** fetch with the session's bearer token; refreshes once on a 401. */
export async function authedFetch(input: Request): Promise<Response> {
  const send = (req: Request) => {
    const r = new Request(req);
    if (session && !r.headers.has("Authorization")) {
      r.headers.set("Authorization", `Bearer ${session.accessToken}`);
    }
    return globalThis.fetch(r);
  };
  const retry = input.clone();
  const res = await send(input);
  if (res.status === 401 && session?.refreshToken && !input.url.endsWith("/v1/auth/login")) {
    if (await refreshSession()) return send(retry);
  }
  return res;
}

function client<P extends object>(service: Service): Client<P> {
  const c = createClient<P>({
    baseUrl: apiUrl(service),
    fetch: (req: Request) => authedFetch(req),
  });
  return c;
}

export const api = {
  ingestion: client<IngestionPaths>("ingestion"),
  drift: client<DriftPaths>("drift-detection"),
  alerting: client<AlertingPaths>("alerting"),
  audit: client<AuditPaths>("audit"),
  reports: client<ReportPaths>("compliance-report"),
};

interface Answer {
  data?: unknown;
  error?: unknown;
  response: Response;
}

/** The data of a typed call, or an ApiError saying why not (network failures included). */
export async function call<T>(service: Service, p: Promise<Answer>): Promise<T> {
  let answer: Answer;
  try {
    answer = await p;
  } catch (e) {
    throw new ApiError(0, `cannot reach ${service} through the console: ${String(e)}`, service);
  }
  if (!answer.response.ok) {
    const e = errorFrom(answer.response.status, answer.error, service);
    e.headers = answer.response.headers;
    throw e;
  }
  return answer.data as T;
}

/** A raw call for what the generated types cannot say (binary downloads, text, /api/live). */
export async function raw(service: Service | ConsoleRoute, path: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  try {
    res = await authedFetch(new Request(apiUrl(service, path), init));
  } catch (e) {
    throw new ApiError(0, `cannot reach ${service} through the console: ${String(e)}`, service);
  }
  if (!res.ok) {
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* plain text */
    }
    const e = errorFrom(res.status, body, service);
    e.headers = res.headers;
    throw e;
  }
  return res;
}
