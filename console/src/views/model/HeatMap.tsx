import type { FeaturePoint } from "./history";

/** How far past its threshold a feature's window is, 0 to 1 (0.5 at the threshold). A
 * p-value test (KS, chi-squared, z) carries its significance level as the threshold, so its
 * ratio is level ÷ p-value; a distance test (Wasserstein, Jensen-Shannon, PSI) statistic ÷
 * threshold. The verdict bounds the shade: a drifted window is at least half dark, one that
 * did not drift stays below half, whatever the ratio says. */
export function severity(p: FeaturePoint): number {
  const ratio =
    p.p_value !== null && p.p_value >= 0 && p.threshold < 0.5
      ? p.p_value > 0
        ? p.threshold / p.p_value
        : 2
      : p.threshold > 0
        ? p.statistic / p.threshold
        : p.drifted
          ? 2
          : 0;
  const r = Math.min(Math.max(ratio, 0), 2) / 2;
  return p.drifted ? Math.max(r, 0.5) : Math.min(r, 0.45);
}

/** Drift per feature over time: one row per feature, one column per window; a cell's shade
 * is its statistic over its threshold (capped at 2), a drifted cell also carries a "×" so
 * the map reads without colour. The table below it says the same in text. */
export function HeatMap({ points }: { points: FeaturePoint[] }) {
  const times = [...new Set(points.map((p) => p.time))].sort();
  const features = [...new Set(points.map((p) => p.feature))].sort((a, b) =>
    a === "prediction" ? 1 : b === "prediction" ? -1 : a.localeCompare(b),
  );
  const at = new Map(points.map((p) => [`${p.feature}\u0000${p.time}`, p]));
  const cell = 22;
  const left = 130;
  const top = 8;
  const shown = times.slice(-60);
  const width = left + shown.length * cell + 10;
  const height = top + features.length * cell + 30;
  const shade = (p: FeaturePoint) => {
    const r = severity(p);
    // from #e8f1fb (calm) to #8b1010 (far past the threshold)
    const mix = (a: number, b: number) => Math.round(a + (b - a) * r);
    return `rgb(${mix(232, 139)},${mix(241, 16)},${mix(251, 16)})`;
  };
  return (
    <figure className="heatmap">
      <svg width={width} height={height} role="img" aria-label={`Drift per feature over the last ${shown.length} windows; drifted cells are marked with ×`}>
        {features.map((f, i) => (
          <text key={f} x={left - 6} y={top + i * cell + cell * 0.7} textAnchor="end" fontSize="12" fill="#1a1a1a">
            {f.length > 18 ? `${f.slice(0, 17)}…` : f}
          </text>
        ))}
        {shown.map((t, j) =>
          features.map((f, i) => {
            const p = at.get(`${f}\u0000${t}`);
            if (!p) return null;
            const x = left + j * cell;
            const y = top + i * cell;
            return (
              <g key={`${f}-${t}`}>
                <rect x={x} y={y} width={cell - 2} height={cell - 2} fill={shade(p)} stroke="#9aa4b2" strokeWidth="0.5">
                  <title>{`${f} at ${new Date(t).toLocaleString()}: ${p.statistic.toFixed(3)} vs threshold ${p.threshold.toFixed(3)}${p.drifted ? " (drifted)" : ""}`}</title>
                </rect>
                {p.drifted && (
                  <text x={x + (cell - 2) / 2} y={y + cell * 0.68} textAnchor="middle" fontSize="13" fontWeight="700" fill="#fff" aria-hidden="true">
                    ×
                  </text>
                )}
              </g>
            );
          }),
        )}
        {shown.length > 0 && (
          <>
            <text x={left} y={height - 8} fontSize="11" fill="#4a4a4a">
              {new Date(shown[0] ?? "").toLocaleTimeString()}
            </text>
            <text x={width - 10} y={height - 8} fontSize="11" fill="#4a4a4a" textAnchor="end">
              {new Date(shown[shown.length - 1] ?? "").toLocaleTimeString()}
            </text>
          </>
        )}
      </svg>
      <figcaption className="muted">Shade: how far past its threshold (statistic ÷ threshold; for p-value tests, level ÷ p-value), white 0, dark red ≥ 2; × marks a drifted feature.</figcaption>
      <details>
        <summary>Drift per feature as a table</summary>
        <table className="grid">
          <thead>
            <tr>
              <th scope="col">Feature</th>
              <th scope="col">Windows</th>
              <th scope="col">Drifted in</th>
              <th scope="col">Latest statistic / threshold</th>
            </tr>
          </thead>
          <tbody>
            {features.map((f) => {
              const mine = points.filter((p) => p.feature === f);
              const lastP = mine[mine.length - 1];
              return (
                <tr key={f}>
                  <th scope="row">{f}</th>
                  <td>{mine.length}</td>
                  <td>{mine.filter((p) => p.drifted).length}</td>
                  <td>{lastP ? `${lastP.statistic.toFixed(3)} / ${lastP.threshold.toFixed(3)}${lastP.drifted ? " (drifted)" : ""}` : "—"}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
