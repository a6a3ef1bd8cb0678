// The exact bytes the report signer signs (libs/driftline-contracts reportsign._signed_bytes):
// orjson.dumps(manifest without "signature" and "public_key", option=OPT_SORT_KEYS). JSON.parse
// and JSON.stringify cannot give them (numbers lose their spelling, keys sort by UTF-16
// units), so the manifest is parsed keeping each number's text and written out as orjson
// writes: no whitespace, keys in code-point order, strings with only `"`, `\` and control
// characters escaped (\b \t \n \f \r, else \u00xx), everything else as UTF-8.

export type JsonValue =
  | { t: "null" }
  | { t: "bool"; v: boolean }
  | { t: "num"; raw: string }
  | { t: "str"; v: string }
  | { t: "arr"; v: JsonValue[] }
  | { t: "obj"; v: [string, JsonValue][] };

export class JsonSyntaxError extends Error {}

export function parseJson(text: string): JsonValue {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i] ?? "")) i++;
  };
  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at character ${i}`);
  };
  const str = (): string => {
    i++; // opening quote
    let out = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) fail("unterminated string");
      if (c === '"') {
        i++;
        return out;
      }
      if (c === "\\") {
        const e = text[i + 1];
        i += 2;
        if (e === "u") {
          const hex = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
        } else {
          const map: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
          const m = e === undefined ? undefined : map[e];
          if (m === undefined) fail("bad escape");
          out += m;
        }
      } else {
        out += c;
        i++;
      }
    }
  };
  const value = (): JsonValue => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const v: [string, JsonValue][] = [];
      ws();
      if (text[i] === "}") {
        i++;
        return { t: "obj", v };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a key");
        const k = str();
        ws();
        if (text[i] !== ":") fail("expected :");
        i++;
        v.push([k, value()]);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return { t: "obj", v };
        } else fail("expected , or }");
      }
    }
    if (c === "[") {
      i++;
      const v: JsonValue[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return { t: "arr", v };
      }
      for (;;) {
        v.push(value());
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") {
          i++;
          return { t: "arr", v };
        } else fail("expected , or ]");
      }
    }
    if (c === '"') return { t: "str", v: str() };
    if (text.startsWith("true", i)) {
      i += 4;
      return { t: "bool", v: true };
    }
    if (text.startsWith("false", i)) {
      i += 5;
      return { t: "bool", v: false };
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return { t: "null" };
    }
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) return fail("unexpected character");
    i += m[0].length;
    return { t: "num", raw: m[0] };
  };
  const out = value();
  ws();
  if (i !== text.length) fail("trailing characters");
  return out;
}

function escape(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (c < 0x20) {
      const short: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };
      out += short[c] ?? `\\u${c.toString(16).padStart(4, "0")}`;
    } else out += ch;
  }
  return `${out}"`;
}

function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let k = 0; k < Math.min(x.length, y.length); k++) {
    const d = (x[k]?.codePointAt(0) ?? 0) - (y[k]?.codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

export function canonical(v: JsonValue): string {
  switch (v.t) {
    case "null":
      return "null";
    case "bool":
      return v.v ? "true" : "false";
    case "num":
      return v.raw;
    case "str":
      return escape(v.v);
    case "arr":
      return `[${v.v.map(canonical).join(",")}]`;
    case "obj":
      return `{${[...v.v]
        .sort((a, b) => byCodePoint(a[0], b[0]))
        .map(([k, x]) => `${escape(k)}:${canonical(x)}`)
        .join(",")}}`;
  }
}

/** Plain JavaScript values (for reading fields; numbers as numbers). */
export function plain(v: JsonValue): unknown {
  switch (v.t) {
    case "null":
      return null;
    case "bool":
    case "str":
      return v.v;
    case "num":
      return Number(v.raw);
    case "arr":
      return v.v.map(plain);
    case "obj":
      return Object.fromEntries(v.v.map(([k, x]) => [k, plain(x)]));
  }
}
