// Replayed requests (issue 13's "High" finding): requests of the official tencentcloud-sdk-nodejs
// client, recorded through a local proxy on their way to the server, are sent again with another
// X-TC-Action and X-TC-Version, within their validity window. The old server served them: a
// GetServiceStatus became a CreateAccessKey (a new permanent key for the root), a ReEncrypt a
// Decrypt (the plaintext), a DescribeKey a DeleteImportedKeyMaterial. Each must be refused, change
// nothing, and leave an audit record of its refusal.

import assert from "node:assert/strict";
import { constants, createPublicKey, publicEncrypt, randomBytes } from "node:crypto";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { AuditRecord } from "../../src/audit/record.js";
import { KmsClient } from "../../src/sdk/client.js";
import { allAuditRecords } from "../helpers/audit-fixtures.js";
import { officialClient, type OfficialCall } from "../helpers/official-client.js";
import { snapshotKeys, startInProcessServer, type InProcessServer, type RawResponse } from "./helpers-inprocess.js";

const VERSIONS = { kms: "2019-01-18", cam: "2019-01-16", sts: "2018-08-13", cloudaudit: "2019-03-19" } as const;

interface Captured {
  action: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A reverse proxy in front of the server that keeps a copy of every request it forwards. */
async function recordingProxy(target: URL): Promise<{ url: string; captured: Captured[]; close(): Promise<void> }> {
  const captured: Captured[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      captured.push({ action: String(req.headers["x-tc-action"]), headers: { ...req.headers }, body });
      const upstream = request({ host: target.hostname, port: Number(target.port), method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    captured,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Sends a captured request again, byte for byte, but for `action` of `version`. */
function replay(serverUrl: string, capture: Captured, action: string, version: string): Promise<RawResponse> {
  const target = new URL(serverUrl);
  const headers = { ...capture.headers, "x-tc-action": action, "x-tc-version": version };
  return new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: Number(target.port), method: "POST", path: "/", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const json = JSON.parse(text) as { Response: Record<string, unknown> & { Error?: { Code: string; Message: string } } };
        const { Error: error, ...response } = json.Response;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, error, response });
      });
    });
    req.on("error", reject);
    req.end(capture.body);
  });
}

