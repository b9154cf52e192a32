// `tresor kms-plugin` end to end, as kube-apiserver drives it: a real `tresor serve`, a plugin
// access key whose CAM policy allows only DescribeKey, and Encrypt/Decrypt under the plugin's
// purpose context, on one key; the plugin as a child process; a gRPC client built from the
// repository's KMS v2 .proto over the unix socket. The key is rotated, disabled and re-enabled
// through the official Tencent SDK, Tresor is stopped and started again, and the audit log is
// searched for the plugin's access key.

import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Command } from "commander";
import { registerKmsPluginCommand } from "../../src/cli/kms-plugin.js";
import { FORMAT_ANNOTATION, MAX_PLAINTEXT_BYTES, PURPOSE_CONTEXT } from "../../src/cli/kms-plugin/plugin.js";
import { kmsV2Client, loadKmsV2Definition, spawnPlugin, startPlugin, type KmsV2Client, type RunningPlugin } from "../helpers/kms-plugin.js";
import { officialClient, type OfficialCall } from "../helpers/official-client.js";
import { freePort, startServer, type TestServer } from "../helpers/server.js";
import { seededRandom, waitFor } from "../helpers/wait.js";

const STATUS_CACHE_MS = 300;

const kubernetesMd = readFileSync(new URL("../../../docs/kubernetes.md", import.meta.url), "utf8");

/** The one `json policy` block of docs/kubernetes.md. */
function documentedPolicy(): string {
  const blocks = [...kubernetesMd.matchAll(/^```json policy\n([\s\S]*?)^```$/gm)];
  assert.equal(blocks.length, 1, "docs/kubernetes.md holds one json policy block");
  return blocks[0]![1]!;
}

/** The statement docs/kubernetes.md adds to that policy for an alias in --key-id. */
function documentedAliasStatement(): string {
  const blocks = [...kubernetesMd.matchAll(/^ *```json alias-policy\n([\s\S]*?)^ *```$/gm)];
  assert.equal(blocks.length, 1, "docs/kubernetes.md holds one json alias-policy block");
  return blocks[0]![1]!;
}

/** Rejects unless the gRPC call fails with `code` (and details matching `mention`). */
async function rejectsWithStatus(promise: Promise<unknown>, code: grpc.status, mention?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: grpc.ServiceError) => {
    assert.equal(grpc.status[err.code], grpc.status[code], `expected ${grpc.status[code]}, got ${grpc.status[err.code]}: ${err.details}`);
    if (mention) assert.match(err.details, mention);
    return true;
  });
}

