import { useState } from "react";
import { useSearchParams } from "react-router-dom";
import { api, call, type ApiError } from "../../api/http";
import type { SilenceRow } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { asApiError, useResource } from "../../components/resource";
import { FormError, Show } from "../../components/States";
import { when } from "../../components/format";
import { matcherText } from "./matchers";
import { SilenceForm } from "./SilenceForm";

export function Silences() {
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const creating = params.get("new") === "1";
  const [error, setError] = useState<ApiError | null>(null);
  const silences = useResource(() => call<SilenceRow[]>("alerting", api.alerting.GET("/v1/silences")), []);

  async function expire(id: string) {
    setError(null);
    try {
      await call("alerting", api.alerting.DELETE("/v1/silences/{silence_id}", { params: { path: { silence_id: id } } }));
      silences.reload();
    } catch (e) {
      setError(asApiError(e));
    }
  }

  return (
    <>
      <h2>Silences</h2>
      {can("write") && !creating && (
        <button type="button" onClick={() => setParams({ new: "1" })}>
          New silence
        </button>
      )}
      {can("write") && creating && (
        <SilenceForm
          initial={params.get("matchers") ?? ""}
          onCancel={() => setParams({})}
          onDone={() => {
            setParams({});
            silences.reload();
          }}
        />
      )}
      <FormError error={error} />
      <Show r={silences} what="silences" isEmpty={(s) => s.length === 0} empty="No silence.">
        {(list) => (
          <table className="grid">
            <thead>
              <tr>
                <th scope="col">Matchers</th>
                <th scope="col">State</th>
                <th scope="col">Ends</th>
                <th scope="col">By</th>
                <th scope="col">Comment</th>
                {can("write") && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.map((s) => (
                <tr key={s.id}>
                  <th scope="row">
                    <code>{s.matchers.map(matcherText).join(", ")}</code>
                  </th>
                  <td>{s.state}</td>
                  <td>{when(s.ends_at)}</td>
                  <td>{s.created_by}</td>
                  <td>{s.comment}</td>
                  {can("write") && (
                    <td>
                      {s.state !== "expired" && (
                        <button type="button" onClick={() => void expire(s.id)} aria-label={`Expire silence ${s.matchers.map(matcherText).join(", ")}`}>
                          Expire
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Show>
    </>
  );
}
