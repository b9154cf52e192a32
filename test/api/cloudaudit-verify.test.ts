// VerifyAuditChain (a Tresor extension, the web console's chain status): the check of
// `tresor audit verify`, made by the server on its own store. A fresh log verifies; a changed row
// is found and named; the action needs its own permission (no preset grants it, and
// cloudaudit:LookUpEvents does not), and is itself audited.

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { CAM_VERSION } from "../../src/api/tencent/cam.js";
import { CLOUDAUDIT_VERSION } from "../../src/api/tencent/cloudaudit.js";
import { AUDIT_PUBLIC_KEY_META } from "../../src/audit/keys.js";
import { DATABASE_FILE } from "../../src/node/data-dir.js";
import { allAuditRecords } from "../helpers/audit-fixtures.js";
import { assertError, startInProcessServer, type InProcessServer } from "./helpers-inprocess.js";

describe("VerifyAuditChain", () => {
  let s: InProcessServer;
  const cam = { version: CAM_VERSION };
  const audit = { version: CLOUDAUDIT_VERSION };

  /** A user with one policy allowing `actions` on everything, and its access key. */
  async function userAllowed(name: string, actions: string[]): Promise<{ secretId: string; secretKey: string }> {
    const policy = JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: actions, resource: "*" }] });
    const created = await s.raw("CreatePolicy", { PolicyName: `${name}-policy`, PolicyDocument: policy }, cam);
    const user = await s.raw("AddUser", { Name: name, UseApi: 1 }, cam);
    await s.raw("AttachUserPolicy", { PolicyId: created.response.PolicyId, AttachUin: user.response.Uin }, cam);
    return { secretId: String(user.response.SecretId), secretKey: String(user.response.SecretKey) };
  }

  before(async () => {
    s = await startInProcessServer();
    await s.call("CreateKey", { Alias: "verify-me" });
  });

  after(() => s.stop());

  it("reports a fresh log verified, with the store's audit public key", async () => {
    const r = await s.raw("VerifyAuditChain", {}, audit);
    assert.equal(r.error, undefined, r.text);
    assert.equal(r.response.Verified, true);
    assert.equal(r.response.Failure, null);
    assert.ok(Number(r.response.Records) >= 1, "CreateKey's record is in the log");
    assert.equal(r.response.LastSeq, r.response.Records);
    assert.equal(r.response.PublicKey, await s.dataDir.store.getMeta(AUDIT_PUBLIC_KEY_META));
    assert.equal(r.response.CheckedAt, Math.floor(s.clock.now() / 1000));
  });

  it("gives callers arriving while a check runs that check's result", async () => {
    const reports = await Promise.all([1, 2, 3].map(() => s.service.auditQueries.verifyChain(s.caller)));
    assert.equal(reports[0]!.ok, true);
    assert.ok(reports.every((r) => r === reports[0]), "one check, one report");
    const later = await s.service.auditQueries.verifyChain(s.caller);
    assert.notEqual(later, reports[0], "a call after it ended checks again");
  });

  it("refuses a user without cloudaudit:VerifyAuditChain, even one who may search, and allows one granted it", async () => {
    const searcher = await userAllowed("searcher", ["name/cloudaudit:LookUpEvents"]);
    const refused = await s.raw("VerifyAuditChain", {}, { ...audit, ...searcher });
    assertError(refused, "UnauthorizedOperation");
    const auditor = await userAllowed("chain-auditor", ["name/cloudaudit:VerifyAuditChain"]);
    const allowed = await s.raw("VerifyAuditChain", {}, { ...audit, ...auditor });
    assert.equal(allowed.response.Verified, true, allowed.text);
    const records = await allAuditRecords(s.dataDir.store);
    assert.ok(records.some((r) => r.action === "VerifyAuditChain" && r.result === "UnauthorizedOperation" && r.principalName === "searcher"), "the refusal is audited");
  });

  it("finds a changed record and names it", async () => {
    const db = new Database(path.join(s.dataDir.path, DATABASE_FILE));
    try {
      assert.equal(db.prepare("UPDATE audit_records SET action = 'DisableKey' WHERE seq = 2").run().changes, 1);
    } finally {
      db.close();
    }
    const r = await s.raw("VerifyAuditChain", {}, audit);
    assert.equal(r.response.Verified, false, r.text);
    assert.deepEqual(r.response.Failure, { Seq: 2, Reason: "changed", Detail: "the record with seq 2 does not match its hash" });
  });
});
