import { useMemo, useState } from "react";
import { NavLink, Route, Routes, useParams } from "react-router-dom";
import { api, call } from "../../api/http";
import type { Model, ReferenceProfile } from "../../api/types";
import { useResource } from "../../components/resource";
import { Empty, ErrorPanel, Loading, Show } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import { num, pct, when } from "../../components/format";
import { useLive } from "../../live/LiveContext";
import { healthOf } from "../../live/store";
import { Distribution, PALETTE, TimeLines } from "./Charts";
import { HeatMap } from "./HeatMap";
import { fromLive, loadHistory, merged, referenceBins, type BinPoint, type History } from "./history";
import { Monitoring } from "./Monitoring";
import { Versions } from "./Versions";

const PREDICTION = "__prediction__";

function binLabel(b: BinPoint, prev: BinPoint | undefined): string {
  const fmt = (x: number) => Number(x.toPrecision(4)).toString();
  if (b.upper != null && Number.isFinite(b.upper)) return prev?.upper != null ? `${fmt(prev.upper)}–${fmt(b.upper)}` : `≤ ${fmt(b.upper)}`;
  if (prev?.upper != null && /^b\d+$/.test(b.bin)) return `> ${fmt(prev.upper)}`;
  return b.bin;
}

function useHistory(modelId: string): { history: History; loading: boolean } {
  const live = useLive();
  const stored = useResource(() => loadHistory(modelId, 24), [modelId], 60_000);
  const note =
    stored.state === "error"
      ? `Stored history is not available (${stored.error.message}); shown: the windows received live since the console opened.`
      : "";
  const history = useMemo(() => merged(stored.state === "ready" ? stored.data : null, fromLive(live.models[modelId], note)), [stored.state, stored.data, live.models, modelId, note]);
  return { history, loading: stored.state === "loading" };
}

function Note({ h }: { h: History }) {
  return h.note ? <p className="state empty">{h.note}</p> : null;
}

function Reference({ modelId, history }: { modelId: string; history: History }) {
  const ref = useResource(
    () => call<ReferenceProfile>("ingestion", api.ingestion.GET("/v1/models/{model_id}/reference", { params: { path: { model_id: modelId } } })),
    [modelId],
  );
  const [feature, setFeature] = useState<string>("");
  return (
    <>
      <h2>Reference profile and distributions</h2>
      <Show r={ref} what="the reference profile">
        {(p) => {
          const feats = (p.profile.features ?? {}) as Record<string, unknown>;
          const names = Object.keys(feats);
          const chosen = feature || names.find((n) => n !== PREDICTION) || names[0] || "";
          const refBins = referenceBins(feats[chosen]);
          const current = history.bins[chosen === PREDICTION ? "prediction" : chosen];
          // the stored history names bins b00.. with their upper edges: label them by the edges
          const bins = current?.length ? current.map((b, i) => ({ ...b, bin: binLabel(b, current[i - 1]) })) : refBins;
          return (
            <>
              <dl className="facts card">
                <dt>Profile version</dt>
                <dd>{p.version}</dd>
                <dt>Rows</dt>
                <dd>{p.rows}</dd>
                <dt>Source</dt>
                <dd>
                  <code>{JSON.stringify(p.source)}</code>
                </dd>
                <dt>By</dt>
                <dd>
                  {p.created_by}, {when(p.created_at)}
                </dd>
              </dl>
              <label htmlFor="dist-feature">Feature</label>
              <select id="dist-feature" value={chosen} onChange={(e) => setFeature(e.target.value)}>
                {names.map((n) => (
                  <option key={n} value={n}>
                    {n === PREDICTION ? "prediction (the model's output)" : n}
                  </option>
                ))}
              </select>
              {bins.length ? <Distribution bins={bins} feature={chosen} /> : <Empty>No histogram for {chosen}.</Empty>}
              {!current?.length && (
                <p className="muted">
                  Reference only: the current window's bins come from the stored history{history.source === "live" ? ", which is not available" : ", which has none for this feature yet"}.
                </p>
              )}
            </>
          );
        }}
      </Show>
    </>
  );
}

function Drift({ history }: { history: History }) {
  return (
    <>
      <h2>Drift per feature over time</h2>
      <Note h={history} />
      {history.features.length === 0 ? (
        <Empty>No drift window yet.</Empty>
      ) : (
        <>
          <HeatMap points={history.features} />
          <TimeLines
            label="Share of drifted features per window"
            data={history.windows.filter((w) => w.drifted_share != null).map((w) => ({ time: w.time, share: w.drifted_share }))}
            series={[{ key: "share", name: "drifted share", color: PALETTE[1] ?? "#b4472e" }]}
            domain={[0, 1]}
          />
        </>
      )}
    </>
  );
}

