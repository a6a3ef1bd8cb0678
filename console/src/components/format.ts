export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { hour12: false });
}

export function pct(x: number | undefined | null): string {
  return x == null ? "—" : `${(x * 100).toFixed(0)}%`;
}

export function num(x: number | undefined | null, digits = 3): string {
  return x == null || Number.isNaN(x) ? "—" : Number(x.toFixed(digits)).toString();
}
