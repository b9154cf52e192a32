// Nothing a caller can ask for blocks the event loop (issue 13): while RSA-4096 CreateKey calls
// and filtered CloudAudit searches over a large log run, a GET /healthz probe and the event loop's
// delay stay low. Before the fix, an RSA-4096 CreateKey generated its pair on the event loop
// (0.9–2.3 s, every other request stalled for as long), and a LookUpEvents filtered by Flag,
// ResourceName, RequestId or ResourceType scanned the account's records synchronously (310–530 ms
// at 409k records, growing with the log).
//
// The log's size: TRESOR_AUDIT_LOAD_RECORDS (default 400,000, at which the old code stalled for
// 400–600 ms a call, and this file takes about half a minute); docs/operations.md gives the
// figures measured by hand at 1,000,000.

import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { performance } from "node:perf_hooks";
import path from "node:path";
import Database from "better-sqlite3";
import { assertResponsive, probeWhile } from "../helpers/event-loop-probe.js";
import { startInProcessServer, type InProcessServer } from "./helpers-inprocess.js";

const CLOUDAUDIT = { service: "cloudaudit", version: "2019-03-19" } as const;
const RECORDS = Number(process.env.TRESOR_AUDIT_LOAD_RECORDS ?? 400_000);
/**
 * Worst event-loop delay and probe latency allowed during the searches, at least: a call now takes
 * about a millisecond. On a loaded machine scheduling alone stalls the loop (up to 370 ms seen at a
 * load of 13 on 2 cores, with a heavy tail: one window's worst was 188 ms, the next ones' 259 and
 * 311 ms), so the limit is also at least three times the worst stall of the same probes around cheap
 * requests, measured right after (stallLimit). The old code stalled 0.4–2 s a call here on a quiet
 * machine, and proportionally longer on a loaded one.
 */
const MAX_STALL_MS = 300;
/** Attempts of each search before a stall over the limit fails the test (see assertRepeatedlyResponsive). */
const ATTEMPTS = 3;

