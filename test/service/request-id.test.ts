// Request ids: RFC 9562 version 7 UUIDs, ordered by time, unique.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { newRequestId } from "../../src/service/request-audit.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("request ids", () => {
  it("are version 7 UUIDs carrying the milliseconds in their first 48 bits (RFC 9562 section 5.7)", () => {
    const now = Date.UTC(2026, 11, 6, 13, 45, 0, 123);
    const id = newRequestId(now);
    assert.match(id, UUID_V7);
    assert.equal(Number.parseInt(id.replaceAll("-", "").slice(0, 12), 16), now);
    assert.match(newRequestId(), UUID_V7);
  });

  it("sort by time as strings, so the audit log's index by request id grows at its end", () => {
    const start = Date.UTC(2026, 0, 1);
    const ids = Array.from({ length: 1000 }, (_, i) => newRequestId(start + i * 997));
    assert.deepEqual([...ids].sort(), ids);
  });

  it("are unique within one millisecond (74 random bits)", () => {
    const now = Date.now();
    const ids = new Set(Array.from({ length: 20_000 }, () => newRequestId(now)));
    assert.equal(ids.size, 20_000);
  });
});
