import { unzipSync, zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { canonical, parseJson } from "./canonical";
import fixture from "./fixtures/bundle.json";
import { checkBundle, fingerprint, keyFromPem, MANIFEST } from "./verify";

// made by console/scripts/make_bundle_fixture.py with the Python signer (reportsign)
const bundle = Uint8Array.from(atob(fixture.bundle_base64), (c) => c.charCodeAt(0));

function rezip(change: (files: Record<string, Uint8Array>) => void): Uint8Array {
  const files = unzipSync(bundle);
  change(files);
  return zipSync(files);
}

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

describe("report bundle verification", () => {
  it("accepts the bundle the Python signer made, with its published key", () => {
    const r = checkBundle(bundle, fixture.public_key);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.fingerprint).toBe(fixture.fingerprint);
    expect(fingerprint(fixture.public_key)).toBe(fixture.fingerprint);
    expect(r.embeddedKeyMatches).toBe(true);
    expect(r.files.map((f) => [f.name, f.ok])).toEqual([
      ["report.html", true],
      ["report.json", true],
      ["report.pdf", true],
    ]);
    expect(r.manifest.tenant_id).toBe("acme");
  });

  it("rejects a changed file", () => {
    const r = checkBundle(
      rezip((f) => {
        f["report.json"] = bytes(text(f["report.json"]).replace("ok", "OK"));
      }),
      fixture.public_key,
    );
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/^report\.json: SHA-256 .* differs from the manifest's/);
  });

  it("rejects an edited manifest field, a removed file and an added one", () => {
    const edited = rezip((f) => {
      f[MANIFEST] = bytes(text(f[MANIFEST]).replace('"tenant_id": "acme"', '"tenant_id": "acmf"'));
    });
    expect(checkBundle(edited, fixture.public_key).problems).toEqual(["the manifest's signature is not valid for its content and this key"]);
    const removed = rezip((f) => {
      delete f["report.pdf"];
    });
    expect(checkBundle(removed, fixture.public_key).problems).toEqual(["report.pdf: listed in the manifest but missing from the bundle"]);
    const added = rezip((f) => {
      f["extra.txt"] = bytes("x");
    });
    expect(checkBundle(added, fixture.public_key).problems).toEqual(["extra.txt: in the bundle but not in the manifest"]);
  });

  it("rejects a bundle signed by another key than the published one, and what is not a bundle", () => {
    // the published key of another signer (RFC 8032 test vector 1's public key)
    const other = `-----BEGIN PUBLIC KEY-----\n${btoa(
      String.fromCharCode(
        ...[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00],
        ...Array.from("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a".match(/../g) ?? [], (h) => parseInt(h, 16)),
      ),
    )}\n-----END PUBLIC KEY-----\n`;
    expect(keyFromPem(other)).toHaveLength(32);
    expect(checkBundle(bundle, other).problems).toEqual(["the manifest's signature is not valid for its content and this key"]);
    expect(checkBundle(bytes("not a zip"), fixture.public_key).problems[0]).toMatch(/^not a readable report bundle/);
  });

  it("rebuilds orjson's bytes: sorted keys by code point, escapes, numbers as written", () => {
    const src = '{"z": 1.0, "é": 1e+20, "\uffff": [true, null], "😀": "a\\u0001\\t\\"\\\\/\u2028", "a": -0.0}';
    expect(canonical(parseJson(src))).toBe('{"a":-0.0,"z":1.0,"é":1e+20,"\uffff":[true,null],"😀":"a\\u0001\\t\\"\\\\/\u2028"}');
  });
});