describe("the event loop stays free (issue 13)", () => {
  let s: InProcessServer;

  before(async () => {
    s = await startInProcessServer();
  });

  after(async () => {
    await s?.stop();
  });

  after(async () => {
    await audited?.stop();
  });
  let audited: InProcessServer | undefined;

  // Judged against the work itself, so that neither a fast machine nor a loaded one decides: on
  // the event loop, the longest of three generations stalls it for at least a third of their total;
  // off it, the stalls left are the machine's scheduling noise.
  it("while RSA-4096 key pairs are generated for CreateKey (each took the loop for about a second)", async (t) => {
    const created: string[] = [];
    const started = performance.now();
    const probed = await probeWhile(s.url, async () => {
      for (const [i, KeyUsage] of ["ASYMMETRIC_DECRYPT_RSA_4096", "ASYMMETRIC_SIGN_VERIFY_RSA_4096", "ASYMMETRIC_DECRYPT_RSA_4096"].entries()) {
        const r = await s.call("CreateKey", { Alias: `loop-rsa-${i}`, KeyUsage });
        created.push(r.KeyId as string);
      }
    });
    const totalMs = performance.now() - started;
    assert.equal(created.length, 3);
    const pub = await s.call("GetPublicKey", { KeyId: created[0] });
    assert.match(String(pub.PublicKeyPem), /BEGIN PUBLIC KEY/);
    assertResponsive(t, "RSA-4096 CreateKey", probed, totalMs / 4);
  });

  describe(`while LookUpEvents and DescribeEvents search a log of ${RECORDS} records`, () => {
    const needleId = "needle-request";

    before(async () => {
      audited = s;
      s = await startInProcessServer();
      // Written straight into the SQLite file through a second connection, in one statement (the
      // chain's hashes are stand-ins: searches do not read them): the oldest record is the one the
      // filters look for, so every search has the whole log to get through. The heads then say
      // where the server's own records go on.
      const db = new Database(path.join(s.dataDir.path, "tresor.db"));
      try {
        db.pragma("busy_timeout = 10000");
        const head = db.prepare<[], { seq: number; hash: string }>("SELECT seq, hash FROM audit_head WHERE id = 1").get() ?? { seq: 0, hash: "0".repeat(64) };
        const accountHead = db.prepare<[string], { seq: number }>("SELECT seq FROM audit_account_heads WHERE account_uin = ?").get(s.dataDir.accountUin)?.seq ?? 0;
        const span = 20 * 86_400_000;
        db.transaction(() => {
          db.prepare(
            `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < @count)
             INSERT INTO audit_records (seq, account_seq, time, request_id, trace_id, node_id, account_uin, principal_uin, principal_name,
               access_key_id, source_ip, user_agent, region, service, action, resource_type, resource_name, read_only, result,
               latency_ms, params_digest, flags, prev_hash, hash)
             SELECT @head + i + 1, @accountHead + i + 1, @start + (i * @span) / @count, CASE i WHEN 0 THEN @needle ELSE 'bulk-' || i END, '', 'bulk',
               @account, @account, 'root', @secretId, '192.0.2.1', 'bulk/1', @region, 'kms', 'Encrypt',
               CASE i WHEN 0 THEN 'needle-type' ELSE 'key' END, CASE i WHEN 0 THEN 'key-needle' ELSE 'key-bulk' END, 1, 'Success',
               1, '', CASE i WHEN 0 THEN '["needle-flag"]' ELSE '[]' END, CASE i WHEN 0 THEN @headHash ELSE printf('%064x', i) END, printf('%064x', i + 1)
             FROM n`,
          ).run({ count: RECORDS, head: head.seq, headHash: head.hash, accountHead, start: Date.now() - span, span, needle: needleId, account: s.dataDir.accountUin, secretId: s.secretId, region: s.region });
          db.prepare("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, printf('%064x', ?)) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash").run(
            head.seq + RECORDS,
            RECORDS,
          );
          db.prepare("INSERT INTO audit_account_heads (account_uin, seq) VALUES (?, ?) ON CONFLICT (account_uin) DO UPDATE SET seq = excluded.seq").run(
            s.dataDir.accountUin,
            accountHead + RECORDS,
          );
        }).immediate();
      } finally {
        db.close();
      }
    });

    /**
     * The stall limit for work that took `durationMs`: MAX_STALL_MS, or three times the worst stall of the
     * same probes around cheap requests for as long, right after it (what the machine itself does).
     */
    async function stallLimit(t: TestContext, durationMs: number): Promise<number> {
      const quiet = await probeWhile(s.url, async () => {
        const end = performance.now() + durationMs;
        while (performance.now() < end) await s.raw("GetRegions", {});
      });
      const baseline = Math.max(quiet.worstLoopDelayMs, quiet.worstProbeMs);
      t.diagnostic(`baseline: worst stall around GetRegions for ${Math.round(durationMs)} ms: ${baseline.toFixed(1)} ms`);
      return Math.max(MAX_STALL_MS, 3 * baseline);
    }

    /**
     * `work` run while probed, and its stalls judged against stallLimit. A search that blocks the
     * loop does so in every attempt; a loaded machine's scheduling and disk stall it now and then
     * (bursts of 0.4 s were seen in the baseline windows themselves at a load of 10). So an attempt
     * over the limit is repeated, and the test fails only if all ATTEMPTS were over it.
     */
    async function assertRepeatedlyResponsive(t: TestContext, what: string, work: () => Promise<void>): Promise<void> {
      const failures: string[] = [];
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        const started = performance.now();
        const probed = await probeWhile(s.url, work);
        const limit = await stallLimit(t, performance.now() - started);
        try {
          assertResponsive(t, what, probed, limit);
          return;
        } catch (err) {
          failures.push((err as Error).message);
          t.diagnostic(`attempt ${attempt} of ${ATTEMPTS}: ${(err as Error).message}`);
        }
      }
      assert.fail(failures.join("\n"));
    }

    /** Every event of a search, following NextToken: the calls' count and the events. */
    async function searchAll(attributes: Record<string, string>): Promise<{ calls: number; events: Record<string, unknown>[] }> {
      const now = Math.floor(Date.now() / 1000);
      const events: Record<string, unknown>[] = [];
      let token: string | undefined;
      for (let calls = 1; calls < 10_000; calls++) {
        const r = await s.raw(
          "LookUpEvents",
          {
            StartTime: now - 25 * 86_400,
            EndTime: now + 60,
            MaxResults: 50,
            LookupAttributes: Object.entries(attributes).map(([AttributeKey, AttributeValue]) => ({ AttributeKey, AttributeValue })),
            ...(token === undefined ? {} : { NextToken: token }),
          },
          CLOUDAUDIT,
        );
        assert.equal(r.error, undefined, JSON.stringify(r.error));
        events.push(...(r.response.Events as Record<string, unknown>[]));
        if (r.response.ListOver === true) return { calls, events };
        token = r.response.NextToken as string;
      }
      throw new Error("the search did not end");
    }

    for (const [key, value] of [
      ["Flag", "needle-flag"],
      ["ResourceName", "key-needle"],
      ["ResourceType", "needle-type"],
      ["RequestId", needleId],
    ] as const) {
      it(`filtered by ${key}: each call is bounded, and following NextToken finds the oldest record`, async (t) => {
        await assertRepeatedlyResponsive(t, `LookUpEvents by ${key}`, async () => {
          const result = await searchAll({ [key]: value });
          assert.deepEqual(
            result.events.map((e) => e.RequestID),
            [needleId],
            `${key}: found in ${result.calls} calls`,
          );
        });
      });
    }

    it("DescribeEvents with a filter that matches nothing, a page at a time", async (t) => {
      const now = Math.floor(Date.now() / 1000);
      await assertRepeatedlyResponsive(t, "DescribeEvents by Flag", async () => {
        let next: number | undefined;
        for (let calls = 0; calls < 5; calls++) {
          const r = await s.raw(
            "DescribeEvents",
            {
              StartTime: now - 25 * 86_400,
              EndTime: now + 60,
              LookupAttributes: [{ AttributeKey: "Flag", AttributeValue: "no-such-flag" }],
              ...(next === undefined ? {} : { NextToken: next }),
            },
            CLOUDAUDIT,
          );
          assert.equal(r.error, undefined, JSON.stringify(r.error));
          assert.deepEqual(r.response.Events, []);
          if (r.response.ListOver === true) break;
          next = r.response.NextToken as number;
        }
      });
    });
  });
});
