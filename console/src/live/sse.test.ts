import { describe, expect, it } from "vitest";
import { SseParser } from "./sse";

describe("SSE parser", () => {
  it("splits events across chunks, joins data lines and skips comments", () => {
    const p = new SseParser();
    expect(p.push("event: drift\r\nda")).toEqual([]);
    expect(p.push('ta: {"a":\ndata: 1}\n\n: keepalive\n\n')).toEqual([{ event: "drift", data: '{"a":\n1}' }]);
    expect(p.push("data: x\r")).toEqual([]);
    expect(p.push("\n\r\n")).toEqual([{ event: "message", data: "x" }]);
  });
});
