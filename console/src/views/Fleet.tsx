import { Link } from "react-router-dom";
import { api, call } from "../api/http";
import type { Model } from "../api/types";
import { LiveIndicator } from "../components/LiveIndicator";
import { useResource } from "../components/resource";
import { Show } from "../components/States";
import { StatusBadge } from "../components/StatusBadge";
import { num, pct, when } from "../components/format";
import { useLive } from "../live/LiveContext";
import { healthOf, type Health } from "../live/store";

const HEADLINE = ["accuracy", "f1", "roc_auc", "rmse", "mae", "r2"];

function headline(h: Health): string {
  const m = h.performance?.metrics;
  if (!m) return "—";
  const k = HEADLINE.find((x) => x in m) ?? Object.keys(m)[0];
  return k ? `${k} ${num(m[k])} (${h.performance?.labelled ?? 0} labelled)` : "—";
}

export function Fleet() {
  const models = useResource(() => call<Model[]>("ingestion", api.ingestion.GET("/v1/models")), []);
  const live = useLive();
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
