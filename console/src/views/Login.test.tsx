import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { browser } from "../auth/AuthContext";
import { ADMIN_ME, fakeApi, fakeStream, json } from "../test/fakeApi";
import { renderApp } from "../test/render";

const GRANT = {
  access_token: "tok-abc",
  token_type: "Bearer",
  expires_at: Math.floor(Date.now() / 1000) + 900,
  expires_in: 900,
  refresh_token: "ref-abc",
  session_id: "s-1",
  role: "admin",
  mfa_enabled: true,
};

describe("login", () => {
  it("asks for the TOTP code the API requires, then logs in and sends the token", async () => {
    const live = fakeStream();
    const { seen } = fakeApi({
      "GET /api/ingestion/v1/auth/oidc/config": () => json({ enabled: false, login_url: "/v1/auth/oidc/login" }),
      "POST /api/ingestion/v1/auth/login": (_req, body) => {
        const b = JSON.parse(body) as { totp?: string };
        if (!b.totp) return json({ detail: "a TOTP code (totp) or a backup code (backup_code) is required" }, 401);
        return b.totp === "123456" ? json(GRANT) : json({ detail: "invalid credentials" }, 401);
      },
      "GET /api/ingestion/v1/auth/me": (req) =>
        req.headers.get("Authorization") === "Bearer tok-abc" ? json(ADMIN_ME) : json({ detail: "no" }, 401),
      "GET /api/ingestion/v1/models": () => json([]),
      "GET /api/alerting/v1/alerts": () => json([]),
      "GET /api/live": () => live.response(),
    });
    const user = userEvent.setup();
    renderApp("/");
    expect(await screen.findByRole("heading", { name: "Log in" })).toBeInTheDocument();
    await user.type(screen.getByLabelText("Tenant"), "acme");
    await user.type(screen.getByLabelText("User name"), "alice");
    await user.type(screen.getByLabelText("Password"), "a long passphrase");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("two-factor authentication");
    expect(screen.getByLabelText("TOTP code")).toHaveFocus();

    await user.type(screen.getByLabelText("TOTP code"), "123456");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("heading", { name: "Fleet" })).toBeInTheDocument();
    expect(screen.getByText("No models are registered in this tenant yet.")).toBeInTheDocument();

    const logins = seen.filter((s) => s.path === "/api/ingestion/v1/auth/login").map((s) => JSON.parse(s.body) as Record<string, string>);
    expect(logins).toEqual([
      { tenant: "acme", username: "alice", password: "a long passphrase" },
      { tenant: "acme", username: "alice", password: "a long passphrase", totp: "123456" },
    ]);
    const models = seen.find((s) => s.path === "/api/ingestion/v1/models");
    expect(models?.headers.get("Authorization")).toBe("Bearer tok-abc");
    expect(JSON.parse(sessionStorage.getItem("driftline.session") ?? "{}")).toMatchObject({ accessToken: "tok-abc" });
  });

  it("says the credentials are wrong without saying which", async () => {
    fakeApi({
      "POST /api/ingestion/v1/auth/login": () => json({ detail: "invalid credentials" }, 401),
    });
    const user = userEvent.setup();
    renderApp("/login");
    await user.type(await screen.findByLabelText("Tenant"), "acme");
    await user.type(screen.getByLabelText("User name"), "alice");
    await user.type(screen.getByLabelText("Password"), "wrong");
    await user.type(screen.getByLabelText("TOTP code"), "000000");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("wrong");
    expect(screen.getByRole("heading", { name: "Log in" })).toBeInTheDocument();
  });

  it("shows the SSO button when the identity provider is configured", async () => {
    fakeApi({
      "GET /api/ingestion/v1/auth/oidc/config": () => json({ enabled: true, login_url: "/v1/auth/oidc/login" }),
    });
    renderApp("/login");
    const sso = await screen.findByRole("link", { name: "Sign in with SSO" });
    expect(sso.getAttribute("href")).toMatch(/\/api\/ingestion\/v1\/auth\/oidc\/login\?return_to=/);
  });

  it("refreshes an expired token once and retries the call", async () => {
    sessionStorage.clear();
    const { setSession } = await import("../api/http");
    setSession({ accessToken: "old", refreshToken: "ref-old", expiresAt: 0 });
    const live = fakeStream();
    const { seen } = fakeApi({
      "POST /api/ingestion/v1/auth/refresh": () => json({ ...GRANT, access_token: "new" }),
      "GET /api/ingestion/v1/auth/me": (req) =>
        req.headers.get("Authorization") === "Bearer new" ? json(ADMIN_ME) : json({ detail: "expired" }, 401),
      "GET /api/ingestion/v1/models": () => json([]),
      "GET /api/alerting/v1/alerts": () => json([]),
      "GET /api/live": () => live.response(),
    });
    renderApp("/");
    expect(await screen.findByRole("heading", { name: "Fleet" })).toBeInTheDocument();
    await waitFor(() => expect(seen.filter((s) => s.path.endsWith("/auth/refresh"))).toHaveLength(1));
  });
});

