import "@testing-library/jest-dom/vitest";
import { cleanup, configure } from "@testing-library/react";
import { afterEach, vi } from "vitest";
import { setSession } from "../api/http";

// a loaded CI machine (2 cores shared) is slow to import lazy views the first time
configure({ asyncUtilTimeout: 20_000 });

afterEach(() => {
  cleanup();
  setSession(null);
  sessionStorage.clear();
  localStorage.clear();
  vi.unstubAllGlobals();
});
