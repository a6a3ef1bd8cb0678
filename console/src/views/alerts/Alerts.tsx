import { useNavigate } from "react-router-dom";
import { api, call } from "../../api/http";
import type { AmGroup, CurrentAlert } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { useResource } from "../../components/resource";
import { Show } from "../../components/States";
import { when } from "../../components/format";
import { useLive } from "../../live/LiveContext";
import { matchersFor } from "./matchers";

function Labels({ labels }: { labels: Record<string, string> }) {
  return (
    <ul className="labels" aria-label="labels">
      {Object.entries(labels).map(([k, v]) => (
        <li key={k}>
          <code>
            {k}={v}
          </code>
        </li>
      ))}
    </ul>
  );
}

export function Alerts() {
  const { can } = useAuth();
  const nav = useNavigate();
  const live = useLive();
  // the live stream moves `received`: refetch so groups follow firing and resolving alerts
  const groups = useResource(
    () => call<AmGroup[]>("alerting", api.alerting.GET("/api/v2/alerts/groups")),
    [live.alerts.length],
    15_000,
  );
  const current = useResource(() => call<CurrentAlert[]>("alerting", api.alerting.GET("/v1/alerts")), [live.alerts.length], 15_000);

  const silence = (labels: Record<string, string>) =>
    nav(`/alerts/silences?${new URLSearchParams({ new: "1", matchers: matchersFor(labels).join("\n") }).toString()}`);

  return (
    <>
      <h2>Firing, grouped as routed</h2>
      <Show r={groups} what="alert groups" isEmpty={(g) => g.length === 0} empty="No alert is firing.">
        {(list) =>
          list.map((g, i) => (
            <article key={i} className="card" aria-label={`group to ${g.receiver.name}`}>
              <h3>
                To <strong>{g.receiver.name}</strong>
              </h3>
              <Labels labels={g.labels} />
              <table className="grid">
                <thead>
                  <tr>
                    <th scope="col">Alert</th>
                    <th scope="col">State</th>
                    <th scope="col">Since</th>
                    <th scope="col">Summary</th>
                    {can("write") && <th scope="col">Actions</th>}
                  </tr>
                </thead>
                <tbody>
                  {g.alerts.map((a) => (
                    <tr key={a.fingerprint}>
                      <th scope="row">
                        {a.labels.alertname} <span className="muted">{a.labels.model}</span>
                        {a.labels.feature && <span className="muted"> · {a.labels.feature}</span>}
                      </th>
                      <td>
                        {a.status.state === "suppressed"
                          ? `suppressed${a.status.silencedBy.length ? " (silenced)" : ""}${a.status.inhibitedBy.length ? " (inhibited)" : ""}${a.status.mutedBy.length ? " (muted)" : ""}`
                          : "firing"}
                      </td>
                      <td>{when(a.startsAt)}</td>
                      <td>{a.annotations.summary ?? ""}</td>
                      {can("write") && (
                        <td>
                          <button
                            type="button"
                            onClick={() => silence(a.labels)}
                            aria-label={`Silence ${a.labels.alertname ?? "alert"} ${a.labels.model ?? ""}`.trim()}
                          >
                            Silence
                          </button>
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </article>
          ))
        }
      </Show>
      <h2>Resolved</h2>
      <Show
        r={current}
        what="resolved alerts"
        isEmpty={(c) => !c.some((a) => a.status === "resolved")}
        empty="No recently resolved alert."
      >
        {(list) => (
          <table className="grid">
            <thead>
              <tr>
                <th scope="col">Alert</th>
                <th scope="col">Model</th>
                <th scope="col">Started</th>
                <th scope="col">Summary</th>
              </tr>
            </thead>
            <tbody>
              {list
                .filter((a) => a.status === "resolved")
                .map((a) => (
                  <tr key={a.fingerprint}>
                    <th scope="row">{a.labels.alertname}</th>
                    <td>{a.labels.model}</td>
                    <td>{when(a.starts_at)}</td>
                    <td>{a.annotations.summary ?? ""}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        )}
      </Show>
      <h2>Live activity</h2>
      {live.alerts.length === 0 ? (
        <p className="state empty">No alert event since the console opened.</p>
      ) : (
        <ol className="activity" aria-label="alert events">
          {live.alerts.slice(0, 50).map((e) => (
            <li key={e.event_id}>
              {when(e.occurred_at)} — <strong>{e.kind.replace("_", " ")}</strong> {e.labels.alertname ?? e.rule_id ?? ""}{" "}
              {e.labels.model ?? ""} {e.receiver ? `→ ${e.receiver}` : ""}
            </li>
          ))}
        </ol>
      )}
    </>
  );
}
