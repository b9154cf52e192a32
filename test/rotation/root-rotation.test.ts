// `tresor rootkey rotate` on a file root of trust: a new root key generation, every wrapped value
// (key versions, access-key secrets, import tokens, the root check value, service secrets)
// rewrapped while another node keeps serving, a failure part-way resumed by running it again, and
// the old key retired as root.key.old.

import assert from "node:assert/strict";
import { constants, publicEncrypt, randomBytes, createPublicKey } from "node:crypto";
import { access, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initDataDir, openDataDir, rotateDataDirRootKey, type DataDir } from "../../src/node/data-dir.js";
import { META_ROOT_KEY_RING, RotationInterruptedError, type RingState } from "../../src/service/root-rotation.js";
import { wrappedGeneration } from "../../src/rootkey/ring.js";
import { waitFor } from "../helpers/wait.js";
import { systemClock } from "../../src/service/clock.js";
import { rootCaller } from "../../src/service/access-control.js";
import { KmsService } from "../../src/service/kms-service.js";
import { WRAPPED_VALUE_KINDS, type Store, type WrappedValue } from "../../src/store/store.js";
import { spawn } from "node:child_process";
import { CLI_MAIN, childEnv, runCli } from "../helpers/server.js";

const caller = rootCaller("100000000001");

function serviceOn(dataDir: DataDir): KmsService {
  return new KmsService({ store: dataDir.store, rootOfTrust: dataDir.rootOfTrust, clock: systemClock, region: "local", defaultKeySpec: "SM4", cmkLimit: 1000 });
}

