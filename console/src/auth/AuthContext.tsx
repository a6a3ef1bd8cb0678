import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { api, apiUrl, call, getSession, onSession, raw, sessionFromGrant, setSession } from "../api/http";
import type { LoginGrant, Me, Permission } from "../api/types";

export interface LoginInput {
  tenant: string;
  username: string;
  password: string;
  totp?: string;
  backupCode?: string;
}

interface AuthValue {
  me: Me | null;
  status: "anonymous" | "loading" | "ready";
  mfaEnabled: boolean | null;
  login: (i: LoginInput) => Promise<void>;
  /** A session from elsewhere (the SSO return): the tokens of a grant. */
  adopt: (accessToken: string, refreshToken: string | null, expiresAt: number) => Promise<void>;
  logout: () => Promise<void>;
  can: (p: Permission) => boolean;
}

const Ctx = createContext<AuthValue | null>(null);

/** Set while the session came from single sign-on: logging out then signs out at the IdP too. */
const SSO_SESSION = "driftline.sso";

/** Where the browser goes (replaced in tests: jsdom does not navigate). */
export const browser = { assign: (url: string) => window.location.assign(url) };

/** After Driftline's logout of an SSO session: the IdP's end-session page (RP-initiated
 * logout, GET /v1/auth/oidc/logout), which returns to the login page. Without an IdP
 * logout (none configured, or unreachable) the Driftline session is ended all the same. */
async function signOutAtIdp(): Promise<void> {
  try {
    const cfg = (await (await raw("ingestion", "/v1/auth/oidc/config")).json()) as { logout_url?: string | null };
    if (!cfg.logout_url) return;
    const query = new URLSearchParams({ return_to: `${window.location.origin}/login` });
    browser.assign(`${apiUrl("ingestion", cfg.logout_url)}?${query.toString()}`);
  } catch {
    /* the IdP's session stays; Driftline's is over */
  }
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [status, setStatus] = useState<AuthValue["status"]>(getSession() ? "loading" : "anonymous");
  const [mfaEnabled, setMfa] = useState<boolean | null>(null);

  const loadMe = useCallback(async () => {
    setStatus("loading");
    try {
      setMe(await call<Me>("ingestion", api.ingestion.GET("/v1/auth/me")));
      setStatus("ready");
    } catch {
      setSession(null);
      setMe(null);
      setStatus("anonymous");
    }
  }, []);

  useEffect(() => {
    if (getSession()) void loadMe();
    return onSession((s) => {
      if (!s) {
        setMe(null);
        setStatus("anonymous");
      }
    });
  }, [loadMe]);

  const login = useCallback(
    async (i: LoginInput) => {
      const body: { tenant: string; username: string; password: string; totp?: string; backup_code?: string } = {
        tenant: i.tenant.trim(),
        username: i.username.trim(),
        password: i.password,
      };
      if (i.totp?.trim()) body.totp = i.totp.trim();
      if (i.backupCode?.trim()) body.backup_code = i.backupCode.trim();
      const grant = await call<LoginGrant>("ingestion", api.ingestion.POST("/v1/auth/login", { body }));
      sessionStorage.removeItem(SSO_SESSION);
      setSession(sessionFromGrant(grant));
      setMfa(grant.mfa_enabled);
      await loadMe();
    },
    [loadMe],
  );

  const adopt = useCallback(
    async (accessToken: string, refreshToken: string | null, expiresAt: number) => {
      sessionStorage.setItem(SSO_SESSION, "1");
      setSession({ accessToken, refreshToken, expiresAt });
      await loadMe();
    },
    [loadMe],
  );

  const logout = useCallback(async () => {
    const sso = sessionStorage.getItem(SSO_SESSION) === "1";
    sessionStorage.removeItem(SSO_SESSION);
    try {
      await call("ingestion", api.ingestion.POST("/v1/auth/logout"));
    } catch {
      /* the session ends here whatever the server says */
    }
    setSession(null);
    if (sso) await signOutAtIdp();
  }, []);

  const can = useCallback((p: Permission) => !!me?.permissions.includes(p), [me]);

  return (
    <Ctx.Provider value={{ me, status, mfaEnabled, login, adopt, logout, can }}>{children}</Ctx.Provider>
  );
}

export function useAuth(): AuthValue {
  const v = useContext(Ctx);
  if (!v) throw new Error("useAuth outside AuthProvider");
  return v;
}
