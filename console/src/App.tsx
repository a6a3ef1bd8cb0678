import { lazy, Suspense, useEffect, useRef, type ReactNode } from "react";
import { BrowserRouter, Navigate, NavLink, Route, Routes, useLocation } from "react-router-dom";
import { AuthProvider, useAuth } from "./auth/AuthContext";
import { Loading } from "./components/States";
import { LiveProvider } from "./live/LiveContext";
import { AlertCenter } from "./views/alerts/AlertCenter";
import { Fleet } from "./views/Fleet";
import { Login } from "./views/Login";

const ModelView = lazy(() => import("./views/model/ModelView").then((m) => ({ default: m.ModelView })));
const Reports = lazy(() => import("./views/Reports").then((m) => ({ default: m.Reports })));
const Audit = lazy(() => import("./views/Audit").then((m) => ({ default: m.Audit })));
const Platform = lazy(() => import("./views/Platform").then((m) => ({ default: m.Platform })));
const Account = lazy(() => import("./views/Account").then((m) => ({ default: m.Account })));

function Shell({ children }: { children: ReactNode }) {
  const { me, logout, can } = useAuth();
  const loc = useLocation();
  const section = loc.pathname.split("/")[1] ?? "";
  const first = useRef(true);
  useEffect(() => {
    // a new section: keyboard and screen-reader users start at its content, not the menu
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById("main")?.focus();
  }, [section]);
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Driftline</span>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Fleet
          </NavLink>
          <NavLink to="/alerts">Alert center</NavLink>
          {can("audit") && <NavLink to="/reports">Reports</NavLink>}
          {can("audit") && <NavLink to="/audit">Audit</NavLink>}
          <NavLink to="/platform">Platform</NavLink>
        </nav>
        <span className="who">
          <NavLink to="/account" aria-label={`Account: ${me?.name ?? ""}`}>
            {me?.name}
          </NavLink>{" "}
          <span className="role-tag">{me?.role ?? me?.kind}</span> @ {me?.tenant_id}{" "}
          <button type="button" className="secondary" onClick={() => void logout()}>
            Log out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<Loading what="the view" />}>{children}</Suspense>
      </main>
    </>
  );
}

function Private() {
  const { status } = useAuth();
  const loc = useLocation();
  if (status === "loading") return <Loading what="your session" />;
  if (status === "anonymous") return <Navigate to="/login" replace state={{ from: loc.pathname + loc.search }} />;
  return (
    <LiveProvider>
      <Shell>
        <Routes>
          <Route path="/" element={<Fleet />} />
          <Route path="/alerts/*" element={<AlertCenter />} />
          <Route path="/models/:modelId/*" element={<ModelView />} />
          <Route path="/reports" element={<Reports />} />
          <Route path="/audit" element={<Audit />} />
          <Route path="/platform" element={<Platform />} />
          <Route path="/account" element={<Account />} />
          <Route path="*" element={<p>No such page.</p>} />
        </Routes>
      </Shell>
    </LiveProvider>
  );
}

export function Routed() {
  const { status } = useAuth();
  return (
    <Routes>
      <Route path="/login" element={status === "ready" ? <Navigate to="/" replace /> : <Login />} />
      <Route path="/*" element={<Private />} />
    </Routes>
  );
}

export function App() {
  return (
    <BrowserRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
      <AuthProvider>
        <Routed />
      </AuthProvider>
    </BrowserRouter>
  );
}