async function allWrapped(store: Store): Promise<WrappedValue[]> {
  const out: WrappedValue[] = [];
  for (const kind of WRAPPED_VALUE_KINDS) out.push(...(await store.listWrappedValues(kind, null, 10_000)));
  return out;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

describe("root key rotation (file root of trust)", () => {
  let base: string;
  let dir: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), "tresor-rotation-"));
    dir = join(base, "d");
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("rewraps everything while a node serves, resumes after a failure part-way, and retires the old key", async () => {
    const created = await initDataDir(dir, "local");
    const rootBefore = await readFile(join(dir, "root.key"));

    // A node that serves throughout.
    const node = await openDataDir(dir);
    const service = serviceOn(node);
    const blobs: { blob: Buffer; plaintext: Buffer }[] = [];
    const keys: string[] = [];
    for (let i = 0; i < 5; i++) {
      const key = await service.createKey(caller, { alias: `before-${i}`, description: "", keyUsage: "ENCRYPT_DECRYPT", keySpec: i % 2 ? "AES_256" : "SM4", tags: [] });
      keys.push(key.keyId);
      const plaintext = randomBytes(40);
      blobs.push({ blob: (await service.encrypt(caller, key.keyId, plaintext, { n: String(i) })).blob, plaintext });
    }
    await service.enableKeyRotation(caller, keys[0]!, 7);
    await service.rotateKey(caller, keys[0]!);
    const external = await service.createKey(caller, { alias: "byok", description: "", keyUsage: "ENCRYPT_DECRYPT", keySpec: "AES_256", tags: [], origin: "EXTERNAL" });
    const params = await service.getParametersForImport(caller, external.keyId, "RSA_2048", "RSAES_OAEP_SHA_256");
    const material = randomBytes(32);
    const encryptedMaterial = publicEncrypt({ key: createPublicKey({ key: params.publicKey, format: "der", type: "spki" }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, material);
    await service.importKeyMaterial(caller, { keyId: external.keyId, importToken: params.importToken, encryptedKeyMaterial: encryptedMaterial, validTo: 0 }); // makes the material-digest secret
    const params2 = await service.getParametersForImport(caller, external.keyId, "RSA_2048", "RSAES_OAEP_SHA_1"); // an unused token
    const extra = await service.access.createRootAccessKey("100000000001");
    const before = await allWrapped(node.store);
    assert.ok(before.length >= 5 + 1 + 1 + 2 + 2, `found ${before.length} wrapped values`);
    assert.ok(before.every((v) => wrappedGeneration(v.wrapped) === 0));

    // The first run stops after 4 values, as a crash would.
    await assert.rejects(rotateDataDirRootKey(dir, { graceMs: 0, pageSize: 3, failAfterRewraps: 4 }), RotationInterruptedError);
    const ring = JSON.parse((await node.store.getMeta(META_ROOT_KEY_RING))!) as RingState;
    assert.equal(ring.current, 1);
    assert.equal(ring.rotation?.from, 0);
    assert.equal(ring.rotation?.rewrapped, 4);
    assert.ok(await exists(join(dir, "root.key.next")));
    const mixed = await allWrapped(node.store);
    assert.equal(mixed.filter((v) => wrappedGeneration(v.wrapped) === 1).length, 4);

    // Meanwhile the node serves old and new values, and (once it notices the new generation) wraps with it.
    for (const { blob, plaintext } of blobs) assert.deepEqual((await service.decrypt(caller, blob, { n: String(blobs.findIndex((b) => b.blob === blob)) })).plaintext, plaintext);
    await waitFor("the node to wrap with the new generation", async () => wrappedGeneration(await node.rootOfTrust.wrap(Buffer.from("probe"), Buffer.from("probe"))) === 1, { timeoutMs: 10_000 });
    const during = await service.createKey(caller, { alias: "during", description: "", keyUsage: "ENCRYPT_DECRYPT", tags: [] });
    assert.equal(wrappedGeneration((await node.store.getKeyVersion(during.keyId, 1))!.wrappedMaterial), 1, "new values use the new generation");
    const duringBlob = (await service.encrypt(caller, during.keyId, Buffer.from("during"), {})).blob;

    // Running it again resumes and finishes.
    const lines: string[] = [];
    const result = await rotateDataDirRootKey(dir, { graceMs: 0, pageSize: 3, progress: (l) => lines.push(l) });
    assert.equal(result.resumed, true);
    assert.deepEqual([result.from, result.to], [0, 1]);
    assert.match(lines[0]!, /resuming/);
    const afterRotation = await allWrapped(node.store);
    assert.equal(afterRotation.length, before.length + 1);
    assert.ok(afterRotation.every((v) => wrappedGeneration(v.wrapped) === 1), "every value on the new generation");
    assert.equal(wrappedGeneration(Buffer.from((await node.store.getMeta("root_check"))!, "base64")), 1);
    assert.equal(wrappedGeneration(Buffer.from((await node.store.getMeta("material-digest-key"))!, "base64")), 1);
    assert.deepEqual(await readFile(join(dir, "root.key.old")), rootBefore, "the old key is kept as root.key.old");
    assert.notDeepEqual(await readFile(join(dir, "root.key")), rootBefore);
    assert.equal(await exists(join(dir, "root.key.next")), false);
    const finished = JSON.parse((await node.store.getMeta(META_ROOT_KEY_RING))!) as RingState;
    assert.equal(finished.rotation, undefined);
    assert.deepEqual(Object.keys(finished.generations), ["1"]);
    assert.deepEqual(finished.retired, [0]);

    // The serving node goes on without a restart.
    for (const [i, { blob, plaintext }] of blobs.entries()) assert.deepEqual((await service.decrypt(caller, blob, { n: String(i) })).plaintext, plaintext);
    assert.equal((await service.decrypt(caller, duringBlob, {})).plaintext.toString(), "during");
    assert.equal(await (await service.access.resolveAccessKey(extra.secretId))!.unwrapSecret(), extra.secretKey);
    service.close();
    await node.close();

    // A node started afterwards, without the old key at all.
    await rm(join(dir, "root.key.old"));
    const fresh = await openDataDir(dir);
    const freshService = serviceOn(fresh);
    try {
      for (const [i, { blob, plaintext }] of blobs.entries()) assert.deepEqual((await freshService.decrypt(caller, blob, { n: String(i) })).plaintext, plaintext);
      assert.equal(await (await freshService.access.resolveAccessKey(created.secretId))!.unwrapSecret(), created.secretKey);
      // The import token made before the rotation still imports (the same material, as BYOK requires).
      const again = publicEncrypt({ key: createPublicKey({ key: params2.publicKey, format: "der", type: "spki" }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, material);
      await freshService.importKeyMaterial(caller, { keyId: external.keyId, importToken: params2.importToken, encryptedKeyMaterial: again, validTo: 0 });
    } finally {
      freshService.close();
      await fresh.close();
    }

    // The next rotation refuses while root.key.old is there, and goes to generation 2 once it is gone.
    const second = await runCli(["rootkey", "rotate", "--data-dir", dir, "--grace-seconds", "0", "--json", "--quiet"]);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(JSON.parse(second.stdout), { from: 1, to: 2, rewrapped: afterRotation.length, resumed: false, retiredFile: join(dir, "root.key.old") });
    const third = await runCli(["rootkey", "rotate", "--data-dir", dir, "--grace-seconds", "0"]);
    assert.notEqual(third.code, 0);
    assert.match(third.stderr, /root\.key\.old is still there/);
    const last = await openDataDir(dir);
    const lastService = serviceOn(last);
    try {
      for (const [i, { blob, plaintext }] of blobs.entries()) assert.deepEqual((await lastService.decrypt(caller, blob, { n: String(i) })).plaintext, plaintext);
      assert.ok((await allWrapped(last.store)).every((v) => wrappedGeneration(v.wrapped) === 2));
    } finally {
      lastService.close();
      await last.close();
    }
  });

  it("resumes after the rotating process is killed part-way", async () => {
    const killDir = join(base, "killed");
    await initDataDir(killDir, "local");
    const node = await openDataDir(killDir);
    const service = serviceOn(node);
    const blobs: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const key = await service.createKey(caller, { alias: `k-${i}`, description: "", keyUsage: "ENCRYPT_DECRYPT", tags: [] });
      if (i % 50 === 0) blobs.push((await service.encrypt(caller, key.keyId, Buffer.from(`blob ${i}`), {})).blob);
    }
    const total = (await allWrapped(node.store)).length;

    // Killed (SIGKILL: no cleanup at all) as soon as it reports its first page.
    const child = spawn(process.execPath, [CLI_MAIN, "rootkey", "rotate", "--data-dir", killDir, "--grace-seconds", "0", "--page-size", "5"], { env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
      if (/keyVersion: rewrapped/.test(stderr)) child.kill("SIGKILL");
    });
    assert.equal(await exited, "SIGKILL", `the rotation finished before it could be killed:\n${stderr}`);
    const ring = JSON.parse((await node.store.getMeta(META_ROOT_KEY_RING))!) as RingState;
    assert.equal(ring.rotation?.phase, "rewrap", "killed in the middle of the first pass");
    const partial = (await allWrapped(node.store)).filter((v) => wrappedGeneration(v.wrapped) === 1).length;
    assert.ok(partial > 0 && partial < total, `${partial} of ${total} rewrapped when killed`);
    // The node serves through it all.
    for (const [i, blob] of blobs.entries()) assert.equal((await service.decrypt(caller, blob, {})).plaintext.toString(), `blob ${i * 50}`);

    const resumed = await runCli(["rootkey", "rotate", "--data-dir", killDir, "--grace-seconds", "0", "--json", "--quiet"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout) as { resumed: boolean; from: number; to: number; rewrapped: number };
    assert.deepEqual([result.resumed, result.from, result.to], [true, 0, 1]);
    assert.ok((await allWrapped(node.store)).every((v) => wrappedGeneration(v.wrapped) === 1));
    for (const [i, blob] of blobs.entries()) assert.equal((await service.decrypt(caller, blob, {})).plaintext.toString(), `blob ${i * 50}`);
    service.close();
    await node.close();
  });
});
