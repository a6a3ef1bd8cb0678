import type { FeaturePoint } from "./history";

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
    const r = p.threshold > 0 ? Math.min(p.statistic / p.threshold, 2) / 2 : p.drifted ? 1 : 0;
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
      <figcaption className="muted">Shade: statistic ÷ threshold (white 0, dark red ≥ 2); × marks a drifted feature.</figcaption>
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
