import { createContext, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from "react";
import { api, call } from "../api/http";
import type { CurrentAlert } from "../api/types";
import { toRecord } from "./records";
import { followLive } from "./sse";
import { LiveStore, type LiveSnapshot } from "./store";

const Ctx = createContext<LiveStore | null>(null);

/** One /api/live connection for the whole app while someone is logged in. */
export function LiveProvider({ children, store: given }: { children: ReactNode; store?: LiveStore }) {
  const store = useMemo(() => given ?? new LiveStore(), [given]);
  useEffect(() => {
    const ctl = new AbortController();
    const seed = () =>
      call<CurrentAlert[]>("alerting", api.alerting.GET("/v1/alerts"))
        .then((a) => store.seedAlerts(a))
        .catch(() => {
          /* the Alert center says why; the fleet still shows live windows */
        });
    void seed();
    let opens = 0;
    void followLive({
      signal: ctl.signal,
      onState: (s, detail) => {
        store.setState(s, detail);
        // on a reconnection: what fired while the stream was away, the API has
        if (s === "open" && ++opens > 1) void seed();
      },
      onMessage: (m) => {
        const r = toRecord(m.event, m.data);
        if (r) store.add(r);
      },
    });
    return () => ctl.abort();
  }, [store]);
  return <Ctx.Provider value={store}>{children}</Ctx.Provider>;
}

export function useLiveStore(): LiveStore {
  const store = useContext(Ctx);
  if (!store) throw new Error("useLiveStore outside LiveProvider");
  return store;
}

export function useLive(): LiveSnapshot {
  const store = useContext(Ctx);
  if (!store) throw new Error("useLive outside LiveProvider");
  return useSyncExternalStore(store.subscribe, store.get);
}
