import { useState, type FormEvent } from "react";
import { raw, type ApiError } from "../../api/http";
import { asApiError } from "../../components/resource";
import { FormError } from "../../components/States";
import { checkSilence, type SilenceErrors } from "./matchers";

export function SilenceForm({ initial, onDone, onCancel }: { initial: string; onDone: () => void; onCancel: () => void }) {
  const [matchers, setMatchers] = useState(initial);
  const [hours, setHours] = useState("2");
  const [comment, setComment] = useState("");
  const [errors, setErrors] = useState<SilenceErrors>({});
  const [apiError, setApiError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setApiError(null);
    const checked = checkSilence({ matchers, hours, comment });
    setErrors(checked.errors);
    if (Object.keys(checked.errors).length) return;
    setBusy(true);
    try {
      const ends = new Date(Date.now() + Number(hours) * 3600_000).toISOString();
      // the route reads JSON or YAML itself, so its body is not in the OpenAPI document
      await raw("alerting", "/v1/silences", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ matchers: checked.matchers, ends_at: ends, comment: comment.trim() }),
      });
      onDone();
    } catch (err) {
      setApiError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }

  const described = (k: keyof SilenceErrors) => (errors[k] ? { "aria-invalid": true, "aria-describedby": `silence-${k}-error` } : {});
  return (
    <form className="card" onSubmit={submit} aria-labelledby="silence-form-title" noValidate>
      <h3 id="silence-form-title">New silence</h3>
      <label htmlFor="silence-matchers">Matchers (one per line)</label>
      <textarea id="silence-matchers" rows={4} value={matchers} onChange={(e) => setMatchers(e.target.value)} {...described("matchers")} />
      {errors.matchers && (
        <p id="silence-matchers-error" className="field-error">
          {errors.matchers}
        </p>
      )}
      <label htmlFor="silence-hours">Duration (hours)</label>
      <input id="silence-hours" inputMode="decimal" value={hours} onChange={(e) => setHours(e.target.value)} {...described("hours")} />
      {errors.hours && (
        <p id="silence-hours-error" className="field-error">
          {errors.hours}
        </p>
      )}
      <label htmlFor="silence-comment">Comment</label>
      <input id="silence-comment" value={comment} onChange={(e) => setComment(e.target.value)} {...described("comment")} />
      {errors.comment && (
        <p id="silence-comment-error" className="field-error">
          {errors.comment}
        </p>
      )}
      <FormError error={apiError} />
      <div className="actions">
        <button type="submit" disabled={busy}>
          Create silence
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
