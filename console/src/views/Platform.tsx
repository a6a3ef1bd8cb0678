import { raw } from "../api/http";
import { useResource } from "../components/resource";
import { Show } from "../components/States";

interface ServiceState {
  service: string;
  reachable: boolean;
  ready: boolean;
  status?: string;
  checks?: Record<string, unknown>;
  error?: string;
  consumer_lag: { group: string; topic: string; lag: number }[];
  dead_letters: { source_topic: string; reason: string; count: number }[];
}

function checkText(v: unknown): string {
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const ok = o.ok ?? o.status;
    const detail = o.detail ?? o.error ?? o.message;
    return `${String(ok)}${detail ? `: ${String(detail)}` : ""}`;
  }
  return String(v);
}

export function Platform() {
  const platform = useResource(async () => (await (await raw("platform", "")).json()) as { services: ServiceState[] }, [], 10_000);
  return (
    <section aria-labelledby="platform-title">
      <h1 id="platform-title">Platform</h1>
      <Show r={platform} what="the platform's state" isEmpty={(p) => p.services.length === 0} empty="No service is configured.">
        {(p) => {
          const lag = p.services.flatMap((s) => s.consumer_lag.map((l) => ({ ...l, service: s.service })));
          const dlq = p.services.flatMap((s) => s.dead_letters.map((d) => ({ ...d, service: s.service })));
          return (
            <>
              <h2>Service health</h2>
              <table className="grid">
                <thead>
                  <tr>
                    <th scope="col">Service</th>
                    <th scope="col">State</th>
                    <th scope="col">Checks</th>
                  </tr>
                </thead>
                <tbody>
                  {p.services.map((s) => (
                    <tr key={s.service}>
                      <th scope="row">{s.service}</th>
                      <td className={s.ready ? "ok" : "bad"}>{s.ready ? "ready" : s.reachable ? "not ready" : "unreachable"}</td>
                      <td>
                        {s.error && <div>{s.error}</div>}
                        <ul className="labels">
                          {Object.entries(s.checks ?? {}).map(([k, v]) => (
                            <li key={k}>
                              <code>
                                {k}: {checkText(v)}
                              </code>
                            </li>
                          ))}
                        </ul>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <h2>Consumer lag</h2>
              {lag.length === 0 ? (
                <p className="state empty">No consumer reports lag.</p>
              ) : (
                <table className="grid">
                  <thead>
                    <tr>
                      <th scope="col">Group</th>
                      <th scope="col">Topic</th>
                      <th scope="col">Service</th>
                      <th scope="col">Lag (records)</th>
                    </tr>
                  </thead>
                  <tbody>
                    {lag.map((l) => (
                      <tr key={`${l.service}-${l.group}-${l.topic}`}>
                        <th scope="row">{l.group}</th>
                        <td>{l.topic}</td>
                        <td>{l.service}</td>
                        <td>{l.lag}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              <h2>Dead letters by reason</h2>
              {dlq.length === 0 ? (
                <p className="state empty">No record was dead-lettered since the services started.</p>
              ) : (
                <table className="grid">
                  <thead>
                    <tr>
                      <th scope="col">Reason</th>
                      <th scope="col">Source topic</th>
                      <th scope="col">Written by</th>
                      <th scope="col">Records</th>
                    </tr>
                  </thead>
                  <tbody>
                    {dlq.map((d) => (
                      <tr key={`${d.service}-${d.source_topic}-${d.reason}`}>
                        <th scope="row">{d.reason}</th>
                        <td>{d.source_topic}</td>
                        <td>{d.service}</td>
                        <td>{d.count}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          );
        }}
      </Show>
    </section>
  );
}
