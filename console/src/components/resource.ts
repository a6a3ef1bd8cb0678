import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "../api/http";

export type Resource<T> =
  | { state: "loading"; data?: undefined; error?: undefined; reload: () => void }
  | { state: "error"; data?: undefined; error: ApiError; reload: () => void }
  | { state: "ready"; data: T; error?: undefined; reload: () => void };

export function asApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError(0, String(e), "console");
}

/** Load `fn` now and on `reload()` (and every `everyMs` when given), keeping the last data
 * while a refresh is under way. */
export function useResource<T>(fn: () => Promise<T>, deps: unknown[], everyMs?: number): Resource<T> {
  const [res, setRes] = useState<{ state: "loading" | "error" | "ready"; data?: T; error?: ApiError }>({
    state: "loading",
  });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    let live = true;
    fnRef
      .current()
      .then((data) => live && setRes({ state: "ready", data }))
      .catch((e: unknown) => live && setRes({ state: "error", error: asApiError(e) }));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  useEffect(() => {
    if (!everyMs) return;
    const t = setInterval(reload, everyMs);
    return () => clearInterval(t);
  }, [everyMs, reload]);
  return { ...res, reload } as Resource<T>;
}