function Quality({ modelId, history }: { modelId: string; history: History }) {
  const live = useLive();
  const latest = live.models[modelId]?.quality.at(-1);
  const points = history.windows.filter((w) => w.quality_score != null);
  return (
    <>
      <h2>Data quality</h2>
      <Note h={history} />
      {points.length === 0 ? (
        <Empty>No quality window yet.</Empty>
      ) : (
        <TimeLines label="Quality score per window (0-100)" data={points.map((w) => ({ time: w.time, score: w.quality_score }))} series={[{ key: "score", name: "quality score", color: PALETTE[2] ?? "#2f7d32" }]} domain={[0, 100]} />
      )}
      {latest && (
        <table className="grid">
          <caption>Latest window ({when(latest.window.end)}), per feature</caption>
          <thead>
            <tr>
              <th scope="col">Feature</th>
              <th scope="col">Values</th>
              <th scope="col">Missing</th>
              <th scope="col">Out of range</th>
              <th scope="col">Unseen categories</th>
              <th scope="col">Type errors</th>
              <th scope="col">Outliers</th>
            </tr>
          </thead>
          <tbody>
            {latest.features.map((f) => (
              <tr key={f.feature}>
                <th scope="row">{f.feature}</th>
                <td>{f.count}</td>
                <td>{f.missing}</td>
                <td>{f.out_of_range}</td>
                <td>{f.unseen_categories}</td>
                <td>{f.type_errors}</td>
                <td>{f.outliers}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function Performance({ history }: { history: History }) {
  const perf = history.performance;
  const keys = [...new Set(perf.flatMap((p) => Object.keys(p.metrics)))].filter((k) => k !== "business_value_wrong");
  const value = history.windows.filter((w) => w.business_value_sum != null);
  return (
    <>
      <h2>Performance (with late labels)</h2>
      <Note h={history} />
      <p className="muted">Labels arrive after predictions: a window's metrics are published again as its labels come in, and the latest count replaces the earlier one.</p>
      {perf.length === 0 ? (
        <Empty>No labelled window yet.</Empty>
      ) : (
        <>
          <TimeLines label="Performance metrics per window" data={perf.map((p) => ({ time: p.time, ...p.metrics }))} series={keys.map((k, i) => ({ key: k, name: k, color: PALETTE[i % PALETTE.length] ?? "#0b4fa8" }))} />
          <table className="grid">
            <thead>
              <tr>
                <th scope="col">Window end</th>
                <th scope="col">Labelled</th>
                {keys.map((k) => (
                  <th scope="col" key={k}>
                    {k}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {perf
                .slice(-20)
                .reverse()
                .map((p) => (
                  <tr key={p.time}>
                    <th scope="row">{when(p.time)}</th>
                    <td>{p.labelled}</td>
                    {keys.map((k) => (
                      <td key={k}>{num(p.metrics[k])}</td>
                    ))}
                  </tr>
                ))}
            </tbody>
          </table>
        </>
      )}
      <h2>Business value</h2>
      {value.length === 0 ? (
        <Empty>{history.source === "live" ? "Business value is kept with the stored history, which is not available here." : "No event carried a business value."}</Empty>
      ) : (
        <>
          <TimeLines
            label="Business value per window (sum)"
            data={value.map((w) => ({ time: w.time, sum: w.business_value_sum }))}
            series={[{ key: "sum", name: "sum of business value", color: PALETTE[0] ?? "#0b4fa8" }]}
          />
          <p>
            Latest window: sum {num(value.at(-1)?.business_value_sum, 2)}, mean {num(value.at(-1)?.business_value_mean, 3)} over{" "}
            {value.at(-1)?.business_value_count ?? 0} events.
          </p>
        </>
      )}
      {perf.some((p) => p.business_value_wrong != null) && (
        <p>Value of wrong predictions (latest window): {num(perf.filter((p) => p.business_value_wrong != null).at(-1)?.business_value_wrong)}</p>
      )}
    </>
  );
}

export function ModelView() {
  const { modelId = "" } = useParams();
  const model = useResource(() => call<Model>("ingestion", api.ingestion.GET("/v1/models/{model_id}", { params: { path: { model_id: modelId } } })), [modelId]);
  const live = useLive();
  const { history } = useHistory(modelId);
  if (model.state === "loading") return <Loading what={`model ${modelId}`} />;
  if (model.state === "error") return <ErrorPanel error={model.error} what={`model ${modelId}`} retry={model.reload} />;
  const m = model.data;
  const h = healthOf(m.id, live);
  const base = `/models/${encodeURIComponent(m.id)}`;
  return (
    <section aria-labelledby="model-title">
      <div className="view-head">
        <h1 id="model-title">
          {m.name} <span className="muted">({m.id})</span>
        </h1>
        <StatusBadge status={h.status} why={h.why} />
        <span className="muted">{h.why}</span>
      </div>
      <p className="muted">
        {m.task} · {m.feature_schema.features.length} features · latest drift {h.drift ? pct(h.drift.drifted_share) : "—"} · {h.openAlerts} open alert(s)
      </p>
      <nav aria-label="Model" className="subnav">
        <NavLink end to={base}>
          Versions
        </NavLink>
        <NavLink to={`${base}/reference`}>Reference</NavLink>
        <NavLink to={`${base}/monitoring`}>Monitoring</NavLink>
        <NavLink to={`${base}/drift`}>Drift</NavLink>
        <NavLink to={`${base}/quality`}>Quality</NavLink>
        <NavLink to={`${base}/performance`}>Performance</NavLink>
      </nav>
      <Routes>
        <Route index element={<Versions modelId={m.id} />} />
        <Route path="reference" element={<Reference modelId={m.id} history={history} />} />
        <Route path="monitoring" element={<Monitoring model={m} onSaved={model.reload} />} />
        <Route path="drift" element={<Drift history={history} />} />
        <Route path="quality" element={<Quality modelId={m.id} history={history} />} />
        <Route path="performance" element={<Performance history={history} />} />
      </Routes>
    </section>
  );
}
