// A signed report bundle checked in the browser, as `driftline report verify` checks it
// (libs/driftline-contracts reportsign.check_bundle): the manifest's Ed25519 signature over
// its canonical bytes with the published key (GET /v1/reports/public-key), then every file
// against the manifest's SHA-256 and size; a file missing, extra or changed fails it.
import * as ed from "@noble/ed25519";
import { sha256 } from "@noble/hashes/sha256";
import { sha512 } from "@noble/hashes/sha512";
import { bytesToHex } from "@noble/hashes/utils";
import { unzipSync } from "fflate";
import { canonical, parseJson, plain, type JsonValue } from "./canonical";

// pure-JS SHA-512: no dependence on WebCrypto (absent outside secure contexts)
ed.etc.sha512Sync = (...m: Uint8Array[]) => sha512(ed.etc.concatBytes(...m));

export const MANIFEST = "manifest.json";
export const MANIFEST_FORMAT = "driftline-report-manifest/1";
const UNSIGNED = new Set(["signature", "public_key"]);
// DER SubjectPublicKeyInfo of an Ed25519 key: this prefix, then the 32 key bytes
const SPKI_PREFIX = "302a300506032b6570032100";

export interface BundleCheck {
  ok: boolean;
  problems: string[];
  manifest: Record<string, unknown>;
  fingerprint: string;
  files: { name: string; bytes: number; ok: boolean }[];
  embeddedKeyMatches: boolean | null;
}

function b64decode(s: string): Uint8Array {
  const bin = atob(s.replace(/\s+/g, ""));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The 32 raw key bytes of an Ed25519 public key in PEM (SPKI). */
export function keyFromPem(pem: string): Uint8Array {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "");
  const der = b64decode(body);
  if (der.length !== 44 || bytesToHex(der.slice(0, 12)) !== SPKI_PREFIX) {
    throw new Error("not an Ed25519 public key in PEM");
  }
  return der.slice(12);
}

/** SHA-256 of the PEM, first 16 hex digits (reportsign.key_fingerprint). */
export function fingerprint(pem: string): string {
  return bytesToHex(sha256(new TextEncoder().encode(pem))).slice(0, 16);
}

export function signedBytes(manifest: JsonValue): Uint8Array {
  if (manifest.t !== "obj") throw new Error("the manifest is not a JSON object");
  const kept: JsonValue = { t: "obj", v: manifest.v.filter(([k]) => !UNSIGNED.has(k)) };
  return new TextEncoder().encode(canonical(kept));
}

export function checkBundle(data: Uint8Array, publishedPem: string): BundleCheck {
  const out: BundleCheck = { ok: true, problems: [], manifest: {}, fingerprint: "", files: [], embeddedKeyMatches: null };
  const fail = (why: string) => {
    out.ok = false;
    out.problems.push(why);
  };
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(data);
  } catch (e) {
    fail(`not a readable report bundle: ${String(e)}`);
    return out;
  }
  const raw = entries[MANIFEST];
  if (!raw) {
    fail("the bundle has no manifest.json");
    return out;
  }
  let tree: JsonValue;
  try {
    tree = parseJson(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch (e) {
    fail(`not a readable report bundle: ${String(e)}`);
    return out;
  }
  const manifest = plain(tree) as Record<string, unknown>;
  out.manifest = manifest;
  if (manifest.format !== MANIFEST_FORMAT) {
    fail(`not a Driftline report manifest (format ${JSON.stringify(manifest.format)})`);
  } else {
    try {
      const key = keyFromPem(publishedPem);
      out.fingerprint = fingerprint(publishedPem);
      out.embeddedKeyMatches = typeof manifest.public_key === "string" ? manifest.public_key.trim() === publishedPem.trim() : null;
      const sig = b64decode(String(manifest.signature ?? ""));
      if (!ed.verify(sig, signedBytes(tree), key)) throw new Error("bad signature");
    } catch {
      fail("the manifest's signature is not valid for its content and this key");
    }
  }
  const listed = new Map<string, { sha256?: string; bytes?: number }>();
  for (const f of (Array.isArray(manifest.files) ? manifest.files : []) as { name: string; sha256?: string; bytes?: number }[]) {
    listed.set(f.name, f);
  }
  const names = Object.keys(entries).filter((n) => n !== MANIFEST && !n.endsWith("/"));
  for (const n of [...listed.keys()].sort()) {
    if (!names.includes(n)) fail(`${n}: listed in the manifest but missing from the bundle`);
  }
  for (const n of names.sort()) {
    const entry = listed.get(n);
    const bytes = entries[n] ?? new Uint8Array();
    if (!entry) {
      fail(`${n}: in the bundle but not in the manifest`);
      out.files.push({ name: n, bytes: bytes.length, ok: false });
      continue;
    }
    const digest = bytesToHex(sha256(bytes));
    const same = digest === entry.sha256 && bytes.length === entry.bytes;
    if (!same) {
      fail(`${n}: SHA-256 ${digest.slice(0, 16)}… (${bytes.length} bytes) differs from the manifest's ${String(entry.sha256).slice(0, 16)}… (${String(entry.bytes)} bytes)`);
    }
    out.files.push({ name: n, bytes: bytes.length, ok: same });
  }
  return out;
}
