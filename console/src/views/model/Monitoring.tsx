import { useState, type FormEvent } from "react";
import { raw, type ApiError } from "../../api/http";
import type { Model } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { asApiError } from "../../components/resource";
import { FormError } from "../../components/States";

export function Monitoring({ model, onSaved }: { model: Model; onSaved: () => void }) {
  const { can } = useAuth();
  const [text, setText] = useState(JSON.stringify(model.monitoring, null, 2));
  const [error, setError] = useState<ApiError | null>(null);
  const [parseError, setParseError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);

  async function save(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setParseError(null);
    setSaved(false);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      setParseError(`Not valid JSON: ${String(err)}`);
      return;
    }
    try {
      await raw("ingestion", `/v1/models/${encodeURIComponent(model.id)}/monitoring`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      setSaved(true);
      onSaved();
    } catch (err) {
      setError(asApiError(err));
    }
  }

  if (!can("write")) {
    return (
      <>
        <h2>Monitoring configuration</h2>
        <pre className="card">{JSON.stringify(model.monitoring, null, 2)}</pre>
      </>
    );
  }
  return (
    <form onSubmit={save} aria-labelledby="monitoring-title">
      <h2 id="monitoring-title">Monitoring configuration</h2>
      <p className="muted">Window, per-feature tests and thresholds, segments, the dataset-drift share, label TTL and concept-drift detector. The registry checks it against the model's schema.</p>
      <label htmlFor="monitoring-json">Monitoring (JSON)</label>
      <textarea
        id="monitoring-json"
        className="code"
        rows={18}
        spellCheck={false}
        value={text}
        onChange={(e) => setText(e.target.value)}
        aria-invalid={parseError ? true : undefined}
        aria-describedby={parseError ? "monitoring-json-error" : undefined}
      />
      {parseError && (
        <p id="monitoring-json-error" className="field-error">
          {parseError}
        </p>
      )}
      <FormError error={error} />
      {saved && (
        <p role="status" className="ok">
          Saved.
        </p>
      )}
      <div className="actions">
        <button type="submit">Save monitoring</button>
      </div>
    </form>
  );
}
