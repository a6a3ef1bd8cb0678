import { useState, type FormEvent } from "react";
import { api, call, raw, type ApiError } from "../api/http";
import type { Model, ReportJob } from "../api/types";
import { asApiError, useResource } from "../components/resource";
import { useAuth } from "../auth/AuthContext";
import { Empty, FormError, Show } from "../components/States";
import { when } from "../components/format";
import { checkBundle, type BundleCheck } from "../reports/verify";

const FRAMEWORKS = [
  { id: "gdpr", name: "GDPR" },
  { id: "sox", name: "SOX" },
  { id: "fda", name: "FDA" },
  { id: "model_card", name: "Model card" },
] as const;
type Framework = (typeof FRAMEWORKS)[number]["id"];
const FORMATS = ["json", "html", "pdf"] as const;

const day = (d: Date) => d.toISOString().slice(0, 10);

/** A report's file names: the list answers the manifest (the files' own list is GET /{id}'s). */
export function reportFiles(j: ReportJob): string[] {
  const files = j.files ?? j.manifest?.files;
  return files ? files.map((f) => f.name) : j.formats.map((f) => `report.${f}`);
}

function save(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function Generate({ onDone }: { onDone: () => void }) {
  const models = useResource(() => call<Model[]>("ingestion", api.ingestion.GET("/v1/models")), []);
  const [framework, setFramework] = useState<Framework>("gdpr");
  const [start, setStart] = useState(day(new Date(Date.now() - 30 * 86400_000)));
  const [end, setEnd] = useState(day(new Date(Date.now() + 86400_000)));
  const [model, setModel] = useState("");
  const [formats, setFormats] = useState<string[]>([...FORMATS]);
  const [error, setError] = useState<ApiError | null>(null);
  const [local, setLocal] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setLocal(null);
    if (framework === "model_card" && !model) return setLocal("A model card needs a model.");
    if (formats.length === 0) return setLocal("Choose at least one format.");
    if (end <= start) return setLocal("The period must end after it starts.");
    try {
      const body = {
        framework,
        period_start: `${start}T00:00:00Z`,
        period_end: `${end}T00:00:00Z`,
        model_id: model || null,
        formats: formats as ("json" | "html" | "pdf")[],
      };
      await call("compliance-report", api.reports.POST("/v1/reports", { body }));
      onDone();
    } catch (err) {
      setError(asApiError(err));
    }
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby="generate-title">
      <h2 id="generate-title">Generate a report</h2>
      <label htmlFor="r-framework">Framework</label>
      <select id="r-framework" value={framework} onChange={(e) => setFramework(e.target.value as Framework)}>
        {FRAMEWORKS.map((f) => (
          <option key={f.id} value={f.id}>
            {f.name}
          </option>
        ))}
      </select>
      <label htmlFor="r-start">Period start</label>
      <input id="r-start" type="date" required value={start} onChange={(e) => setStart(e.target.value)} />
      <label htmlFor="r-end">Period end</label>
      <input id="r-end" type="date" required value={end} onChange={(e) => setEnd(e.target.value)} />
      <label htmlFor="r-model">Model {framework === "model_card" ? "(required)" : "(optional)"}</label>
      <select id="r-model" value={model} onChange={(e) => setModel(e.target.value)}>
        <option value="">{models.state === "error" ? "(models unavailable)" : "every model"}</option>
        {models.state === "ready" &&
          models.data.map((m) => (
            <option key={m.id} value={m.id}>
              {m.id}
            </option>
          ))}
      </select>
      <fieldset>
        <legend>Formats</legend>
        {FORMATS.map((f) => (
          <label key={f} style={{ display: "inline-flex", gap: 4, marginRight: 12, fontWeight: 400 }}>
            <input type="checkbox" checked={formats.includes(f)} onChange={(e) => setFormats(e.target.checked ? [...formats, f] : formats.filter((x) => x !== f))} />
            {f.toUpperCase()}
          </label>
        ))}
      </fieldset>
      {local && (
        <p className="field-error" role="alert">
          {local}
        </p>
      )}
      <FormError error={error} />
      <div className="actions">
        <button type="submit">Generate report</button>
      </div>
    </form>
  );
}

function Verdict({ check }: { check: BundleCheck }) {
  return (
    <div className={`state ${check.ok ? "empty" : "error"}`} role="status" aria-live="polite">
      {check.ok ? (
        <p className="ok">
          Verified: the signature is valid for the published key {check.fingerprint}, and {check.files.length} file(s) match the manifest.
        </p>
      ) : (
        <>
          <p className="bad">Verification failed.</p>
          <ul>
            {check.problems.map((p, i) => (
              <li key={i}>{p}</li>
            ))}
          </ul>
        </>
      )}
      {check.embeddedKeyMatches === false && <p>The key inside the manifest differs from the published key; only the published key counts.</p>}
    </div>
  );
}

