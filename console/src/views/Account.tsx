import { useState, type FormEvent } from "react";
import { api, call, type ApiError } from "../api/http";
import { useAuth } from "../auth/AuthContext";
import { asApiError } from "../components/resource";
import { FormError } from "../components/States";

interface Enrolment {
  otpauth_uri: string;
  secret: string;
  qr_png_base64: string;
}

/** Who is logged in, and setting up two-factor authentication (TOTP). */
export function Account() {
  const { me, mfaEnabled } = useAuth();
  const [enrol, setEnrol] = useState<Enrolment | null>(null);
  const [code, setCode] = useState("");
  const [codes, setCodes] = useState<string[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  async function start() {
    setError(null);
    try {
      setEnrol(await call<Enrolment>("ingestion", api.ingestion.POST("/v1/auth/mfa/enroll")));
    } catch (e) {
      setError(asApiError(e));
    }
  }

  async function confirm(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const r = await call<{ backup_codes: string[] }>("ingestion", api.ingestion.POST("/v1/auth/mfa/confirm", { body: { code: code.trim() } }));
      setCodes(r.backup_codes);
      setEnrol(null);
    } catch (err) {
      setError(asApiError(err));
    }
  }

  return (
    <section aria-labelledby="account-title">
      <h1 id="account-title">Account</h1>
      <dl className="facts card">
        <dt>Name</dt>
        <dd>{me?.name}</dd>
        <dt>Role</dt>
        <dd>{me?.role ?? me?.kind}</dd>
        <dt>Tenant</dt>
        <dd>{me?.tenant_id}</dd>
        <dt>Permissions</dt>
        <dd>{me?.permissions.join(", ")}</dd>
      </dl>
      <h2>Two-factor authentication</h2>
      {mfaEnabled === true && <p>Enabled for this account.</p>}
      {me?.kind === "user" && mfaEnabled !== true && !enrol && !codes && (
        <button type="button" onClick={() => void start()}>
          Set up two-factor authentication
        </button>
      )}
      {enrol && (
        <form className="card" onSubmit={confirm} aria-labelledby="mfa-title">
          <h3 id="mfa-title">Scan with an authenticator app</h3>
          <img src={`data:image/png;base64,${enrol.qr_png_base64}`} alt="QR code of the TOTP secret" width={180} height={180} />
          <p>
            Or enter the secret: <code>{enrol.secret}</code>
          </p>
          <label htmlFor="mfa-code">Code from the app</label>
          <input id="mfa-code" inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} />
          <div className="actions">
            <button type="submit">Enable</button>
          </div>
        </form>
      )}
      {codes && (
        <div className="card" role="status">
          <p>Two-factor authentication is on. Keep these backup codes somewhere safe; each works once:</p>
          <ul>
            {codes.map((c) => (
              <li key={c}>
                <code>{c}</code>
              </li>
            ))}
          </ul>
        </div>
      )}
      <FormError error={error} />
    </section>
  );
}
