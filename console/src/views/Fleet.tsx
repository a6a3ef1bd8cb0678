import { useEffect } from "react";
import { Link } from "react-router-dom";
import { api, call } from "../api/http";
import type { Model } from "../api/types";
import { LiveIndicator } from "../components/LiveIndicator";
import { useResource } from "../components/resource";
import { Show } from "../components/States";
import { StatusBadge } from "../components/StatusBadge";
import { num, pct, when } from "../components/format";
import { useLive, useLiveStore } from "../live/LiveContext";
import { healthOf, type Health, type LiveStore } from "../live/store";
import { loadHistory } from "./model/history";

const HEADLINE = ["accuracy", "f1", "roc_auc", "rmse", "mae", "r2"];

function headline(h: Health): string {
  const m = h.performance?.metrics;
  if (!m) return "—";
  const k = HEADLINE.find((x) => x in m) ?? Object.keys(m)[0];
  return k ? `${k} ${num(m[k])} (${h.performance?.labelled ?? 0} labelled)` : "—";
}

/** Each model's latest stored window (the console's /api/history), so a fleet opened between
 * windows is not all "no data"; a few requests at a time, and none is fatal. */
async function seedLatest(store: LiveStore, models: Model[], signal: { stop: boolean }): Promise<void> {
  const queue = [...models];
  const worker = async () => {
    for (let m = queue.shift(); m && !signal.stop; m = queue.shift()) {
      let h;
      try {
        h = await loadHistory(m.id, 24, 1);
      } catch {
        continue; // no stored history here: the live feed fills the row
      }
      if (signal.stop) return;
      const w = h.windows.at(-1);
      if (!w) continue;
      const base = { event_id: `stored-${m.id}`, tenant_id: "", occurred_at: w.time, model_id: m.id, model_version: w.version, segment: {}, window: { start: w.time, end: w.time, events: w.events } };
      if (w.drifted_share != null) {
        const features = h.features
          .filter((f) => f.time === w.time && f.feature !== "prediction")
          .map((f) => ({ feature: f.feature, test: "", statistic: f.statistic, p_value: f.p_value, threshold: f.threshold, drifted: f.drifted }));
        store.seed({ kind: "drift", record: { ...base, features, prediction: null, drifted_share: w.drifted_share, dataset_drift: !!w.dataset_drift, multivariate: null } });
      }
      if (w.quality_score != null) store.seed({ kind: "quality", record: { ...base, features: [], quality_score: w.quality_score } });
      const p = h.performance.at(-1);
      if (p) {
        store.seed({ kind: "performance", record: { ...base, window: { start: p.time, end: p.time, events: 0 }, kind: "window_metrics", task: m.task, labelled: p.labelled, metrics: p.metrics, detector: null } });
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

export function Fleet() {
  const models = useResource(() => call<Model[]>("ingestion", api.ingestion.GET("/v1/models")), []);
  const live = useLive();
  const store = useLiveStore();
  const list = models.state === "ready" ? models.data : null;
  useEffect(() => {
    if (!list?.length) return;
    const signal = { stop: false };
    void seedLatest(store, list, signal);
    return () => {
      signal.stop = true;
    };
  }, [list, store]);
  return (
    <section aria-labelledby="fleet-title">
      <div className="view-head">
        <h1 id="fleet-title">Fleet</h1>
        <LiveIndicator snap={live} />
      </div>
      <Show r={models} what="models" isEmpty={(d) => d.length === 0} empty="No models are registered in this tenant yet.">
        {(list) => (
          <table className="grid">
            <caption className="sr-only">Every model of the tenant and its health</caption>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Status</th>
                <th scope="col">Drift</th>
                <th scope="col">Quality</th>
                <th scope="col">Performance</th>
                <th scope="col">Open alerts</th>
                <th scope="col">Latest window</th>
              </tr>
            </thead>
            <tbody>
              {list.map((m) => {
                const h = healthOf(m.id, live);
                return (
                  <tr key={m.id} data-testid={`fleet-row-${m.id}`}>
                    <th scope="row">
                      <Link to={`/models/${encodeURIComponent(m.id)}`}>{m.id}</Link>
                      <div className="muted">{m.name}</div>
                    </th>
                    <td>
                      <StatusBadge status={h.status} why={h.why} />
                      <div className="muted">{h.why}</div>
                    </td>
                    <td>{h.drift ? `${pct(h.drift.drifted_share)} of features` : "—"}</td>
                    <td>{h.quality ? `${num(h.quality.quality_score, 1)}/100` : "—"}</td>
                    <td>{headline(h)}</td>
                    <td>{h.openAlerts}</td>
                    <td>{when(h.drift?.window.end ?? h.quality?.window.end)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Show>
    </section>
  );
}