async function publishedKey(): Promise<string> {
  const k = await call<{ public_key: string }>("compliance-report", api.reports.GET("/v1/reports/public-key"));
  return k.public_key;
}

function VerifyFile() {
  const [check, setCheck] = useState<BundleCheck | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  async function pick(file: File | undefined) {
    setCheck(null);
    setError(null);
    if (!file) return;
    try {
      const [pem, data] = await Promise.all([publishedKey(), file.arrayBuffer()]);
      setCheck(checkBundle(new Uint8Array(data), pem));
    } catch (e) {
      setError(asApiError(e));
    }
  }
  return (
    <div className="card">
      <h2>Verify a bundle file</h2>
      <label htmlFor="verify-file">Report bundle (.zip)</label>
      <input id="verify-file" type="file" accept=".zip,application/zip" onChange={(e) => void pick(e.target.files?.[0])} />
      <FormError error={error} />
      {check && <Verdict check={check} />}
    </div>
  );
}

export function Reports() {
  const { can } = useAuth();
  if (!can("audit")) return <Empty>Reports need the audit permission (the auditor and admin roles).</Empty>;
  return <ReportsView />;
}

function ReportsView() {
  const [active, setActive] = useState(false);
  const reports = useResource(
    async () => {
      const r = await call<{ items: ReportJob[] }>("compliance-report", api.reports.GET("/v1/reports", { params: { query: { limit: 20 } } }));
      setActive(r.items.some((j) => j.status === "queued" || j.status === "running"));
      return r.items;
    },
    [],
    active ? 1500 : 15_000,
  );
  const [checks, setChecks] = useState<Record<string, BundleCheck>>({});
  const [error, setError] = useState<ApiError | null>(null);

  async function download(path: string, name: string) {
    setError(null);
    try {
      const res = await raw("compliance-report", path);
      save(await res.blob(), name);
    } catch (e) {
      setError(asApiError(e));
    }
  }

  async function verify(id: string) {
    setError(null);
    try {
      const [pem, res] = await Promise.all([publishedKey(), raw("compliance-report", `/v1/reports/${id}/bundle`)]);
      const check = checkBundle(new Uint8Array(await res.arrayBuffer()), pem);
      setChecks((c) => ({ ...c, [id]: check }));
    } catch (e) {
      setError(asApiError(e));
    }
  }

  return (
    <section aria-labelledby="reports-title">
      <h1 id="reports-title">Reports</h1>
      <Generate onDone={reports.reload} />
      <FormError error={error} />
      <h2>Recent reports</h2>
      <Show r={reports} what="reports" isEmpty={(r) => r.length === 0} empty="No report was generated yet.">
        {(list) => (
          <table className="grid">
            <thead>
              <tr>
                <th scope="col">Report</th>
                <th scope="col">Period</th>
                <th scope="col">Progress</th>
                <th scope="col">Files</th>
              </tr>
            </thead>
            <tbody>
              {list.map((j) => {
                const label = `${FRAMEWORKS.find((f) => f.id === j.framework)?.name ?? j.framework}${j.model_id ? ` ${j.model_id}` : ""}`;
                return (
                  <tr key={j.id}>
                    <th scope="row">
                      {label}
                      <div className="muted">
                        {when(j.created_at)} by {j.requested_by}
                      </div>
                    </th>
                    <td>
                      {when(j.period_start)} – {when(j.period_end)}
                    </td>
                    <td>
                      {j.status === "done" ? (
                        "done"
                      ) : j.status === "failed" ? (
                        <span className="bad">failed: {j.error ?? j.stage}</span>
                      ) : (
                        <>
                          <progress max={1} value={j.progress} aria-label={`Progress of ${label}`} /> {j.status} ({j.stage})
                        </>
                      )}
                    </td>
                    <td>
                      {j.status === "done" && (
                        <div className="actions">
                          {reportFiles(j).map((f) => (
                            <button key={f} type="button" className="secondary" onClick={() => void download(`/v1/reports/${j.id}/files/${f}`, `${j.id}-${f}`)}>
                              Download {f}
                            </button>
                          ))}
                          <button type="button" onClick={() => void download(`/v1/reports/${j.id}/bundle`, `report-${j.id}.zip`)}>
                            Download bundle
                          </button>
                          <button type="button" onClick={() => void verify(j.id)}>
                            Verify bundle
                          </button>
                        </div>
                      )}
                      {checks[j.id] && <Verdict check={checks[j.id] as BundleCheck} />}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Show>
      <VerifyFile />
    </section>
  );
}
