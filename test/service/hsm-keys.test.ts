// CMKs of ProtectionLevel HSM through KmsService over a real SoftHSM2 token: the material is a
// non-extractable token object, the store holds only its reference, every operation runs in the
// token, rotation makes a new object, scheduled deletion destroys them (also when the HSM was away
// at the time), and an absent token is unavailability, not a wrong answer.

import assert from "node:assert/strict";
import { constants, createHash, createPublicKey, publicEncrypt, verify } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { decodeBlob } from "../../src/keys/blob.js";
import { FileRootOfTrust } from "../../src/rootkey/file.js";
import { Pkcs11RootOfTrust } from "../../src/rootkey/pkcs11.js";
import { RootOfTrustUnavailableError } from "../../src/rootkey/root-of-trust.js";
import { serviceUnavailable } from "../../src/service/availability.js";
import { rootCaller } from "../../src/service/access-control.js";
import { KmsService, type CreateKeyInput } from "../../src/service/kms-service.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { ManualClock } from "../api/helpers-inprocess.js";
import { SoftHsm, softhsmSkip, type TestToken } from "../helpers/softhsm.js";
import { kmsError } from "./fixture.js";

const REINITIALIZE_WAIT_MS = 1100;
const DAY_MS = 86_400_000;
const caller = rootCaller("100000000001");
let aliases = 0;
const aesHsm = (): CreateKeyInput => ({ alias: `hsm-${aliases++}`, description: "", keyUsage: "ENCRYPT_DECRYPT", keySpec: "AES_256", tags: [], protectionLevel: "HSM" });

/** The token object's CKA_LABEL: the reference is 'H', 0x01, then the label. */
function labelOf(reference: Buffer): string {
  assert.equal(reference[0], 0x48);
  assert.equal(reference[1], 0x01);
  return reference.subarray(2).toString("utf8");
}