describe("tresor kms-plugin (Kubernetes KMS v2) over a unix socket", () => {
  const random = seededRandom("kms-plugin");
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random.next() * 256)));
  let work: string;
  let port: number;
  let server: TestServer;
  let admin: { kms: OfficialCall; cam: OfficialCall; audit: OfficialCall };
  let keyId: string;
  let otherKey: string;
  let pluginEnv: Record<string, string>;
  let socketPath: string;
  let plugin: RunningPlugin;
  let kms: KmsV2Client;
  let startTime: number;
  let uids = 0;
  const secrets: Buffer[] = [];

  const adminFor = (s: TestServer) => {
    const target = { url: s.url, secretId: s.secretId, secretKey: s.secretKey, region: s.region };
    return { kms: officialClient("kms", target), cam: officialClient("cam", target), audit: officialClient("cloudaudit", target) };
  };
  const pluginArgs = (socket: string, key = keyId) => ["--socket", socket, "--key-id", key, "--endpoint", server.url, "--status-cache-ms", String(STATUS_CACHE_MS)];
  const encrypt = (plaintext: Buffer) => kms.encrypt({ plaintext, uid: `uid-${uids++}` });
  const decrypt = (request: { ciphertext: Buffer; key_id: string; annotations: Record<string, Buffer> }) => kms.decrypt({ ...request, uid: `uid-${uids++}` });

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "tresor-kms-plugin-"));
    port = await freePort();
    server = await startServer({ serveArgs: ["--port", String(port)], keepDataDir: true });
    startTime = Math.floor(Date.now() / 1000) - 60;
    admin = adminFor(server);
    keyId = (await admin.kms("CreateKey", { Alias: "kubernetes-kek" })).KeyId;
    otherKey = (await admin.kms("CreateKey", { Alias: "not-the-plugins" })).KeyId;
    await admin.kms("EnableKeyRotation", { KeyId: keyId, RotateDays: 90 });

    // The policy docs/kubernetes.md gives, filled in.
    const { KeyMetadata } = await admin.kms("DescribeKey", { KeyId: keyId });
    const policy = documentedPolicy().replaceAll("<region>", server.region).replaceAll("<uin>", KeyMetadata.CreatorUinString).replaceAll("<KeyId>", keyId);
    const { PolicyId } = await admin.cam("CreatePolicy", { PolicyName: "kube-kms-plugin", PolicyDocument: policy });
    const user = await admin.cam("AddUser", { Name: "kube-kms", UseApi: 1 });
    await admin.cam("AttachUserPolicy", { PolicyId, AttachUin: user.Uin });
    pluginEnv = { TRESOR_SECRET_ID: user.SecretId, TRESOR_SECRET_KEY: user.SecretKey, TRESOR_REGION: server.region };

    socketPath = path.join(work, "kms.sock");
    plugin = await startPlugin(pluginArgs(socketPath), pluginEnv);
    kms = kmsV2Client(socketPath);
  });

  after(async () => {
    kms?.close();
    await plugin?.stop();
    await server?.stop();
    if (server) await rm(path.dirname(server.dataDir), { recursive: true, force: true });
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("loads a .proto with the names, numbers and types of kubernetes' KMS v2 api.proto", () => {
    const definition = loadKmsV2Definition();
    const service = definition["v2.KeyManagementService"] as Record<string, { path: string }>;
    assert.deepEqual(Object.values(service).map((m) => m.path).sort(), ["/v2.KeyManagementService/Decrypt", "/v2.KeyManagementService/Encrypt", "/v2.KeyManagementService/Status"]);
    const fields = (name: string) =>
      ((definition[`v2.${name}`] as { type: { field: { name: string; number: number; type: string; label: string }[] } }).type.field).map((f) => `${f.number}:${f.name}:${f.type}:${f.label}`);
    assert.deepEqual(fields("StatusRequest"), []);
    assert.deepEqual(fields("StatusResponse"), ["1:version:TYPE_STRING:LABEL_OPTIONAL", "2:healthz:TYPE_STRING:LABEL_OPTIONAL", "3:key_id:TYPE_STRING:LABEL_OPTIONAL"]);
    assert.deepEqual(fields("EncryptRequest"), ["1:plaintext:TYPE_BYTES:LABEL_OPTIONAL", "2:uid:TYPE_STRING:LABEL_OPTIONAL"]);
    assert.deepEqual(fields("EncryptResponse"), ["1:ciphertext:TYPE_BYTES:LABEL_OPTIONAL", "2:key_id:TYPE_STRING:LABEL_OPTIONAL", "3:annotations:TYPE_MESSAGE:LABEL_REPEATED"]);
    assert.deepEqual(fields("DecryptRequest"), [
      "1:ciphertext:TYPE_BYTES:LABEL_OPTIONAL",
      "2:uid:TYPE_STRING:LABEL_OPTIONAL",
      "3:key_id:TYPE_STRING:LABEL_OPTIONAL",
      "4:annotations:TYPE_MESSAGE:LABEL_REPEATED",
    ]);
    assert.deepEqual(fields("DecryptResponse"), ["1:plaintext:TYPE_BYTES:LABEL_OPTIONAL"]);
  });

  it("is documented in docs/kubernetes.md: every flag, the purpose context, the annotation and the key_id form", () => {
    const program = new Command();
    registerKmsPluginCommand(program);
    const flags = program.commands[0]!.options.map((o) => o.long!);
    for (const flag of flags) if (flag !== "--json") assert.ok(kubernetesMd.includes(`\`${flag}`), `docs/kubernetes.md documents ${flag}`);
    assert.ok(kubernetesMd.includes(JSON.stringify(PURPOSE_CONTEXT)));
    assert.ok(kubernetesMd.includes(`\`${FORMAT_ANNOTATION}: "1"\``));
    assert.ok(kubernetesMd.includes(`${MAX_PLAINTEXT_BYTES} bytes`));
    assert.ok(kubernetesMd.includes("`tresor:<KeyId>:v<version>`"));
  });

  it("serves on a socket of mode 0600", () => {
    const stats = statSync(socketPath);
    assert.ok(stats.isSocket());
    assert.equal((stats.mode & 0o777).toString(8), "600");
  });

  it("answers Status with v2, ok and a key_id naming the key and its version", async () => {
    const status = await kms.status();
    assert.deepEqual({ ...status }, { version: "v2", healthz: "ok", key_id: `tresor:${keyId}:v1` });
  });

  it("encrypts 32 random bytes into a Tresor blob under the purpose context, and decrypts them", async () => {
    const seed = bytes(32);
    secrets.push(seed);
    const res = await encrypt(seed);
    assert.equal(res.key_id, `tresor:${keyId}:v1`);
    assert.ok(res.ciphertext.length <= 1024);
    assert.deepEqual(Object.keys(res.annotations), [FORMAT_ANNOTATION]);
    assert.equal(res.annotations[FORMAT_ANNOTATION]!.toString(), "1");
    const back = await decrypt(res);
    assert.deepEqual(back.plaintext, seed);
    // The ciphertext is Tresor's blob, bound to the purpose context: it decrypts through the API
    // with that context, and without it not at all.
    const blob = res.ciphertext.toString("base64");
    const withContext = await admin.kms("Decrypt", { CiphertextBlob: blob, EncryptionContext: JSON.stringify(PURPOSE_CONTEXT) });
    assert.equal(withContext.Plaintext, seed.toString("base64"));
    await assert.rejects(admin.kms("Decrypt", { CiphertextBlob: blob }), (e: { code?: string }) => /InvalidCiphertext|DecryptError/.test(e.code ?? ""));
  });

  it("refuses a ciphertext with any byte flipped, with a gRPC error", async () => {
    const res = await encrypt(bytes(32));
    for (const index of [0, 1, 5, 20, 30, 40, res.ciphertext.length - 1]) {
      const tampered = Buffer.from(res.ciphertext);
      tampered[index]! ^= 0x01;
      await rejectsWithStatus(kms.decrypt({ ciphertext: tampered, uid: "u", key_id: res.key_id, annotations: res.annotations }), grpc.status.INVALID_ARGUMENT);
    }
  });

  it("refuses hostile input, naming the field, before or at Tresor", async () => {
    const good = await encrypt(bytes(32));
    const ok = { ciphertext: good.ciphertext, uid: "u", key_id: good.key_id, annotations: good.annotations };
    await rejectsWithStatus(kms.encrypt({ plaintext: bytes(32), uid: "" }), grpc.status.INVALID_ARGUMENT, /"uid"/);
    await rejectsWithStatus(kms.encrypt({ plaintext: bytes(32), uid: "a\nb" }), grpc.status.INVALID_ARGUMENT, /"uid"/);
    await rejectsWithStatus(kms.encrypt({ plaintext: Buffer.alloc(0), uid: "u" }), grpc.status.INVALID_ARGUMENT, /"plaintext"/);
    await rejectsWithStatus(kms.encrypt({ plaintext: bytes(MAX_PLAINTEXT_BYTES + 1), uid: "u" }), grpc.status.INVALID_ARGUMENT, /"plaintext" must be 1 to 974 bytes/);
    await rejectsWithStatus(kms.encrypt({ plaintext: Buffer.alloc(200_000), uid: "u" }), grpc.status.RESOURCE_EXHAUSTED);
    await rejectsWithStatus(kms.decrypt({ ...ok, uid: "" }), grpc.status.INVALID_ARGUMENT, /"uid"/);
    await rejectsWithStatus(kms.decrypt({ ...ok, ciphertext: Buffer.alloc(2000, 1) }), grpc.status.INVALID_ARGUMENT, /"ciphertext" must be 50 to 1024 bytes/);
    await rejectsWithStatus(kms.decrypt({ ...ok, ciphertext: Buffer.alloc(200_000, 1) }), grpc.status.RESOURCE_EXHAUSTED);
    await rejectsWithStatus(kms.decrypt({ ...ok, ciphertext: bytes(100) }), grpc.status.INVALID_ARGUMENT, /"ciphertext" is not a Tresor ciphertext/);
    await rejectsWithStatus(kms.decrypt({ ...ok, key_id: `tresor:${keyId}:v7` }), grpc.status.INVALID_ARGUMENT, /"key_id" does not match/);
    await rejectsWithStatus(kms.decrypt({ ...ok, key_id: "" }), grpc.status.INVALID_ARGUMENT, /"key_id"/);
    await rejectsWithStatus(kms.decrypt({ ...ok, key_id: "x".repeat(2000) }), grpc.status.INVALID_ARGUMENT, /"key_id"/);
    await rejectsWithStatus(kms.decrypt({ ...ok, annotations: {} }), grpc.status.INVALID_ARGUMENT, /"annotations"/);
    await rejectsWithStatus(kms.decrypt({ ...ok, annotations: { ...ok.annotations, "extra.example.com": Buffer.from("x") } }), grpc.status.INVALID_ARGUMENT, /"annotations"/);
    await rejectsWithStatus(kms.decrypt({ ...ok, annotations: { [FORMAT_ANNOTATION]: Buffer.from("2") } }), grpc.status.INVALID_ARGUMENT, /"annotations"/);

    // A blob of another key, even under the purpose context: refused by the plugin itself.
    const other = await admin.kms("Encrypt", { KeyId: otherKey, Plaintext: bytes(32).toString("base64"), EncryptionContext: JSON.stringify(PURPOSE_CONTEXT) });
    const otherBlob = Buffer.from(other.CiphertextBlob, "base64");
    await rejectsWithStatus(kms.decrypt({ ...ok, ciphertext: otherBlob, key_id: `tresor:${otherKey}:v1` }), grpc.status.INVALID_ARGUMENT, /another key/);
    // A blob of the plugin's key made for another use (another context) is not replayable here.
    const elsewhere = await admin.kms("Encrypt", { KeyId: keyId, Plaintext: bytes(32).toString("base64"), EncryptionContext: '{"app":"payroll"}' });
    await rejectsWithStatus(kms.decrypt({ ...ok, ciphertext: Buffer.from(elsewhere.CiphertextBlob, "base64") }), grpc.status.INVALID_ARGUMENT, /InvalidCiphertext|DecryptError/);
    // Still serving.
    assert.equal((await kms.status()).healthz, "ok");
  });

  it("changes key_id after RotateKey through the official SDK, and still decrypts the old ciphertext", async () => {
    const seed = bytes(32);
    secrets.push(seed);
    const old = await encrypt(seed);
    await admin.kms("RotateKey", { KeyId: keyId });
    const status = await waitFor("Status to show the new version", async () => {
      const s = await kms.status();
      return s.key_id === `tresor:${keyId}:v2` ? s : undefined;
    }, { timeoutMs: 10_000 });
    assert.equal(status.healthz, "ok");
    const fresh = await encrypt(bytes(32));
    assert.equal(fresh.key_id, `tresor:${keyId}:v2`);
    assert.deepEqual((await decrypt(old)).plaintext, seed);
    assert.equal(old.key_id, `tresor:${keyId}:v1`);
  });

  it("turns healthz from ok within the probe cache time after DisableKey, and back after EnableKey", async () => {
    assert.equal((await kms.status()).healthz, "ok");
    await admin.kms("DisableKey", { KeyId: keyId });
    const disabledAt = Date.now();
    const status = await waitFor("healthz to leave ok", async () => {
      const s = await kms.status();
      return s.healthz !== "ok" ? s : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    // Within the cache time, plus one probe's round trip on a loaded machine.
    assert.ok(Date.now() - disabledAt < STATUS_CACHE_MS + 5_000, `took ${Date.now() - disabledAt} ms`);
    assert.equal(status.healthz, "key Disabled");
    assert.equal(status.key_id, `tresor:${keyId}:v2`, "the last key_id stays reported");
    await rejectsWithStatus(kms.encrypt({ plaintext: bytes(32), uid: "u" }), grpc.status.FAILED_PRECONDITION, /CmkDisabled/);
    await admin.kms("EnableKey", { KeyId: keyId });
    await waitFor("healthz ok again", async () => (await kms.status()).healthz === "ok", { timeoutMs: 10_000, intervalMs: 50 });
  });

  it("reports Tresor unreachable while it is stopped, and ok again once it is back", async () => {
    await server.stop();
    const down = await waitFor("healthz to leave ok", async () => {
      const s = await kms.status();
      return s.healthz !== "ok" ? s : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    assert.equal(down.healthz, "Tresor unreachable");
    await rejectsWithStatus(kms.encrypt({ plaintext: bytes(32), uid: "u" }), grpc.status.UNAVAILABLE);

    server = await startServer({ dataDir: server.dataDir, serveArgs: ["--port", String(port)] });
    await waitFor("healthz ok again", async () => (await kms.status()).healthz === "ok", { timeoutMs: 20_000, intervalMs: 100 });
    const seed = bytes(32);
    const res = await encrypt(seed);
    assert.deepEqual((await decrypt(res)).plaintext, seed);
  });

  it("records every Encrypt and Decrypt in Tresor's audit log under the plugin's access key", async () => {
    admin = adminFor(server);
    /** Every audit event of the plugin's user so far, following NextToken. */
    const pluginEvents = async () => {
      const events: Record<string, any>[] = [];
      let token: string | undefined;
      for (let page = 0; page < 50; page++) {
        const res = await admin.audit("LookUpEvents", {
          StartTime: startTime,
          EndTime: Math.floor(Date.now() / 1000) + 60,
          LookupAttributes: [{ AttributeKey: "Username", AttributeValue: "kube-kms" }],
          MaxResults: 50,
          ...(token === undefined ? {} : { NextToken: token }),
        });
        events.push(...(res.Events as Record<string, any>[]));
        if (res.ListOver) return events;
        token = res.NextToken;
      }
      throw new Error("LookUpEvents did not end");
    };
    const count = (events: Record<string, any>[], name: string) =>
      events.filter((e) => e.EventName === name && e.ErrorCode === 0 && e.Resources.ResourceName === keyId && e.SecretId === pluginEnv["TRESOR_SECRET_ID"]).length;

    const before = await pluginEvents();
    assert.ok(before.length > 0 && before.every((e) => e.SecretId === pluginEnv["TRESOR_SECRET_ID"]));
    assert.ok(count(before, "DescribeKey") >= 1, "the probes are audited too");
    assert.ok(before.some((e) => e.EventName === "Encrypt" && e.ErrorCode !== 0), "the refusal while the key was disabled is recorded too");
    // No Status call in between, so no probe: the only requests are these calls through the socket.
    const calls = 5;
    for (let i = 0; i < calls; i++) await decrypt(await encrypt(bytes(32)));
    const after = await pluginEvents();
    assert.equal(count(after, "Encrypt") - count(before, "Encrypt"), calls);
    assert.equal(count(after, "Decrypt") - count(before, "Decrypt"), calls);
    assert.equal(after.length - before.length, 2 * calls, "nothing else was sent");
  });

  it("never logs plaintext", () => {
    const logs = plugin.output();
    for (const secret of secrets) {
      assert.ok(!logs.includes(secret.toString("base64")) && !logs.includes(secret.toString("hex")), "plaintext in the plugin's log");
    }
  });

  it("refuses to start with a key its access key may not use, or a disabled one, with a clear error", async () => {
    const other = spawnPlugin(pluginArgs(path.join(work, "other.sock"), otherKey), pluginEnv);
    const badId = spawnPlugin(pluginArgs(path.join(work, "bad.sock"), "alias/"), pluginEnv);
    const byAlias = spawnPlugin(pluginArgs(path.join(work, "alias.sock"), "kubernetes-kek"), pluginEnv);
    assert.equal(await other.exited, 1);
    assert.match(other.output(), new RegExp(`cannot use key ${otherKey}: UnauthorizedOperation.*kms:DescribeKey, kms:Encrypt and kms:Decrypt`));
    assert.equal(existsSync(path.join(work, "other.sock")), false);

    await admin.kms("DisableKey", { KeyId: keyId });
    const disabled = spawnPlugin(pluginArgs(path.join(work, "other.sock")), pluginEnv);
    assert.equal(await disabled.exited, 1);
    assert.match(disabled.output(), new RegExp(`cannot use key ${keyId}: key Disabled`));
    await admin.kms("EnableKey", { KeyId: keyId });
    await waitFor("healthz ok again", async () => (await kms.status()).healthz === "ok", { timeoutMs: 10_000, intervalMs: 50 });

    assert.equal(await badId.exited, 2);
    assert.match(badId.output(), /--key-id must be a KeyId, an alias or alias\/NAME, got "alias\/"/);
    // The documented policy alone does not allow the alias lookup: the error says what is missing.
    assert.equal(await byAlias.exited, 1);
    assert.match(byAlias.output(), /cannot look up the alias "kubernetes-kek": UnauthorizedOperation: .*\(an alias needs kms:ListKeyDetail/);
    assert.equal(existsSync(path.join(work, "alias.sock")), false);
  });

  it("takes the key as an alias (with docs/kubernetes.md's extra statement) or an upper-case KeyId, as every command does", async () => {
    const { KeyMetadata } = await admin.kms("DescribeKey", { KeyId: keyId });
    const policy = JSON.parse(
      documentedPolicy().replaceAll("<region>", server.region).replaceAll("<uin>", KeyMetadata.CreatorUinString).replaceAll("<KeyId>", keyId),
    ) as { statement: object[] };
    policy.statement.push(JSON.parse(documentedAliasStatement()) as object);
    const { PolicyId } = await admin.cam("CreatePolicy", { PolicyName: "kube-kms-plugin-alias", PolicyDocument: JSON.stringify(policy) });
    const user = await admin.cam("AddUser", { Name: "kube-kms-alias", UseApi: 1 });
    await admin.cam("AttachUserPolicy", { PolicyId, AttachUin: user.Uin });
    const aliasEnv = { TRESOR_SECRET_ID: user.SecretId, TRESOR_SECRET_KEY: user.SecretKey, TRESOR_REGION: server.region };

    const starts = [
      { socket: path.join(work, "by-alias.sock"), key: "alias/kubernetes-kek", env: aliasEnv },
      { socket: path.join(work, "by-upper-id.sock"), key: keyId.toUpperCase(), env: pluginEnv },
    ];
    const plugins = await Promise.all(starts.map((s) => startPlugin(pluginArgs(s.socket, s.key), s.env)));
    try {
      for (const [i, start] of starts.entries()) {
        const client = kmsV2Client(start.socket);
        try {
          const status = await client.status();
          assert.equal(status.healthz, "ok", start.key);
          assert.match(status.key_id, new RegExp(`^tresor:${keyId}:v\\d+$`), start.key);
          const sealed = await client.encrypt({ plaintext: Buffer.from("by another name"), uid: `uid-${uids++}` });
          const opened = await kms.decrypt({ ciphertext: sealed.ciphertext, key_id: sealed.key_id, annotations: sealed.annotations, uid: `uid-${uids++}` });
          assert.equal(opened.plaintext.toString(), "by another name", "the main plugin (by KeyId) decrypts what this one encrypted");
        } finally {
          client.close();
        }
        assert.match(plugins[i]!.output(), new RegExp(`"msg":"listening"`));
      }
    } finally {
      await Promise.all(plugins.map((p) => p.stop()));
    }
  });

  it("refuses a live socket and a non-socket file; replaces a stale socket left by a crash; removes its socket on SIGINT and SIGTERM", async () => {
    const plain = path.join(work, "plain-file");
    writeFileSync(plain, "not a socket");
    const interruptedSocket = path.join(work, "interrupted.sock");
    const interrupted = startPlugin(pluginArgs(interruptedSocket), pluginEnv);
    const second = spawnPlugin(pluginArgs(socketPath), pluginEnv);
    const onFile = spawnPlugin(pluginArgs(plain), pluginEnv);
    assert.equal(await second.exited, 2);
    assert.match(second.output(), /is served by another running process/);
    assert.equal((await kms.status()).healthz, "ok", "the first plugin still serves");
    assert.equal(await onFile.exited, 2);
    assert.equal(readFileSync(plain, "utf8"), "not a socket");

    const running = await interrupted;
    assert.ok(statSync(interruptedSocket).isSocket());
    running.kill("SIGINT");
    assert.equal(await running.exited, 0);
    assert.equal(existsSync(interruptedSocket), false, "SIGINT removes the socket");
    assert.match(onFile.output(), /exists and is not a socket/);

    // A crash leaves the socket file behind; the next start replaces it.
    plugin.kill("SIGKILL");
    await plugin.exited;
    assert.ok(statSync(socketPath).isSocket(), "a killed plugin leaves a stale socket");
    plugin = await startPlugin(pluginArgs(socketPath), pluginEnv);
    kms.close();
    kms = kmsV2Client(socketPath);
    assert.equal((await kms.status()).healthz, "ok");
    assert.equal((statSync(socketPath).mode & 0o777).toString(8), "600");

    assert.equal(await plugin.stop(), 0);
    assert.equal(existsSync(socketPath), false, "SIGTERM removes the socket");
  });
});
