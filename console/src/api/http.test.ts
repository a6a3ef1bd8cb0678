import { describe, expect, it } from "vitest";
import { errorFrom } from "./http";

describe("errors", () => {
  it("reads RFC 9457 problems with every failed check", () => {
    const e = errorFrom(
      422,
      {
        type: "about:blank",
        title: "Unprocessable Entity",
        status: 422,
        detail: "body.ends_at: Field required (and 1 more, see errors)",
        errors: [
          { loc: ["body", "ends_at"], msg: "Field required", type: "missing" },
          { field: "receivers.0.webhook_configs.0.url_file", msg: "files on Driftline's servers ..." },
        ],
      },
      "alerting",
    );
    expect(e.status).toBe(422);
    expect(e.message).toBe("body.ends_at: Field required (and 1 more, see errors)");
    expect(e.problems).toEqual([
      { field: "ends_at", msg: "Field required" },
      { field: "receivers.0.webhook_configs.0.url_file", msg: "files on Driftline's servers ..." },
    ]);
  });

  it("reads FastAPI's plain detail, the console proxy's 502 and plain text", () => {
    expect(errorFrom(409, { detail: "version 1 was approved by user:bob" }, "ingestion").message).toBe("version 1 was approved by user:bob");
    const down = errorFrom(502, { title: "Bad Gateway", detail: "audit did not answer", status: 502, service: "audit" }, "audit");
    expect(down.message).toBe("audit is unavailable (502): audit did not answer");
    expect(down.service).toBe("audit");
    expect(errorFrom(400, "bad matcher", "alerting").message).toBe("bad matcher");
  });
});
