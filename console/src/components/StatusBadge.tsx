import type { HealthStatus } from "../live/store";

const ICON: Record<HealthStatus, string> = {
  drifting: "▲",
  degraded: "◆",
  alerting: "!",
  healthy: "●",
  "no data": "○",
};

/** The status in words (and a shape), not by colour alone. */
export function StatusBadge({ status, why }: { status: HealthStatus; why?: string }) {
  return (
    <span className={`badge badge-${status.replace(" ", "-")}`} title={why}>
      <span aria-hidden="true">{ICON[status]} </span>
      {status}
    </span>
  );
}