describe("HSM-protected keys (SoftHSM2)", { skip: softhsmSkip }, () => {
  let hsm: SoftHsm;
  let token: TestToken;
  let dir: string;
  let root: Pkcs11RootOfTrust;
  let store: SqliteStore;
  let clock: ManualClock;
  let service: KmsService;

  before(async () => {
    hsm = await SoftHsm.create();
    token = await hsm.initToken("tresor-hsm-keys");
    dir = await mkdtemp(path.join(tmpdir(), "tresor-hsm-keys-"));
    root = await Pkcs11RootOfTrust.create({ module: hsm.module, tokenLabel: token.label, pin: token.pin, keyLabel: "tresor-root" });
    store = await SqliteStore.open(path.join(dir, "tresor.db"));
    clock = new ManualClock(Date.UTC(2026, 0, 15, 12, 0, 0));
    service = new KmsService({ store, rootOfTrust: root, clock, region: "local", defaultKeySpec: "SM4", cmkLimit: 1000 });
  });
  after(async () => {
    service?.close();
    await store?.close();
    await root?.close();
    await rm(dir, { recursive: true, force: true });
    await hsm?.remove();
  });

  it("generates the material in the token as a sensitive, never-extractable object; the store keeps only its reference", async () => {
    const key = await service.createKey(caller, aesHsm());
    assert.equal(key.protectionLevel, "HSM");
    assert.equal((await service.describeKey(caller, key.keyId)).protectionLevel, "HSM");
    const versions = await store.listKeyVersions(key.keyId);
    assert.equal(versions.length, 1);
    const reference = versions[0]!.wrappedMaterial;
    const label = labelOf(reference);
    assert.match(label, new RegExp(`^tresor-cmk/${key.keyId}/v1/[0-9a-f]{16}$`));
    assert.equal(reference.length, 2 + Buffer.byteLength(label), "nothing but the reference is stored");
    assert.equal(versions[0]!.publicKey, null);
    const report = await hsm.inspectKey(token, label);
    assert.equal(report.found, 1);
    assert.equal(report.sensitive, true);
    assert.equal(report.extractable, false);
    assert.equal(report.alwaysSensitive, true);
    assert.equal(report.neverExtractable, true);
    assert.equal(report.value, "CKR_ATTRIBUTE_SENSITIVE", "the token refuses to reveal the material");
    // A software key in the same store is stored wrapped, and its protection level says so.
    const soft = await service.createKey(caller, { ...aesHsm(), protectionLevel: "SOFTWARE" });
    assert.equal(soft.protectionLevel, "SOFTWARE");
    assert.equal((await store.listKeyVersions(soft.keyId))[0]!.wrappedMaterial[0], 0x02, "wrapped by the pkcs11 root of trust");
  });

  it("encrypts and decrypts in the token with the same blob format; GenerateDataKey and ReEncrypt too", async () => {
    const key = await service.createKey(caller, aesHsm());
    const soft = await service.createKey(caller, { ...aesHsm(), protectionLevel: "SOFTWARE" });
    const context = { purpose: "hsm-test" };
    for (const plaintext of [Buffer.from("kept by the HSM"), Buffer.alloc(0), Buffer.alloc(4096, 7)]) {
      const { blob } = await service.encrypt(caller, key.keyId, plaintext, context);
      const parsed = decodeBlob(blob);
      assert.equal(parsed.algorithm, "AES-256-GCM");
      assert.equal(parsed.keyId, key.keyId);
      assert.equal(parsed.keyVersion, 1);
      assert.equal(parsed.ciphertext.length, plaintext.length);
      assert.deepEqual((await service.decrypt(caller, blob, context)).plaintext, plaintext);
      await assert.rejects(service.decrypt(caller, blob, { purpose: "other" }), kmsError("InvalidCiphertext"));
      const altered = Buffer.from(blob);
      altered[altered.length - 1]! ^= 1;
      await assert.rejects(service.decrypt(caller, altered, context), kmsError("InvalidCiphertext"));
    }
    const dataKey = await service.generateDataKey(caller, key.keyId, 32, {});
    assert.deepEqual((await service.decrypt(caller, dataKey.blob, {})).plaintext, dataKey.plaintext);
    // HSM → software → HSM.
    const toSoft = await service.reEncrypt(caller, { blob: dataKey.blob, destinationKeyId: soft.keyId, sourceContext: {}, destinationContext: { to: "soft" } });
    assert.equal(toSoft.keyId, soft.keyId);
    const back = await service.reEncrypt(caller, { blob: toSoft.blob, destinationKeyId: key.keyId, sourceContext: { to: "soft" }, destinationContext: {} });
    assert.deepEqual((await service.decrypt(caller, back.blob, {})).plaintext, dataKey.plaintext);
    // A blob of another HSM key's object does not open under this one: the object is named by key and version.
    const other = await service.createKey(caller, aesHsm());
    const otherBlob = (await service.encrypt(caller, other.keyId, Buffer.from("x"), {})).blob;
    const swapped = Buffer.from(otherBlob);
    const hex = (id: string) => Buffer.from(id.replaceAll("-", ""), "hex");
    assert.equal(swapped.indexOf(hex(other.keyId)), 2, "the key id follows the format byte and algorithm");
    hex(key.keyId).copy(swapped, 2);
    await assert.rejects(service.decrypt(caller, swapped, {}), kmsError("InvalidCiphertext"));
  });

  it("refuses a store row whose reference names another key's object", async () => {
    const a = await service.createKey(caller, aesHsm());
    const b = await service.createKey(caller, aesHsm());
    const bRef = (await store.listKeyVersions(b.keyId))[0]!.wrappedMaterial;
    // A second version of `a` pointing at b's object, as a tampered store would have it.
    await store.insertKeyVersion({ keyId: a.keyId, version: 2, wrappedMaterial: bRef, publicKey: null, createTime: 0 });
    await store.updateKey({ ...(await store.getKey(a.keyId))!, currentVersion: 2 });
    await assert.rejects(service.encrypt(caller, a.keyId, Buffer.from("x"), {}), kmsError("InternalError"));
  });

  it("refuses what the token cannot hold, naming ProtectionLevel", async () => {
    await assert.rejects(service.createKey(caller, { ...aesHsm(), keySpec: "SM4" }), (e: Error) => kmsError("UnsupportedOperation")(e) && /ProtectionLevel.*SM4/.test(e.message));
    await assert.rejects(service.createKey(caller, { ...aesHsm(), origin: "EXTERNAL" }), kmsError("UnsupportedOperation"));
    const sm2: CreateKeyInput = { alias: `hsm-${aliases++}`, description: "", keyUsage: "ASYMMETRIC_SIGN_VERIFY_SM2", tags: [], protectionLevel: "HSM" };
    await assert.rejects(service.createKey(caller, sm2), kmsError("UnsupportedOperation"));
    await assert.rejects(service.createKey(caller, { ...sm2, keyUsage: "ASYMMETRIC_DECRYPT_SM2" }), kmsError("UnsupportedOperation"));
    const { symmetric, signVerify, asymmetric } = service.listAlgorithms(caller);
    const hsmOnes = [...signVerify, ...asymmetric].filter((a) => a.protectionLevels.includes("HSM")).map((a) => a.keyUsage);
    assert.deepEqual(hsmOnes.sort(), [
      "ASYMMETRIC_DECRYPT_RSA_2048",
      "ASYMMETRIC_DECRYPT_RSA_3072",
      "ASYMMETRIC_DECRYPT_RSA_4096",
      "ASYMMETRIC_SIGN_VERIFY_ECC",
      "ASYMMETRIC_SIGN_VERIFY_ECDSA384",
      "ASYMMETRIC_SIGN_VERIFY_ECDSA521",
      "ASYMMETRIC_SIGN_VERIFY_RSA_2048",
      "ASYMMETRIC_SIGN_VERIFY_RSA_3072",
      "ASYMMETRIC_SIGN_VERIFY_RSA_4096",
    ]);
    assert.deepEqual(
      symmetric.map((a) => [a.algorithm, a.protectionLevels]),
      [
        ["SM4", ["SOFTWARE"]],
        ["AES_256", ["SOFTWARE", "HSM"]],
        ["HMAC_SHA256", ["SOFTWARE"]],
        ["HMAC_SHA384", ["SOFTWARE"]],
        ["HMAC_SHA512", ["SOFTWARE"]],
        ["HMAC_SM3", ["SOFTWARE"]],
      ],
    );
    const agreement: CreateKeyInput = { alias: `hsm-${aliases++}`, description: "", keyUsage: "ASYMMETRIC_KEY_AGREEMENT_ECC_P256", tags: [], protectionLevel: "HSM" };
    await assert.rejects(service.createKey(caller, agreement), kmsError("UnsupportedOperation"));
  });

  it("refuses ProtectionLevel HSM under a file root of trust", async () => {
    const fileRoot = await FileRootOfTrust.create(path.join(dir, "root.key"));
    const fileService = new KmsService({ store, rootOfTrust: fileRoot, clock, region: "local", defaultKeySpec: "SM4", cmkLimit: 1000 });
    try {
      await assert.rejects(fileService.createKey(caller, aesHsm()), (e: Error) => kmsError("UnsupportedOperation")(e) && /"ProtectionLevel" HSM needs .*pkcs11/.test(e.message));
      assert.ok(fileService.listAlgorithms(caller).symmetric.every((a) => a.protectionLevels.join() === "SOFTWARE"));
    } finally {
      fileService.close();
      await fileRoot.close();
    }
  });

  it("signs with RSA (PSS, PKCS#1 v1.5) and ECDSA (P-256, P-384) keys inside the token; node:crypto verifies", async () => {
    const message = Buffer.from("signed inside the HSM");
    const cases = [
      { keyUsage: "ASYMMETRIC_SIGN_VERIFY_RSA_2048", algorithm: "RSA_PSS_SHA_256", hash: "sha256", verify: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } },
      { keyUsage: "ASYMMETRIC_SIGN_VERIFY_RSA_3072", algorithm: "RSA_PKCS1_SHA_256", hash: "sha256", verify: { padding: constants.RSA_PKCS1_PADDING } },
      { keyUsage: "ASYMMETRIC_SIGN_VERIFY_ECC", algorithm: "ECC_P256_R1", hash: "sha256", verify: { dsaEncoding: "der" } },
      { keyUsage: "ASYMMETRIC_SIGN_VERIFY_ECDSA384", algorithm: "ECDSA_P384_SHA_384", hash: "sha384", verify: { dsaEncoding: "der" } },
    ] as const;
    for (const c of cases) {
      const key = await service.createKey(caller, { alias: `hsm-${aliases++}`, description: "", keyUsage: c.keyUsage, tags: [], protectionLevel: "HSM" });
      const [version] = await store.listKeyVersions(key.keyId);
      const label = labelOf(version!.wrappedMaterial);
      const report = await hsm.inspectKey(token, label, "private");
      assert.equal(report.found, 1, c.keyUsage);
      assert.equal(report.sensitive, true);
      assert.equal(report.extractable, false);
      assert.equal(report.neverExtractable, true);
      assert.match(String(report.value), /^CKR_ATTRIBUTE_SENSITIVE$/, "the private key is not readable");
      const publicKey = createPublicKey({ key: (await service.getPublicKey(caller, key.keyId)).publicKey, format: "der", type: "spki" });
      for (const messageType of ["RAW", "DIGEST"] as const) {
        const input = messageType === "RAW" ? message : createHash(c.hash).update(message).digest();
        const { signature } = await service.sign(caller, { keyId: key.keyId, algorithm: c.algorithm, message: input, messageType });
        assert.ok(verify(c.hash, message, { key: publicKey, ...c.verify }, signature), `${c.algorithm} ${messageType} verifies with node:crypto`);
        assert.equal(await service.verify(caller, { keyId: key.keyId, algorithm: c.algorithm, message: input, messageType, signature }), true);
        const bad = Buffer.from(signature);
        bad[bad.length - 1]! ^= 1;
        assert.equal(await service.verify(caller, { keyId: key.keyId, algorithm: c.algorithm, message: input, messageType, signature: bad }), false);
      }
    }
  });

  it("decrypts RSAES-OAEP inside the token and refuses PKCS#1 v1.5 for HSM keys", async () => {
    const key = await service.createKey(caller, { alias: `hsm-${aliases++}`, description: "", keyUsage: "ASYMMETRIC_DECRYPT_RSA_2048", tags: [], protectionLevel: "HSM" });
    const publicKey = createPublicKey({ key: (await service.getPublicKey(caller, key.keyId)).publicKey, format: "der", type: "spki" });
    const secret = Buffer.from("for the HSM's eyes only");
    const ciphertext = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, secret);
    assert.deepEqual((await service.asymmetricDecrypt(caller, "AsymmetricRsaDecrypt", key.keyId, "RSAES_OAEP_SHA_1", ciphertext)).plaintext, secret);
    const bad = Buffer.from(ciphertext);
    bad[10]! ^= 1;
    await assert.rejects(service.asymmetricDecrypt(caller, "AsymmetricRsaDecrypt", key.keyId, "RSAES_OAEP_SHA_1", bad), kmsError("DecryptError"));
    // SoftHSM2 2.6 does OAEP with SHA-1 only: SHA-256 is refused clearly, not as a failed decryption.
    const sha256 = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, secret);
    // (A token that offers it decrypts; the check then is that it decrypts right.)
    try {
      assert.deepEqual((await service.asymmetricDecrypt(caller, "AsymmetricRsaDecrypt", key.keyId, "RSAES_OAEP_SHA_256", sha256)).plaintext, secret);
    } catch (e) {
      assert.ok(kmsError("UnsupportedOperation")(e) && /SHA256.*CKR_[A-Z_]+/.test((e as Error).message), String(e));
    }
    const pkcs1 = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, secret);
    await assert.rejects(service.asymmetricDecrypt(caller, "AsymmetricRsaDecrypt", key.keyId, "RSAES_PKCS1_V1_5", pkcs1), kmsError("UnsupportedOperation"));
    // A decryption key does not sign, in the token either.
    const [version] = await store.listKeyVersions(key.keyId);
    assert.equal((await hsm.inspectKey(token, labelOf(version!.wrappedMaterial), "private")).extractable, false);
  });

  it("rotates to a new token object; old ciphertexts still decrypt with the old one", async () => {
    const key = await service.createKey(caller, aesHsm());
    const old = (await service.encrypt(caller, key.keyId, Buffer.from("version 1"), {})).blob;
    await service.enableKeyRotation(caller, key.keyId, 7);
    await service.rotateKey(caller, key.keyId);
    const versions = await store.listKeyVersions(key.keyId);
    assert.deepEqual(versions.map((v) => v.version), [1, 2]);
    const [l1, l2] = versions.map((v) => labelOf(v.wrappedMaterial));
    assert.notEqual(l1, l2);
    assert.match(l2!, new RegExp(`^tresor-cmk/${key.keyId}/v2/`));
    assert.equal((await hsm.inspectKey(token, l2!)).extractable, false);
    const fresh = (await service.encrypt(caller, key.keyId, Buffer.from("version 2"), {})).blob;
    assert.equal(decodeBlob(fresh).keyVersion, 2);
    assert.equal((await service.decrypt(caller, old, {})).plaintext.toString(), "version 1");
    assert.equal((await service.decrypt(caller, fresh, {})).plaintext.toString(), "version 2");
  });

  it("destroys the token objects when scheduled deletion ends, even if the HSM was away then", async () => {
    const key = await service.createKey(caller, aesHsm());
    await service.enableKeyRotation(caller, key.keyId, 7);
    await service.rotateKey(caller, key.keyId);
    const labels = (await store.listKeyVersions(key.keyId)).map((v) => labelOf(v.wrappedMaterial));
    const second = await service.createKey(caller, aesHsm());
    const secondLabel = labelOf((await store.listKeyVersions(second.keyId))[0]!.wrappedMaterial);
    await service.disableKey(caller, key.keyId);
    await service.scheduleKeyDeletion(caller, key.keyId, 7);
    await service.disableKey(caller, second.keyId);
    await service.scheduleKeyDeletion(caller, second.keyId, 7);

    clock.advance(7 * DAY_MS + 1000);
    const restore = await hsm.removeToken(token);
    try {
      const report = await service.runDueJobs();
      // With the token away the rows are deleted (the keys cannot be used again) and the objects wait in the queue.
      assert.deepEqual(report.deleted.sort(), [key.keyId, second.keyId].sort());
      // (An earlier test's key is due for rotation too, and that does fail without the token.)
      assert.ok(!report.failed.includes(key.keyId) && !report.failed.includes(second.keyId));
    } finally {
      await restore();
    }
    assert.equal(await store.getKey(key.keyId), undefined);
    const queued = JSON.parse((await store.getMeta("hsm-objects-to-destroy"))!) as string[];
    assert.equal(queued.length, 3);
    for (const label of [...labels, secondLabel]) assert.equal((await hsm.inspectKey(token, label)).found, 1, `${label} is still there while queued`);

    await sleep(REINITIALIZE_WAIT_MS);
    await service.runDueJobs();
    for (const label of [...labels, secondLabel]) assert.equal((await hsm.inspectKey(token, label)).found, 0, `${label} destroyed`);
    assert.deepEqual(JSON.parse((await store.getMeta("hsm-objects-to-destroy"))!), []);
    // Nothing left to destroy; the rotation that failed while the token was away succeeds now.
    assert.deepEqual((await service.runDueJobs()).failed, []);
  });

  it("fails fast with ServiceUnavailable while the token is away and recovers when it returns", async () => {
    const key = await service.createKey(caller, aesHsm());
    const blob = (await service.encrypt(caller, key.keyId, Buffer.from("before"), {})).blob;
    // A fresh service, so nothing (not even the reference) is cached.
    const cold = new KmsService({ store, rootOfTrust: root, clock, region: "local", defaultKeySpec: "SM4", cmkLimit: 1000 });
    const restore = await hsm.removeToken(token);
    try {
      for (const [what, run] of [
        ["encrypt", () => service.encrypt(caller, key.keyId, Buffer.from("x"), {})],
        ["decrypt", () => service.decrypt(caller, blob, {})],
        ["cold decrypt", () => cold.decrypt(caller, blob, {})],
        ["create", () => service.createKey(caller, aesHsm())],
      ] as const) {
        const started = performance.now();
        await assert.rejects(run(), (e: unknown) => {
          assert.ok(e instanceof RootOfTrustUnavailableError, `${what}: ${String(e)}`);
          assert.match(e.message, /CKR_[A-Z_]+|unavailable/);
          assert.equal(serviceUnavailable(e)?.code, "ServiceUnavailable");
          return true;
        });
        assert.ok(performance.now() - started < 500, `${what} failed fast`);
      }
    } finally {
      await restore();
    }
    await sleep(REINITIALIZE_WAIT_MS);
    assert.equal((await service.decrypt(caller, blob, {})).plaintext.toString(), "before");
    assert.equal((await cold.decrypt(caller, blob, {})).plaintext.toString(), "before");
    cold.close();
  });
});
