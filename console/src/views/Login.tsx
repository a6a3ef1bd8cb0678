import { useEffect, useRef, useState, type FormEvent } from "react";
import { useLocation, useNavigate } from "react-router-dom";
import { ApiError, apiUrl, raw } from "../api/http";
import { useAuth } from "../auth/AuthContext";
import { asApiError } from "../components/resource";

const ENROLLMENT_HEADER = "X-MFA-Enrollment-Token";

interface Enrolment {
  token: string;
  secret?: string;
  qr_png_base64?: string;
  codes?: string[];
}

interface OidcConfig {
  enabled: boolean;
  login_url: string;
}

/** The fragment the SSO callback returns with (#access_token=...&refresh_token=...). */
function ssoReturn(hash: string): { token: string; refresh: string | null; exp: number } | { error: string } | null {
  if (!hash.startsWith("#")) return null;
  const p = new URLSearchParams(hash.slice(1));
  if (p.get("error")) return { error: `${p.get("error")}: ${p.get("error_description") ?? "SSO failed"}` };
  const token = p.get("access_token");
  if (!token) return null;
  return { token, refresh: p.get("refresh_token"), exp: Number(p.get("expires_at") ?? 0) };
}

export function Login() {
  const { login, adopt } = useAuth();
  const nav = useNavigate();
  const loc = useLocation();
  const [tenant, setTenant] = useState(() => localStorage.getItem("driftline.tenant") ?? "");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [backup, setBackup] = useState("");
  const [useBackup, setUseBackup] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [oidc, setOidc] = useState<OidcConfig | null>(null);
  const [enrol, setEnrol] = useState<Enrolment | null>(null);
  const [enrolCode, setEnrolCode] = useState("");
  const totpRef = useRef<HTMLInputElement>(null);
  const from = (loc.state as { from?: string } | null)?.from ?? "/";

  useEffect(() => {
    const back = ssoReturn(window.location.hash);
    if (!back) return;
    history.replaceState(null, "", window.location.pathname); // the tokens leave the URL
    if ("error" in back) setError(back.error);
    else void adopt(back.token, back.refresh, back.exp).then(() => nav("/", { replace: true }));
  }, [adopt, nav]);

  useEffect(() => {
    raw("ingestion", "/v1/auth/oidc/config")
      .then((r) => r.json() as Promise<OidcConfig>)
      .then(setOidc)
      .catch(() => setOidc(null)); // no SSO route (or it is down): password login only
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      await login({ tenant, username, password, totp: useBackup ? "" : totp, backupCode: useBackup ? backup : "" });
      localStorage.setItem("driftline.tenant", tenant.trim());
      nav(from, { replace: true });
    } catch (err) {
      const a = asApiError(err);
      const enrolment = a.status === 403 ? a.headers.get(ENROLLMENT_HEADER) : null;
      if (enrolment) {
        await startEnrolment(enrolment);
      } else if (a.status === 401 && /TOTP code|backup code/.test(a.message)) {
        setError("This account has two-factor authentication: enter the 6-digit code from your authenticator app.");
        totpRef.current?.focus();
      } else if (a.status === 401) {
        setError("The tenant, user name, password or code is wrong (or the code was used already).");
      } else if (a.status === 429) {
        setError("Too many failed logins: wait a few minutes and try again.");
      } else if (a instanceof ApiError && a.problems.length) {
        setError(a.problems.map((p) => `${p.field}: ${p.msg}`).join("; "));
      } else {
        setError(a.message);
      }
    } finally {
      setBusy(false);
    }
  }

  /** A role that requires MFA, and none set up yet: the login's token enrols TOTP first. */
  async function startEnrolment(token: string) {
    try {
      const res = await raw("ingestion", "/v1/auth/mfa/required/enroll", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ enrollment_token: token }),
      });
      const got = (await res.json()) as { secret: string; qr_png_base64: string };
      setEnrol({ token, secret: got.secret, qr_png_base64: got.qr_png_base64 });
    } catch (e) {
      setError(asApiError(e).message);
    }
  }

  async function confirmEnrolment(e: FormEvent) {
    e.preventDefault();
    if (!enrol) return;
    setError(null);
    try {
      const res = await raw("ingestion", "/v1/auth/mfa/required/confirm", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ enrollment_token: enrol.token, code: enrolCode.trim() }),
      });
      const got = (await res.json()) as { backup_codes: string[] };
      setEnrol({ token: enrol.token, codes: got.backup_codes });
      setTotp("");
    } catch (err) {
      setError(asApiError(err).message);
    }
  }

  if (enrol) {
    return (
      <main className="login" id="main">
        <h1>Driftline console</h1>
        {enrol.codes ? (
          <div className="card" role="status">
            <h2>Two-factor authentication is on</h2>
            <p>Keep these backup codes somewhere safe; each works once:</p>
            <ul>
              {enrol.codes.map((c) => (
                <li key={c}>
                  <code>{c}</code>
                </li>
              ))}
            </ul>
            <button type="button" onClick={() => setEnrol(null)}>
              Log in with a code
            </button>
          </div>
        ) : (
          <form className="card" onSubmit={confirmEnrolment} aria-labelledby="enrol-title">
            <h2 id="enrol-title">Set up two-factor authentication</h2>
            <p>Your role requires it. Scan the code with an authenticator app, then type the 6 digits it shows.</p>
            {enrol.qr_png_base64 && <img src={`data:image/png;base64,${enrol.qr_png_base64}`} alt="QR code of the TOTP secret" width={180} height={180} />}
            <p>
              Or enter the secret: <code>{enrol.secret}</code>
            </p>
            <label htmlFor="enrol-code">Code from the app</label>
            <input id="enrol-code" inputMode="numeric" autoComplete="one-time-code" value={enrolCode} onChange={(e) => setEnrolCode(e.target.value)} />
            {error && (
              <p className="state error" role="alert">
                {error}
              </p>
            )}
            <div className="actions">
              <button type="submit">Enable two-factor authentication</button>
            </div>
          </form>
        )}
      </main>
    );
  }

  const ssoHref = oidc?.enabled
    ? `${apiUrl("ingestion", oidc.login_url)}?${new URLSearchParams({
        return_to: `${window.location.origin}/login`,
        ...(tenant.trim() ? { tenant: tenant.trim() } : {}),
      }).toString()}`
    : null;

  return (
    <main className="login" id="main">
      <h1>Driftline console</h1>
      <form onSubmit={submit} aria-labelledby="login-title" className="card">
        <h2 id="login-title">Log in</h2>
        <label htmlFor="tenant">Tenant</label>
        <input id="tenant" name="tenant" autoComplete="organization" required value={tenant} onChange={(e) => setTenant(e.target.value)} />
        <label htmlFor="username">User name</label>
        <input id="username" name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
        <label htmlFor="password">Password</label>
        <input id="password" name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        {useBackup ? (
          <>
            <label htmlFor="backup">Backup code</label>
            <input id="backup" name="backup" autoComplete="off" value={backup} onChange={(e) => setBackup(e.target.value)} />
          </>
        ) : (
          <>
            <label htmlFor="totp">TOTP code</label>
            <input
              id="totp"
              name="totp"
              ref={totpRef}
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="\s*\d{6}\s*"
              aria-describedby="totp-hint"
              value={totp}
              onChange={(e) => setTotp(e.target.value)}
            />
            <small id="totp-hint">6 digits from your authenticator app; leave empty if two-factor authentication is not set up.</small>
          </>
        )}
        <button type="button" className="link" onClick={() => setUseBackup(!useBackup)}>
          {useBackup ? "Use a TOTP code instead" : "Use a backup code instead"}
        </button>
        {error && (
          <p className="state error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
        {ssoHref && (
          <p>
            <a className="button secondary" href={ssoHref}>
              Sign in with SSO
            </a>
          </p>
        )}
      </form>
    </main>
  );
}
