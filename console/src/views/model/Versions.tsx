import { useState, type FormEvent } from "react";
import { api, call, type ApiError } from "../../api/http";
import type { Me, ModelVersion } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { asApiError, useResource } from "../../components/resource";
import { FormError, Show } from "../../components/States";
import { when } from "../../components/format";

/** The actor id the registry records for the caller (driftline_core Principal.actor_id). */
export function actorId(me: Me | null): string {
  if (!me) return "";
  return me.kind === "user" ? `user:${me.name}` : `key:${me.name || me.id}`;
}

const STAGES = ["staging", "production", "archived"] as const;

function Register({ modelId, onDone }: { modelId: string; onDone: () => void }) {
  const [version, setVersion] = useState("");
  const [uri, setUri] = useState("");
  const [sha, setSha] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      await call(
        "ingestion",
        api.ingestion.POST("/v1/models/{model_id}/versions", {
          params: { path: { model_id: modelId } },
          body: { version: version.trim(), artifact_uri: uri.trim(), artifact_sha256: sha.trim().toLowerCase(), metadata: {} },
        }),
      );
      setVersion("");
      setUri("");
      setSha("");
      onDone();
    } catch (err) {
      setError(asApiError(err));
    }
  }
  return (
    <form className="card" onSubmit={submit} aria-labelledby="register-title">
      <h3 id="register-title">Submit a version</h3>
      <label htmlFor="v-version">Version</label>
      <input id="v-version" required value={version} onChange={(e) => setVersion(e.target.value)} />
      <label htmlFor="v-uri">Artifact URI</label>
      <input id="v-uri" required value={uri} onChange={(e) => setUri(e.target.value)} />
      <label htmlFor="v-sha">Artifact SHA-256</label>
      <input id="v-sha" required value={sha} onChange={(e) => setSha(e.target.value)} />
      <FormError error={error} />
      <div className="actions">
        <button type="submit">Submit version</button>
      </div>
    </form>
  );
}

export function Versions({ modelId }: { modelId: string }) {
  const { me, can } = useAuth();
  const versions = useResource(
    () => call<ModelVersion[]>("ingestion", api.ingestion.GET("/v1/models/{model_id}/versions", { params: { path: { model_id: modelId } } })),
    [modelId],
  );
  const [error, setError] = useState<ApiError | null>(null);
  const [stage, setStage] = useState<Record<string, string>>({});
  const self = actorId(me);

  async function approve(v: string) {
    setError(null);
    try {
      await call(
        "ingestion",
        api.ingestion.POST("/v1/models/{model_id}/versions/{version}/approve", {
          params: { path: { model_id: modelId, version: v } },
          body: { comment: "approved in the console" },
        }),
      );
      versions.reload();
    } catch (e) {
      setError(asApiError(e));
    }
  }

  async function setTo(v: string) {
    setError(null);
    const to = (stage[v] ?? "staging") as (typeof STAGES)[number];
    try {
      await call(
        "ingestion",
        api.ingestion.POST("/v1/models/{model_id}/versions/{version}/stage", {
          params: { path: { model_id: modelId, version: v } },
          body: { stage: to },
        }),
      );
      versions.reload();
    } catch (e) {
      setError(asApiError(e));
    }
  }

  return (
    <>
      <h2>Versions, stages and approvals</h2>
      <p className="muted">
        Separation of duties: the person (or key) who submitted a version cannot approve it, and a version reaches production only once approved. The
        registry refuses both whatever the console shows.
      </p>
      <FormError error={error} />
      <Show r={versions} what="versions" isEmpty={(v) => v.length === 0} empty="No version was submitted yet.">
        {(list) => (
          <table className="grid">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Stage</th>
                <th scope="col">Submitted</th>
                <th scope="col">Approved</th>
                {can("write") && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.map((v) => {
                const mine = v.submitted_by === self;
                return (
                  <tr key={v.version}>
                    <th scope="row">
                      {v.version}
                      <div className="muted">
                        <code>{v.artifact_uri}</code>
                      </div>
                    </th>
                    <td>{v.stage}</td>
                    <td>
                      {v.submitted_by}
                      <div className="muted">{when(v.submitted_at)}</div>
                    </td>
                    <td>
                      {v.approved_by ? (
                        <>
                          {v.approved_by}
                          <div className="muted">
                            {when(v.approved_at)} {v.approval_comment}
                          </div>
                        </>
                      ) : (
                        "not approved"
                      )}
                    </td>
                    {can("write") && (
                      <td>
                        {!v.approved_by && (
                          <>
                            <button
                              type="button"
                              onClick={() => void approve(v.version)}
                              disabled={mine}
                              aria-describedby={mine ? `sod-${v.version}` : undefined}
                            >
                              Approve {v.version}
                            </button>
                            {mine && (
                              <p id={`sod-${v.version}`} className="muted">
                                You submitted this version: another person must approve it.
                              </p>
                            )}
                          </>
                        )}
                        <div className="actions">
                          <label htmlFor={`stage-${v.version}`} className="sr-only">
                            Stage for {v.version}
                          </label>
                          <select id={`stage-${v.version}`} value={stage[v.version] ?? "staging"} onChange={(e) => setStage({ ...stage, [v.version]: e.target.value })}>
                            {STAGES.map((s) => (
                              <option key={s} value={s}>
                                {s}
                              </option>
                            ))}
                          </select>
                          <button type="button" className="secondary" onClick={() => void setTo(v.version)}>
                            Set stage of {v.version}
                          </button>
                        </div>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Show>
      {can("write") && <Register modelId={modelId} onDone={versions.reload} />}
    </>
  );
}
