import { api, call } from "../../api/http";
import type { Delivery } from "../../api/types";
import { useResource } from "../../components/resource";
import { Show } from "../../components/States";
import { when } from "../../components/format";

export function Deliveries() {
  const log = useResource(() => call<Delivery[]>("alerting", api.alerting.GET("/v1/deliveries")), [], 15_000);
  return (
    <>
      <h2>Delivery log</h2>
      <Show r={log} what="the delivery log" isEmpty={(d) => d.length === 0} empty="No notification was sent yet.">
        {(list) => (
          <table className="grid">
            <thead>
              <tr>
                <th scope="col">Receiver</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">Attempts</th>
              </tr>
            </thead>
            <tbody>
              {list.map((d) => (
                <tr key={d.id}>
                  <th scope="row">{d.receiver}</th>
                  <td>{d.kind}</td>
                  <td>
                    {d.status}
                    {d.last_error && <div className="muted">{d.last_error}</div>}
                  </td>
                  <td>{when(d.created_at)}</td>
                  <td>
                    <details>
                      <summary>{d.attempts} attempt(s)</summary>
                      <ol>
                        {d.attempts_log.map((a) => (
                          <li key={a.attempt}>
                            {when(a.at)}: {a.ok ? "ok" : "failed"}
                            {a.status_code != null && ` (HTTP ${a.status_code})`}
                            {a.duration_ms != null && `, ${Math.round(a.duration_ms)} ms`}
                            {a.error && ` — ${a.error}`}
                          </li>
                        ))}
                      </ol>
                    </details>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Show>
    </>
  );
}