describe("required MFA", () => {
  it("enrols TOTP with the login's enrolment token when the role requires it, then logs in with a code", async () => {
    const live = fakeStream();
    const { seen } = fakeApi({
      "POST /api/ingestion/v1/auth/login": (_req, body) => {
        const b = JSON.parse(body) as { totp?: string };
        if (b.totp === "654321") return json(GRANT);
        return new Response(JSON.stringify({ detail: "role 'admin' requires multi-factor authentication: enrol TOTP first" }), {
          status: 403,
          headers: { "Content-Type": "application/problem+json", "X-MFA-Enrollment-Token": "dle_abc" },
        });
      },
      "POST /api/ingestion/v1/auth/mfa/required/enroll": () => json({ secret: "JBSWY3DPEHPK3PXP", otpauth_uri: "otpauth://x", qr_png_base64: "iVBORw0KGgo=" }),
      "POST /api/ingestion/v1/auth/mfa/required/confirm": () => json({ mfa_enabled: true, backup_codes: ["abcde-fghij"] }),
      "GET /api/ingestion/v1/auth/me": () => json(ADMIN_ME),
      "GET /api/ingestion/v1/models": () => json([]),
      "GET /api/alerting/v1/alerts": () => json([]),
      "GET /api/live": () => live.response(),
    });
    const user = userEvent.setup();
    renderApp("/login");
    await user.type(await screen.findByLabelText("Tenant"), "acme");
    await user.type(screen.getByLabelText("User name"), "alice");
    await user.type(screen.getByLabelText("Password"), "a long passphrase");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("heading", { name: "Set up two-factor authentication" })).toBeInTheDocument();
    expect(screen.getByText("JBSWY3DPEHPK3PXP")).toBeInTheDocument();
    await user.type(screen.getByLabelText("Code from the app"), "123456");
    await user.click(screen.getByRole("button", { name: "Enable two-factor authentication" }));
    expect(await screen.findByText("abcde-fghij")).toBeInTheDocument();
    const confirm = seen.find((s) => s.path.endsWith("/mfa/required/confirm"));
    expect(JSON.parse(confirm?.body ?? "{}")).toEqual({ enrollment_token: "dle_abc", code: "123456" });
    await user.click(screen.getByRole("button", { name: "Log in with a code" }));
    await user.type(screen.getByLabelText("TOTP code"), "654321");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("heading", { name: "Fleet" })).toBeInTheDocument();
  });
});

describe("logout", () => {
  const routes = (live: ReturnType<typeof fakeStream>) => ({
    "GET /api/ingestion/v1/auth/oidc/config": () =>
      json({ enabled: true, login_url: "/v1/auth/oidc/login", issuer: "https://idp.test", logout_url: "/v1/auth/oidc/logout" }),
    "GET /api/ingestion/v1/auth/me": () => json(ADMIN_ME),
    "POST /api/ingestion/v1/auth/logout": () => new Response(null, { status: 204 }),
    "POST /api/ingestion/v1/auth/login": () => json(GRANT),
    "GET /api/ingestion/v1/models": () => json([]),
    "GET /api/alerting/v1/alerts": () => json([]),
    "GET /api/live": () => live.response(),
  });

  it("of a single sign-on session ends Driftline's, then signs out at the identity provider", async () => {
    const { seen } = fakeApi(routes(fakeStream()));
    const assign = vi.spyOn(browser, "assign").mockImplementation(() => undefined);
    const exp = Math.floor(Date.now() / 1000) + 900;
    window.location.hash = `#access_token=tok-sso&refresh_token=ref-sso&session_id=s-9&expires_at=${exp}&role=admin&tenant_id=acme`;
    const user = userEvent.setup();
    renderApp("/login");
    expect(await screen.findByRole("heading", { name: "Fleet" })).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Log out" }));
    await waitFor(() => expect(assign).toHaveBeenCalledTimes(1));
    const logout = seen.find((s) => s.method === "POST" && s.path === "/api/ingestion/v1/auth/logout");
    expect(logout?.headers.get("Authorization")).toBe("Bearer tok-sso");
    const to = new URL(String(assign.mock.calls[0]?.[0]));
    expect(to.pathname).toBe("/api/ingestion/v1/auth/oidc/logout");
    expect(to.searchParams.get("return_to")).toBe(`${window.location.origin}/login`);
    expect(sessionStorage.getItem("driftline.session")).toBeNull();
    assign.mockRestore();
  });

  it("of a password session does not go to the identity provider", async () => {
    const { seen } = fakeApi(routes(fakeStream()));
    const assign = vi.spyOn(browser, "assign").mockImplementation(() => undefined);
    const user = userEvent.setup();
    renderApp("/login");
    await user.type(await screen.findByLabelText("Tenant"), "acme");
    await user.type(screen.getByLabelText("User name"), "alice");
    await user.type(screen.getByLabelText("Password"), "a long passphrase");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("heading", { name: "Fleet" })).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Log out" }));
    expect(await screen.findByRole("heading", { name: "Log in" })).toBeInTheDocument();
    expect(seen.some((s) => s.method === "POST" && s.path === "/api/ingestion/v1/auth/logout")).toBe(true);
    expect(assign).not.toHaveBeenCalled();
    assign.mockRestore();
  });
});
