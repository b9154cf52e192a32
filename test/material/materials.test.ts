// The key-material layer on its own: the choice by protection level, and that lower-level failures
// leave it as MaterialError (the service translates only those).
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { KEY_LIFECYCLE_DEFAULTS, type KeyRecord } from "../../src/keys/key.js";
import { MaterialError, type MaterialFailure, type MaterialKey } from "../../src/material/material.js";
import { KeyMaterials } from "../../src/material/materials.js";
import { FileRootOfTrust } from "../../src/rootkey/file.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { rsaEncrypt, rsaPublicKey, rsaVerify } from "../../src/crypto/rsa.js";

function failure(expected: MaterialFailure): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof MaterialError, `expected MaterialError ${expected}, got ${String(e)}`);
    assert.equal(e.failure, expected);
    return true;
  };
}

/** The key record a material key is stored under (Enabled, SOFTWARE, version 1). */
function storedKey(key: MaterialKey, alias: string): KeyRecord {
  return {
    ...key,
    alias,
    description: "",
    origin: "TENCENT_KMS",
    state: "Enabled",
    creatorUin: "100000000001",
    owner: "user",
    createTime: 0,
    deletionDate: 0,
    currentVersion: 1,
    tags: [],
    ...KEY_LIFECYCLE_DEFAULTS,
  };
}

describe("KeyMaterials", () => {
  let dir: string;
  let store: SqliteStore;
  let root: FileRootOfTrust;
  let materials: KeyMaterials;
  const warnings: string[] = [];
  const key: MaterialKey = { keyId: "0b7c6a8e-6f7d-4a4e-9d59-2f1b3a4c5d6e", keySpec: "AES_256", keyUsage: "ENCRYPT_DECRYPT" };
  const iv = Buffer.alloc(12, 7);
  const aad = Buffer.from("aad");

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tresor-material-"));
    root = await FileRootOfTrust.create(path.join(dir, "root.key"));
    store = await SqliteStore.open(path.join(dir, "tresor.db"));
    const logger = { warn: (_f: Record<string, unknown>, m: string) => void warnings.push(m), error: (_f: Record<string, unknown>, m: string) => void warnings.push(m) };
    materials = new KeyMaterials({ store, rootOfTrust: root, hsmKeys: undefined, cache: { maxEntries: 10, ttlMs: 60_000 }, now: () => 0, logger });
    const made = await materials.software.generate(key, 1);
    assert.equal(made.publicKey, null);
    await store.insertKeyWithinLimit(storedKey(key, "material-test"), { keyId: key.keyId, version: 1, wrappedMaterial: made.stored, publicKey: null, createTime: 0 }, 10);
  });

  after(async () => {
    materials.close();
    await store.close();
    await root.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("picks the implementation by protection level", () => {
    assert.equal(materials.for({ protectionLevel: "SOFTWARE" }), materials.software);
    assert.equal(materials.for({ protectionLevel: "HSM" }), materials.hsm);
    assert.deepEqual(materials.levels("AES_256"), ["SOFTWARE"], "no HSM on this node");
  });

  it("seals and opens with the stored version, from the cache the second time", async () => {
    const software = materials.for({ protectionLevel: "SOFTWARE" });
    const { ciphertext, tag } = await software.seal(key, 1, iv, Buffer.from("hello"), aad);
    assert.equal((await software.open(key, 1, iv, ciphertext, tag, aad)).toString(), "hello");
    assert.ok(materials.cacheStats().hits >= 1);
  });

  it("turns a tag that does not verify into Undecryptable", async () => {
    const { ciphertext, tag } = await materials.software.seal(key, 1, iv, Buffer.from("hello"), aad);
    tag[0]! ^= 1;
    await assert.rejects(materials.software.open(key, 1, iv, ciphertext, tag, aad), failure("Undecryptable"));
  });

  it("signs and decrypts with an RSA key in the RSA thread: the event loop turns before the answer", async () => {
    const rsa: MaterialKey = { keyId: "5c2e0f6a-1b3d-4c5e-8f70-9a1b2c3d4e5f", keySpec: "RSA_2048", keyUsage: "ASYMMETRIC_DECRYPT_RSA_2048" };
    const made = await materials.software.generate(rsa, 1);
    await store.insertKeyWithinLimit(storedKey(rsa, "material-rsa"), { keyId: rsa.keyId, version: 1, wrappedMaterial: made.stored, publicKey: made.publicKey, createTime: 0 }, 10);
    const publicKey = rsaPublicKey(made.publicKey!);
    const message = Buffer.from("signed off the event loop");
    let turns = 0;
    const count = () => {
      turns++;
      if (turns < 1000) setImmediate(count);
    };
    setImmediate(count);
    const signature = await materials.software.sign(rsa, 1, "RSA_PSS_SHA_256", message, "RAW");
    // In process the signature would be made inside the call, before any turn of the event loop.
    assert.ok(turns > 0, "the event loop turned while the signature was made");
    assert.equal(rsaVerify(publicKey, "RSA_PSS_SHA_256", message, signature), true);
    const plaintext = await materials.software.decrypt(rsa, 1, "RSAES_OAEP_SHA_256", rsaEncrypt(publicKey, "RSAES_OAEP_SHA_256", Buffer.from("secret")));
    assert.equal(plaintext.toString(), "secret");
    await assert.rejects(materials.software.decrypt(rsa, 1, "RSAES_OAEP_SHA_256", Buffer.alloc(256, 1)), failure("Undecryptable"));
  });

  it("turns a version the store lacks into NoSuchVersion", async () => {
    await assert.rejects(materials.software.open(key, 9, iv, Buffer.alloc(5), Buffer.alloc(16), aad), failure("NoSuchVersion"));
  });

  it("refuses HSM keys on a node without an HSM as Unsupported, and logs queued objects it cannot destroy", async () => {
    await assert.rejects(materials.hsm.generate(key, 1), failure("Unsupported"));
    await assert.rejects(materials.hsm.seal(key, 1, iv, Buffer.from("x"), aad), failure("Unsupported"));
    await store.transaction((tx) => materials.hsm.retire(tx, key.keyId));
    await materials.destroyRetired();
    assert.ok(warnings.some((w) => w.includes("no HSM")), warnings.join("; "));
  });
});
