import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, Tooltip, XAxis, YAxis } from "recharts";
import type { BinPoint } from "./history";

const time = (t: string) => new Date(t).toLocaleTimeString(undefined, { hour12: false });

/** Reference vs current share per bin (the current bars only where a window's bins exist). */
export function Distribution({ bins, feature }: { bins: BinPoint[]; feature: string }) {
  const hasCurrent = bins.some((b) => b.current_share > 0);
  return (
    <figure>
      <BarChart width={680} height={260} data={bins} role="img" aria-label={`Distribution of ${feature}: reference${hasCurrent ? " and current" : ""} share per bin`}>
        <CartesianGrid strokeDasharray="3 3" />
        <XAxis dataKey="bin" fontSize={11} interval={0} angle={-20} textAnchor="end" height={50} />
        <YAxis tickFormatter={(v: number) => `${Math.round(v * 100)}%`} fontSize={11} />
        <Tooltip formatter={(v: number) => `${(v * 100).toFixed(1)}%`} />
        <Legend />
        <Bar dataKey="reference_share" name="reference" fill="#5b7fb5" isAnimationActive={false} />
        {hasCurrent && <Bar dataKey="current_share" name="current" fill="#b4472e" isAnimationActive={false} />}
      </BarChart>
    </figure>
  );
}

export interface Series {
  key: string;
  name: string;
  color: string;
}

export function TimeLines({ data, series, label, domain }: { data: Record<string, unknown>[]; series: Series[]; label: string; domain?: [number, number] }) {
  return (
    <figure>
      <LineChart width={680} height={240} data={data} role="img" aria-label={label}>
        <CartesianGrid strokeDasharray="3 3" />
        <XAxis dataKey="time" tickFormatter={time} fontSize={11} />
        <YAxis fontSize={11} domain={domain ?? ["auto", "auto"]} />
        <Tooltip labelFormatter={(t: string) => new Date(t).toLocaleString()} />
        <Legend />
        {series.map((s) => (
          <Line key={s.key} dataKey={s.key} name={s.name} stroke={s.color} dot={{ r: 2 }} strokeWidth={2} isAnimationActive={false} connectNulls />
        ))}
      </LineChart>
    </figure>
  );
}

export const PALETTE = ["#0b4fa8", "#b4472e", "#2f7d32", "#7b3fa0", "#a06a00", "#006d77", "#5c5c5c"];
