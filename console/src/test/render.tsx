import { render } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { setSession } from "../api/http";
import { Routed } from "../App";
import { AuthProvider } from "../auth/AuthContext";

export function loggedIn(): void {
  setSession({ accessToken: "tok-1", refreshToken: "ref-1", expiresAt: Math.floor(Date.now() / 1000) + 900 });
}

export function renderApp(path: string) {
  return render(
    <AuthProvider>
      <MemoryRouter initialEntries={[path]} future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
        <Routed />
      </MemoryRouter>
    </AuthProvider>,
  );
}
