import type { LiveSnapshot } from "../live/store";

const TEXT = {
  connecting: "connecting to live updates…",
  open: "live",
  closed: "live updates reconnecting…",
  error: "live updates unavailable",
};

export function LiveIndicator({ snap }: { snap: LiveSnapshot }) {
  return (
    <p className={`live live-${snap.state}`} role="status" aria-live="polite">
      <span aria-hidden="true">{snap.state === "open" ? "● " : "○ "}</span>
      {TEXT[snap.state]}
      {snap.state !== "open" && snap.detail ? ` (${snap.detail})` : ""}
    </p>
  );
}
