import { useState, type FormEvent } from "react";
import { api, call, raw, type ApiError } from "../../api/http";
import type { AlertRule } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { asApiError, useResource } from "../../components/resource";
import { FormError, Show } from "../../components/States";

const TEMPLATE = {
  id: "my-rule",
  name: "MyRule",
  condition: { metric: "drift.drifted_share", op: ">=", value: 0.3 },
  for_windows: 1,
  severity: "warning",
  annotations: { summary: "{value:.0%} of the features of {model} drifted" },
};

function RuleEditor({ rule, onDone, onCancel }: { rule: AlertRule | null; onDone: () => void; onCancel: () => void }) {
  const [text, setText] = useState(JSON.stringify(rule ?? TEMPLATE, null, 2));
  const [error, setError] = useState<ApiError | null>(null);
  const [parseError, setParseError] = useState<string | null>(null);

  async function save(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setParseError(null);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      setParseError(`Not valid JSON: ${String(err)}`);
      return;
    }
    try {
      const path = rule ? `/v1/alert-rules/${encodeURIComponent(rule.id)}` : "/v1/alert-rules";
      await raw("alerting", path, {
        method: rule ? "PUT" : "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      onDone();
    } catch (err) {
      setError(asApiError(err));
    }
  }

  return (
    <form className="card" onSubmit={save} aria-labelledby="rule-editor-title">
      <h3 id="rule-editor-title">{rule ? `Edit rule ${rule.id}` : "New rule"}</h3>
      <label htmlFor="rule-json">Rule (JSON)</label>
      <textarea
        id="rule-json"
        rows={14}
        spellCheck={false}
        className="code"
        value={text}
        onChange={(e) => setText(e.target.value)}
        aria-invalid={parseError ? true : undefined}
        aria-describedby={parseError ? "rule-json-error" : undefined}
      />
      {parseError && (
        <p id="rule-json-error" className="field-error">
          {parseError}
        </p>
      )}
      <FormError error={error} />
      <div className="actions">
        <button type="submit">Save rule</button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function Rules() {
  const { can } = useAuth();
  const rules = useResource(() => call<{ defaults: boolean; rules: AlertRule[] }>("alerting", api.alerting.GET("/v1/alert-rules")), []);
  const [editing, setEditing] = useState<AlertRule | "new" | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  async function remove(id: string) {
    setError(null);
    try {
      await call("alerting", api.alerting.DELETE("/v1/alert-rules/{rule_id}", { params: { path: { rule_id: id } } }));
      rules.reload();
    } catch (e) {
      setError(asApiError(e));
    }
  }

  const done = () => {
    setEditing(null);
    rules.reload();
  };
  return (
    <>
      <h2>Rules</h2>
      {can("write") && editing === null && (
        <button type="button" onClick={() => setEditing("new")}>
          New rule
        </button>
      )}
      {editing !== null && <RuleEditor rule={editing === "new" ? null : editing} onDone={done} onCancel={() => setEditing(null)} />}
      <FormError error={error} />
      <Show r={rules} what="alert rules" isEmpty={(r) => r.rules.length === 0} empty="No rule: no alert fires in this tenant.">
        {(d) => (
          <>
            {d.defaults && <p className="muted">These are the default rules; the first change makes them this tenant's own.</p>}
            <table className="grid">
              <thead>
                <tr>
                  <th scope="col">Rule</th>
                  <th scope="col">Condition</th>
                  <th scope="col">Model</th>
                  <th scope="col">Severity</th>
                  <th scope="col">Enabled</th>
                  {can("write") && <th scope="col">Actions</th>}
                </tr>
              </thead>
              <tbody>
                {d.rules.map((r) => (
                  <tr key={r.id}>
                    <th scope="row">
                      {r.name} <span className="muted">({r.id})</span>
                    </th>
                    <td>
                      <code>
                        {r.condition.metric}
                        {r.condition.feature ? `[${r.condition.feature}]` : ""} {r.condition.op} {r.condition.value}
                      </code>
                      {r.for_windows > 1 && ` for ${r.for_windows} windows`}
                    </td>
                    <td>{r.model_id ?? "every model"}</td>
                    <td>{r.severity}</td>
                    <td>{r.enabled ? "yes" : "no"}</td>
                    {can("write") && (
                      <td className="actions">
                        <button type="button" onClick={() => setEditing(r)} aria-label={`Edit rule ${r.id}`}>
                          Edit
                        </button>
                        <button type="button" className="secondary" onClick={() => void remove(r.id)} aria-label={`Delete rule ${r.id}`}>
                          Delete
                        </button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Show>
    </>
  );
}
