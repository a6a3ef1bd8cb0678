// Server-Sent Events read with fetch + ReadableStream, so the session token travels in the
// Authorization header (EventSource cannot send one, and a token in the URL would be logged).
import { apiUrl, authedFetch, refreshSession } from "../api/http";

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/** Incremental SSE parser (the WHATWG rules: fields per line, a blank line dispatches,
 * `:` starts a comment, data lines join with \n, CR/LF/CRLF all end a line). */
export class SseParser {
  private buf = "";
  private event = "";
  private data: string[] = [];
  private id: string | undefined;

  push(chunk: string): SseMessage[] {
    this.buf += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // a lone CR at the end of the buffer may be the first half of CRLF: wait for more
      if (m[0] === "\r" && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      const msg = this.line(line);
      if (msg) out.push(msg);
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === "") {
      if (this.data.length === 0) {
        this.event = "";
        return null;
      }
      const msg: SseMessage = { event: this.event || "message", data: this.data.join("\n") };
      if (this.id !== undefined) msg.id = this.id;
      this.event = "";
      this.data = [];
      return msg;
    }
    if (line.startsWith(":")) return null; // keepalive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") this.id = value;
    return null;
  }
}

export type LiveState = "connecting" | "open" | "closed" | "error";

export interface LiveOptions {
  onMessage: (m: SseMessage) => void;
  onState: (s: LiveState, detail?: string) => void;
  signal: AbortSignal;
  retryMs?: number;
}

/** Reads /api/live until aborted, reconnecting (1 s doubling to 30 s) when it drops. */
export async function followLive(opts: LiveOptions): Promise<void> {
  let wait = opts.retryMs ?? 1000;
  while (!opts.signal.aborted) {
    opts.onState("connecting");
    try {
      const res = await authedFetch(
        new Request(apiUrl("live"), {
          headers: { Accept: "text/event-stream" },
          signal: opts.signal,
        }),
      );
      if (!res.ok || !res.body) {
        opts.onState("error", `live updates answered HTTP ${res.status}`);
        if (res.status === 401 || res.status === 403) return;
      } else {
        opts.onState("open");
        wait = opts.retryMs ?? 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        const parser = new SseParser();
        let expired = false;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const m of parser.push(value)) {
            // the console ends a stream whose token expired (`expired`) or that fell
            // behind (`overflow`): reconnect at once, with a fresh token for the first
            if (m.event === "expired") expired = true;
            else opts.onMessage(m);
          }
        }
        opts.onState("closed", expired ? "the session token expired" : "the live stream ended");
        if (expired && !(await refreshSession())) return;
        wait = 0;
      }
    } catch (e) {
      if (opts.signal.aborted) return;
      opts.onState("error", `live updates unavailable: ${String(e)}`);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, wait);
      opts.signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      });
    });
    wait = Math.min(wait * 2, 30_000);
  }
}
