/// <reference types="vitest" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies /api to the console service (services/console), which proxies each
// service; DRIFTLINE_CONSOLE_URL points elsewhere.
const consoleUrl = process.env.DRIFTLINE_CONSOLE_URL ?? "http://127.0.0.1:8106";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", sourcemap: true, chunkSizeWarningLimit: 1200 },
  server: { proxy: { "/api": { target: consoleUrl, changeOrigin: false } } },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    testTimeout: 30_000, // 2 shared cores in CI: user-event typing and lazy views are slow there
  },
});