describe("replayed official-SDK requests", () => {
  let s: InProcessServer;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let kms: OfficialCall;
  let tresor: KmsClient;
  let byokKey: string;
  let keyId: string;

  before(async () => {
    s = await startInProcessServer();
    proxy = await recordingProxy(new URL(s.url));
    const through = { url: proxy.url, secretId: s.secretId, secretKey: s.secretKey, region: s.region };
    kms = officialClient("kms", through);
    tresor = new KmsClient({ endpoint: s.url, secretId: s.secretId, secretKey: s.secretKey, region: s.region });

    keyId = String((await tresor.createKey({ Alias: "replay-target" })).KeyId);
    // A BYOK key with material, imported through the official SDK as its users do.
    byokKey = String((await tresor.createKey({ Alias: "replay-byok", Type: 2 })).KeyId);
    const p = await kms("GetParametersForImport", { KeyId: byokKey, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_2048" });
    const wrapped = publicEncrypt(
      { key: createPublicKey({ key: Buffer.from(p.PublicKey, "base64"), format: "der", type: "spki" }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      randomBytes(16),
    );
    await kms("ImportKeyMaterial", { KeyId: byokKey, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped.toString("base64") });
  });

  after(async () => {
    tresor?.close();
    await proxy?.close();
    await s?.stop();
  });

  async function accountState(): Promise<string> {
    const keys = await snapshotKeys(s.service, s.caller);
    const accessKeys = JSON.stringify((await tresor.callProduct("cam", "ListAccessKeys", {})).AccessKeys);
    const users = JSON.stringify((await tresor.callProduct("cam", "ListUsers", {})).Data);
    return `${keys}\n${accessKeys}\n${users}`;
  }

  async function auditRecordOf(requestId: string): Promise<AuditRecord> {
    const found = (await allAuditRecords(s.dataDir.store)).find((r) => r.requestId === requestId);
    assert.ok(found, `no audit record for request ${requestId}`);
    return found;
  }

  /** Captures one official-SDK request of `action` (which must succeed). */
  async function capture(action: string, params: object): Promise<Captured> {
    const before = proxy.captured.length;
    await kms(action, params);
    const captured = proxy.captured.slice(before).filter((c) => c.action === action);
    assert.equal(captured.length, 1, `one ${action} request went through the proxy`);
    return captured[0]!;
  }

  /** Replays `capture` as each of `targets`; every one refused, audited, and nothing changed. */
  async function refusedAll(capture: Captured, targets: [keyof typeof VERSIONS, string][]): Promise<void> {
    const stateBefore = await accountState();
    for (const [product, action] of targets) {
      const r = await replay(s.url, capture, action, VERSIONS[product]);
      const label = `${capture.action} replayed as ${product}:${action}`;
      assert.ok(r.error, `${label} was served: ${r.text}`);
      assert.match(r.error.Code, /^AuthFailure\.(SignatureFailure|InvalidAuthorization)$/, `${label}: ${r.text}`);
      const record = await auditRecordOf(String(r.response.RequestId));
      assert.equal(record.action, action, label);
      assert.equal(record.result, r.error.Code, label);
      if (product === "kms") assert.ok(record.flags.includes("signature-reused"), `${label}: flagged ${JSON.stringify(record.flags)}`);
    }
    assert.equal(await accountState(), stateBefore, `replays of ${capture.action} changed nothing`);
  }

  it("refuses a GetServiceStatus replayed as CAM, STS, CloudAudit and KMS actions that read or change the account", async () => {
    const captured = await capture("GetServiceStatus", {});
    await refusedAll(captured, [
      ["cam", "CreateAccessKey"],
      ["cam", "ListUsers"],
      ["cam", "ListAccessKeys"],
      ["cam", "ListPolicies"],
      ["sts", "GetCallerIdentity"],
      ["cloudaudit", "LookUpEvents"],
      ["kms", "ListKeyDetail"],
      ["kms", "ListKeys"],
      ["kms", "GetParametersForImport"],
    ]);
  });

  it("refuses a ReEncrypt replayed as Decrypt: no plaintext comes back", async () => {
    const blob = await tresor.encryptBytes(keyId, Buffer.from("the secret of the replay test"));
    const captured = await capture("ReEncrypt", { CiphertextBlob: blob });
    await refusedAll(captured, [["kms", "Decrypt"]]);
  });

  it("refuses a DescribeKey replayed as DeleteImportedKeyMaterial, DisableKey or ScheduleKeyDeletion: the BYOK key keeps its material", async () => {
    const captured = await capture("DescribeKey", { KeyId: byokKey });
    await refusedAll(captured, [
      ["kms", "DeleteImportedKeyMaterial"],
      ["kms", "DisableKey"],
      ["kms", "ScheduleKeyDeletion"],
      ["kms", "ArchiveKey"],
      ["cam", "DescribeKey"],
    ]);
    const described = (await tresor.describeKey({ KeyId: byokKey })).KeyMetadata as { KeyState: string };
    assert.equal(described.KeyState, "Enabled");
    const blob = await tresor.encryptBytes(byokKey, Buffer.from("still usable"));
    assert.equal((await tresor.decryptBytes(blob)).toString(), "still usable");
  });

  it("refuses a DisableKey replayed as EnableKey, and serves the captured action again as itself", async () => {
    const captured = await capture("DisableKey", { KeyId: keyId });
    await refusedAll(captured, [["kms", "EnableKey"]]);
    const again = await replay(s.url, captured, "DisableKey", VERSIONS.kms);
    assert.equal(again.error, undefined, `a replay of the same action is the same request: ${again.text}`);
    await tresor.enableKey({ KeyId: keyId });
  });
});

describe("tresor serve --require-signed-action", () => {
  let s: InProcessServer;

  before(async () => {
    s = await startInProcessServer({ authentication: { requireSignedAction: true } });
  });
  after(async () => {
    await s?.stop();
  });

  it("refuses a request whose signature does not cover X-TC-Action, naming it; tresor/sdk and the CLI sign it", async () => {
    const unsigned = await s.raw("GetServiceStatus", {}, { signedHeaders: ["content-type", "host"] });
    assert.equal(unsigned.error?.Code, "AuthFailure.InvalidAuthorization", unsigned.text);
    assert.match(unsigned.error!.Message, /x-tc-action/);
    const official = officialClient("kms", s);
    await assert.rejects(official("GetServiceStatus", {}), (e: { code?: string }) => e.code === "AuthFailure.InvalidAuthorization");
    const client = new KmsClient({ endpoint: s.url, secretId: s.secretId, secretKey: s.secretKey, region: s.region });
    try {
      assert.equal((await client.getServiceStatus()).ServiceEnabled, true);
    } finally {
      client.close();
    }
  });
});

describe("the credential scope's service", () => {
  let s: InProcessServer;

  before(async () => {
    s = await startInProcessServer();
  });
  after(async () => {
    await s?.stop();
  });

  it("must be the product of X-TC-Version: an endpoint-derived name such as 127 is refused, naming the service to use", async () => {
    const r = await s.raw("GetServiceStatus", {}, { service: "127" });
    assert.equal(r.error?.Code, "AuthFailure.InvalidAuthorization", r.text);
    assert.match(r.error!.Message, /"127" must be "kms"/);
    const cam = await s.raw("ListUsers", {}, { version: VERSIONS.cam, service: "kms" });
    assert.equal(cam.error?.Code, "AuthFailure.InvalidAuthorization", cam.text);
    assert.match(cam.error!.Message, /must be "cam"/);
    assert.equal((await s.raw("ListUsers", {}, { version: VERSIONS.cam })).error, undefined);
  });
});
