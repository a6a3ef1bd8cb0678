import { useState, type FormEvent } from "react";
import { api, call, type ApiError } from "../api/http";
import type { AuditItem, AuditVerification } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { asApiError } from "../components/resource";
import { Empty, FormError, Loading } from "../components/States";
import { when } from "../components/format";

interface Page {
  items: AuditItem[];
  next_cursor: string | null;
}

interface Filters {
  start: string;
  end: string;
  actor: string;
  action: string;
  resource_type: string;
  resource_id: string;
}

/** The audit API's cursor for "after this sequence number" (services/audit api._cursor). */
export function cursorAfter(seq: number): string {
  return btoa(`seq:${seq}`).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function query(f: Filters, cursor: string | null, limit = 50): Promise<Page> {
  const q: Record<string, string | number> = { limit };
  for (const [k, v] of Object.entries(f)) if (v.trim()) q[k] = k === "start" || k === "end" ? new Date(v).toISOString() : v.trim();
  if (cursor) q.cursor = cursor;
  return call<Page>("audit", api.audit.GET("/v1/audit/records", { params: { query: q } }));
}

function Records({ items }: { items: AuditItem[] }) {
  return (
    <table className="grid">
      <thead>
        <tr>
          <th scope="col">Seq</th>
          <th scope="col">When</th>
          <th scope="col">Actor</th>
          <th scope="col">Action</th>
          <th scope="col">Resource</th>
          <th scope="col">Outcome</th>
          <th scope="col">Record</th>
        </tr>
      </thead>
      <tbody>
        {items.map((r) => (
          <tr key={r.seq}>
            <th scope="row">{r.seq}</th>
            <td>{when(r.occurred_at)}</td>
            <td>{r.actor}</td>
            <td>{r.action}</td>
            <td>
              {r.resource_type}/{r.resource_id}
            </td>
            <td>{r.outcome}</td>
            <td>
              <details>
                <summary>details</summary>
                <pre>{JSON.stringify(r.record ?? r, null, 2)}</pre>
              </details>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Verify() {
  const [from, setFrom] = useState("1");
  const [to, setTo] = useState("");
  const [busy, setBusy] = useState(false);
  const [out, setOut] = useState<AuditVerification | null>(null);
  const [broken, setBroken] = useState<AuditItem | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setOut(null);
    setBroken(null);
    setBusy(true);
    try {
      const q: { from_seq: number; to_seq?: number } = { from_seq: Number(from) || 1 };
      if (to.trim()) q.to_seq = Number(to);
      const v = await call<AuditVerification>("audit", api.audit.GET("/v1/audit/verify", { params: { query: q } }));
      setOut(v);
      if (v.first_break) {
        // the first broken record itself (absent when the break is a missing record)
        const page = await query({ start: "", end: "", actor: "", action: "", resource_type: "", resource_id: "" }, v.first_break.seq > 1 ? cursorAfter(v.first_break.seq - 1) : null, 1);
        const first = page.items[0];
        setBroken(first && first.seq === v.first_break.seq ? first : null);
      }
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby="verify-title">
      <h2 id="verify-title">Verify a range</h2>
      <div className="row">
        <div>
          <label htmlFor="v-from">From sequence number</label>
          <input id="v-from" inputMode="numeric" value={from} onChange={(e) => setFrom(e.target.value)} />
        </div>
        <div>
          <label htmlFor="v-to">To sequence number (empty: the head)</label>
          <input id="v-to" inputMode="numeric" value={to} onChange={(e) => setTo(e.target.value)} />
        </div>
      </div>
      <div className="actions">
        <button type="submit" disabled={busy}>
          Verify chain
        </button>
      </div>
      {busy && <Loading what="the verification" />}
      <FormError error={error} />
      {out && (
        <div className={`state ${out.ok ? "empty" : "error"}`} role="status">
          {out.ok ? (
            <p className="ok">
              The chain verifies: {String(out.records ?? 0)} record(s) from {out.range.from_seq} to {out.range.to_seq ?? "the head"}, {String(out.checkpoints ?? 0)} signed checkpoint(s).
            </p>
          ) : (
            <>
              <p className="bad">
                The chain is broken at record {out.first_break?.seq}: {out.first_break?.reason}
              </p>
              {broken ? (
                <>
                  <p>The first broken record:</p>
                  <Records items={[broken]} />
                </>
              ) : (
                <p>That record cannot be shown (it is missing from the trail).</p>
              )}
            </>
          )}
        </div>
      )}
    </form>
  );
}

const EMPTY: Filters = { start: "", end: "", actor: "", action: "", resource_type: "", resource_id: "" };

export function Audit() {
  const { can } = useAuth();
  if (!can("audit")) return <Empty>The audit trail needs the audit permission (the auditor and admin roles).</Empty>;
  return <AuditView />;
}

function AuditView() {
  const [f, setF] = useState<Filters>(EMPTY);
  const [page, setPage] = useState<Page | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function run(more: boolean) {
    setError(null);
    setBusy(true);
    try {
      const got = await query(f, more ? (page?.next_cursor ?? null) : null);
      setPage(more && page ? { items: [...page.items, ...got.items], next_cursor: got.next_cursor } : got);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }

  const field = (k: keyof Filters, label: string, type = "text") => (
    <div>
      <label htmlFor={`a-${k}`}>{label}</label>
      <input id={`a-${k}`} type={type} value={f[k]} onChange={(e) => setF({ ...f, [k]: e.target.value })} />
    </div>
  );

  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit trail</h1>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          void run(false);
        }}
        aria-labelledby="query-title"
      >
        <h2 id="query-title">Query</h2>
        <div className="row">
          {field("start", "From", "datetime-local")}
          {field("end", "Until", "datetime-local")}
          {field("actor", "Actor")}
        </div>
        <div className="row">
          {field("action", "Action")}
          {field("resource_type", "Resource type")}
          {field("resource_id", "Resource id")}
        </div>
        <div className="actions">
          <button type="submit" disabled={busy}>
            Search
          </button>
        </div>
      </form>
      <FormError error={error} />
      {busy && !page && <Loading what="audit records" />}
      {page &&
        (page.items.length === 0 ? (
          <Empty>No audit record matches.</Empty>
        ) : (
          <>
            <Records items={page.items} />
            {page.next_cursor && (
              <button type="button" onClick={() => void run(true)} disabled={busy}>
                Load more
              </button>
            )}
          </>
        ))}
      <Verify />
    </section>
  );
}
