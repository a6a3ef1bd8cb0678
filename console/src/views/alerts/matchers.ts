import type { Matcher } from "../../api/types";

const RE = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$/;

/** One matcher in Alertmanager's syntax (`name="value"`, `=~` regex, `!=`, `!~`). */
export function parseMatcher(text: string): Matcher | string {
  const m = RE.exec(text);
  if (!m) return `not a matcher: ${text.trim()} (write name="value", name=~"regex", name!="value")`;
  const name = m[1] ?? "";
  const op = (m[2] ?? "=") as Matcher["op"];
  const value = (m[3] ?? "").replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
  if (op === "=~" || op === "!~") {
    try {
      new RegExp(value);
    } catch (e) {
      return `${name}: not a regular expression (${String(e)})`;
    }
  }
  return { name, op, value };
}

export function matcherText(m: Matcher): string {
  const v = m.value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  return `${m.name}${m.op}"${v}"`;
}

/** The labels that name an alert (not its volatile ones) as matchers for a silence. */
export function matchersFor(labels: Record<string, string>): string[] {
  // not `version`: a silence of a model should outlast its next deployment
  const keep = ["alertname", "model", "feature", "segment"];
  const names = keep.filter((k) => labels[k] !== undefined && labels[k] !== "");
  return names.map((k) => matcherText({ name: k, op: "=", value: labels[k] ?? "" }));
}

export interface SilenceDraft {
  matchers: string;
  hours: string;
  comment: string;
}

export interface SilenceErrors {
  matchers?: string;
  hours?: string;
  comment?: string;
}

/** The form's own checks, before the API's. */
export function checkSilence(d: SilenceDraft): { errors: SilenceErrors; matchers: Matcher[] } {
  const errors: SilenceErrors = {};
  const lines = d.matchers
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const matchers: Matcher[] = [];
  const bad: string[] = [];
  for (const l of lines) {
    const m = parseMatcher(l);
    if (typeof m === "string") bad.push(m);
    else matchers.push(m);
  }
  if (lines.length === 0) errors.matchers = "Give at least one matcher, one per line.";
  else if (bad.length) errors.matchers = bad.join("; ");
  else if (matchers.every((m) => m.op === "=~" && (m.value === ".*" || m.value === ""))) {
    errors.matchers = "A silence must not match every alert.";
  }
  const h = Number(d.hours);
  if (!d.hours.trim() || !Number.isFinite(h) || h <= 0) errors.hours = "The duration must be a positive number of hours.";
  else if (h > 24 * 90) errors.hours = "At most 90 days (2160 hours).";
  if (!d.comment.trim()) errors.comment = "Say why (the comment is required).";
  else if (d.comment.length > 1000) errors.comment = "At most 1000 characters.";
  return { errors, matchers };
}
