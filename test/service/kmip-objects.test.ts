// The exportable KMIP class in the core: its material leaves only through getMaterial and only with
// kms:GetKeyMaterial; CMKs never do and are invisible to KMIP's operations; AES-256 KMIP keys serve
// the Tencent actions while EXPORT_ONLY ones do not; states follow KMIP_STATE_OF.

import assert from "node:assert/strict";
import { createDecipheriv, generateKeyPairSync, randomUUID, verify } from "node:crypto";
import { performance } from "node:perf_hooks";
import { after, before, describe, it } from "node:test";
import { aesGcmDecrypt } from "../../src/crypto/aes.js";
import { sm4GcmDecrypt } from "../../src/crypto/sm4-gcm.js";
import { KMIP_LIFECYCLE_ONLY, KMIP_STATE_OF } from "../../src/keys/lifecycle.js";
import type { Caller } from "../../src/service/access-control.js";
import { KmsError } from "../../src/service/errors.js";
import { kmipState } from "../../src/service/kmip-objects.js";
import { keyMetadata } from "../../src/api/tencent/actions.js";
import { kmsError, openService, type ServiceFixture } from "./fixture.js";

let f: ServiceFixture;

before(async () => {
  f = await openService();
});

after(async () => {
  await f.close();
});

/** A caller of the same account whose policies allow exactly `actions` (kms:…), on every resource. */
function allowing(...actions: string[]): Caller {
  const allowed = new Set(actions);
  return {
    ...f.caller,
    principal: { id: "200000000009", kind: "user", name: "db" },
    permissions: {
      require(action: string) {
        if (!allowed.has(action)) throw new KmsError("UnauthorizedOperation", `${action} is not allowed`);
      },
      decide: (action: string) => (allowed.has(action) ? { allowed: true, reason: "allow" } : { allowed: false, reason: "implicit-deny" }),
    },
  };
}

const newKey = (name: string, keySpec: "AES_256" | "AES_128" | "SM4" = "AES_256") => f.service.kmip.createSymmetric(f.caller, { names: [name], usageMask: 12, keySpec });

describe("KMIP objects in the core", () => {
  it("creates Pre-Active objects of the KMIP class, shown as such by the Tencent door's metadata", async () => {
    const key = await newKey("class-shown");
    assert.equal(key.keyClass, "KMIP");
    assert.equal(key.kmip?.state, "PreActive");
    assert.equal(key.state, KMIP_STATE_OF.PreActive);
    assert.equal(key.alias, "class-shown");
    assert.equal(keyMetadata((await f.store.getKey(key.keyId))!).KeyClass, "KMIP");
    assert.equal(keyMetadata(await f.createKey()).KeyClass, "CMK");
  });

  it("gives the material only with kms:GetKeyMaterial, the same bytes every time", async () => {
    const key = await newKey("exported");
    await assert.rejects(f.service.kmip.getMaterial(allowing("kms:DescribeKey"), key.keyId), kmsError("UnauthorizedOperation"));
    const first = await f.service.kmip.getMaterial(allowing("kms:GetKeyMaterial"), key.keyId);
    const second = await f.service.kmip.getMaterial(f.caller, key.keyId);
    assert.equal(first.material.length, 32);
    assert.deepEqual(first.material, second.material);
  });

  it("never exports a CMK, nor lets any KMIP operation see one", async () => {
    const cmk = await f.createKey();
    await assert.rejects(f.service.kmip.getMaterial(f.caller, cmk.keyId), kmsError("CmkNotFound"));
    await assert.rejects(f.service.kmip.attributes(f.caller, cmk.keyId), kmsError("CmkNotFound"));
    await assert.rejects(f.service.kmip.destroy(f.caller, cmk.keyId), kmsError("CmkNotFound"));
    assert.ok(!(await f.service.kmip.locate(f.caller, { maxItems: 10_000, offset: 0 })).includes(cmk.keyId));
    assert.equal((await f.store.getKey(cmk.keyId))?.state, "Enabled");
  });

  it("lets an Active AES-256 KMIP key encrypt through the Tencent API, with the material Get exports", async () => {
    const key = await newKey("one-core");
    await assert.rejects(f.service.encrypt(f.caller, key.keyId, Buffer.from("x"), {}), kmsError("CmkDisabled"), "Pre-Active encrypts nothing");
    await f.service.kmip.activate(f.caller, key.keyId);
    const { blob } = await f.service.encrypt(f.caller, key.keyId, Buffer.from("through Tencent"), {});
    assert.deepEqual((await f.service.decrypt(f.caller, blob, {})).plaintext, Buffer.from("through Tencent"));
    // And KMIP's own GCM with the exported material is plain AES-256-GCM.
    const sealed = await f.service.kmip.encrypt(f.caller, key.keyId, { mode: "GCM", aad: Buffer.from("aad"), tagLength: 16 }, Buffer.from("kmip"));
    const { material } = await f.service.kmip.getMaterial(f.caller, key.keyId);
    assert.deepEqual(aesGcmDecrypt(material, sealed.iv, sealed.data, sealed.tag!, Buffer.from("aad")), Buffer.from("kmip"));
  });

  it("encrypts with an SM4 KMIP key in GCM and CBC modes (SM4-GCM and SM4-CBC of the exported material)", async () => {
    const key = await newKey("sm4-gcm", "SM4");
    await f.service.kmip.activate(f.caller, key.keyId);
    const sealed = await f.service.kmip.encrypt(f.caller, key.keyId, { mode: "GCM", aad: Buffer.alloc(0), tagLength: 16 }, Buffer.from("national"));
    const { material } = await f.service.kmip.getMaterial(f.caller, key.keyId);
    assert.deepEqual(sm4GcmDecrypt(material, sealed.iv, sealed.data, sealed.tag!, Buffer.alloc(0)), Buffer.from("national"));
    assert.deepEqual(await f.service.kmip.decrypt(f.caller, key.keyId, { mode: "GCM", iv: sealed.iv, aad: Buffer.alloc(0), tagLength: 16 }, sealed.data, sealed.tag), Buffer.from("national"));
    // SM4-CBC with PKCS#7 padding: the ciphertext is OpenSSL's sm4-cbc of the exported material.
    const cbc = await f.service.kmip.encrypt(f.caller, key.keyId, { mode: "CBC", padded: true }, Buffer.from("national, in blocks"));
    const decipher = createDecipheriv("sm4-cbc", material, cbc.iv);
    assert.deepEqual(Buffer.concat([decipher.update(cbc.data), decipher.final()]), Buffer.from("national, in blocks"));
    assert.deepEqual(await f.service.kmip.decrypt(f.caller, key.keyId, { mode: "CBC", iv: cbc.iv, padded: true }, cbc.data), Buffer.from("national, in blocks"));
  });

  it("registers a private key (PKCS#8) and a public key (SPKI) that sign and verify as the originals do", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const der = privateKey.export({ format: "der", type: "pkcs8" });
    const priv = await f.service.kmip.registerAsymmetric(f.caller, { objectType: "PrivateKey", der, names: ["registered-priv"], usageMask: 1 });
    const pub = await f.service.kmip.registerAsymmetric(f.caller, { objectType: "PublicKey", der: publicKey.export({ format: "der", type: "spki" }), names: [], usageMask: 2 });
    assert.deepEqual([priv.keySpec, priv.keyUsage, pub.kmip?.objectType], ["ECC_P256", "ASYMMETRIC_SIGN_VERIFY_ECC", "PublicKey"]);
    await f.service.kmip.activate(f.caller, priv.keyId);
    await f.service.kmip.activate(f.caller, pub.keyId);
    const signature = await f.service.kmip.sign(f.caller, priv.keyId, "ECC_P256_R1", Buffer.from("signed"));
    assert.ok(verify("sha256", Buffer.from("signed"), publicKey, signature), "the original public key verifies");
    assert.equal(await f.service.kmip.verify(f.caller, pub.keyId, "ECC_P256_R1", Buffer.from("signed"), signature), true);
    assert.deepEqual((await f.service.kmip.getMaterial(f.caller, priv.keyId)).material, der);
    await assert.rejects(f.service.kmip.registerAsymmetric(f.caller, { objectType: "PrivateKey", der: Buffer.from("not DER"), names: [], usageMask: 0 }), kmsError("InvalidParameterValue"));
    // P-256 keys whose scalar is 0 or the group order n: their public key would be the point at infinity.
    for (const scalar of ["00".repeat(32), "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"]) {
      const pkcs8 = Buffer.from(`3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420${scalar}`, "hex");
      await assert.rejects(f.service.kmip.registerAsymmetric(f.caller, { objectType: "PrivateKey", der: pkcs8, names: [], usageMask: 0 }), kmsError("InvalidParameterValue"), scalar);
    }
    const ed = generateKeyPairSync("ed25519").privateKey.export({ format: "der", type: "pkcs8" });
    await assert.rejects(f.service.kmip.registerAsymmetric(f.caller, { objectType: "PrivateKey", der: ed, names: [], usageMask: 0 }), kmsError("UnsupportedOperation"));
  });

  it("keeps EXPORT_ONLY objects (AES-128, secret data) away from the Tencent actions", async () => {
    const key = await newKey("aes-128", "AES_128");
    assert.equal(key.keyUsage, "EXPORT_ONLY");
    await f.service.kmip.activate(f.caller, key.keyId);
    await assert.rejects(f.service.encrypt(f.caller, key.keyId, Buffer.from("x"), {}), kmsError("InvalidKeyUsage"));
    await assert.rejects(f.service.getPublicKey(f.caller, key.keyId), kmsError("InvalidKeyUsage"));
    const secret = await f.service.kmip.register(f.caller, { objectType: "SecretData", secretDataType: 1, names: ["a-password"], usageMask: 0, material: Buffer.from("hunter2") });
    assert.equal(secret.keySpec, "SECRET_DATA");
    assert.deepEqual((await f.service.kmip.getMaterial(f.caller, secret.keyId)).material, Buffer.from("hunter2"));
    await assert.rejects(
      f.service.kmip.register(f.caller, { objectType: "SymmetricKey", keySpec: "AES_256", names: [], usageMask: 0, material: Buffer.alloc(16) }),
      kmsError("InvalidParameterValue"),
    );
  });

  it("moves through KMIP's states: revoke keeps decrypting, destroy refuses an Active object and then removes it", async () => {
    const key = await newKey("lifecycle");
    await f.service.kmip.activate(f.caller, key.keyId);
    await assert.rejects(f.service.kmip.activate(f.caller, key.keyId), kmsError("CmkStateNotSupport"));
    const { blob } = await f.service.encrypt(f.caller, key.keyId, Buffer.from("kept"), {});
    await assert.rejects(f.service.kmip.destroy(f.caller, key.keyId), kmsError("CmkShouldBeDisabled"));
    const revoked = await f.service.kmip.revoke(f.caller, key.keyId, { compromised: true, occurrenceDate: 1_700_000_000 });
    assert.equal(kmipState(revoked), "Compromised");
    assert.equal(revoked.kmip?.compromiseDate, 1_700_000_000);
    assert.deepEqual((await f.service.decrypt(f.caller, blob, {})).plaintext, Buffer.from("kept"));
    await assert.rejects(f.service.encrypt(f.caller, key.keyId, Buffer.from("x"), {}), kmsError("CmkArchived"));
    await f.service.kmip.destroy(f.caller, key.keyId);
    assert.equal(await f.store.getKey(key.keyId), undefined);
    assert.equal(await f.store.getKeyVersion(key.keyId, 1), undefined);
  });

  it("refuses the Tencent and AWS lifecycle actions on a KMIP object, in every KMIP state, and changes nothing", async () => {
    const calls: Record<string, (id: string) => Promise<unknown>> = {
      EnableKey: (id) => f.service.enableKey(f.caller, id),
      DisableKey: (id) => f.service.disableKey(f.caller, id),
      ArchiveKey: (id) => f.service.archiveKey(f.caller, id),
      CancelKeyArchive: (id) => f.service.cancelKeyArchive(f.caller, id),
      ScheduleKeyDeletion: (id) => f.service.scheduleKeyDeletion(f.caller, id, 7),
      ScheduleKeyDeletionAws: (id) => f.service.scheduleKeyDeletion(f.caller, id, 7, true),
      CancelKeyDeletion: (id) => f.service.cancelKeyDeletion(f.caller, id),
      RotateKey: (id) => f.service.rotateKey(f.caller, id),
      EnableKeyRotation: (id) => f.service.enableKeyRotation(f.caller, id, 30),
    };
    assert.deepEqual(Object.keys(calls).sort(), [...KMIP_LIFECYCLE_ONLY].sort());
    const key = await newKey("tencent-lifecycle");
    const steps: [string, () => Promise<unknown>][] = [
      ["PreActive", async () => undefined],
      ["Active", () => f.service.kmip.activate(f.caller, key.keyId)],
      ["Deactivated", () => f.service.kmip.revoke(f.caller, key.keyId, { compromised: false })],
    ];
    for (const [state, reach] of steps) {
      await reach();
      const before = await f.store.getKey(key.keyId);
      assert.equal(before?.kmip?.state, state);
      for (const [action, call] of Object.entries(calls)) {
        await assert.rejects(call(key.keyId), (e: unknown) => {
          assert.ok(e instanceof KmsError && e.code === "UnsupportedOperation", `${action} in ${state}: ${String(e)}`);
          assert.match(e.message, new RegExp(`KMIP object.*KMIP Activate, Revoke, ReKey, Destroy.*${action} is refused`));
          return true;
        });
      }
      assert.deepEqual(await f.store.getKey(key.keyId), before, `nothing changed in ${state}`);
    }
    // A batch holding a KMIP object changes none of its keys.
    const cmk = await f.createKey();
    await assert.rejects(f.service.disableKeys(f.caller, [cmk.keyId, key.keyId]), kmsError("UnsupportedOperation"));
    assert.equal((await f.store.getKey(cmk.keyId))?.state, "Enabled");
  });

  it("locates by name (one id per name), object type and state, and refuses a name in use", async () => {
    const a = await newKey("locate-a");
    const b = await f.service.kmip.createKeyPair(f.caller, { keySpec: "ECC_P256", privateKey: { names: ["locate-priv"], usageMask: 1 }, publicKey: { names: ["locate-pub"], usageMask: 2 } });
    const locate = (q: object) => f.service.kmip.locate(f.caller, { maxItems: 10_000, offset: 0, ...q });
    assert.deepEqual(await locate({ names: ["locate-a"] }), [a.keyId]);
    assert.deepEqual(await locate({ names: ["locate-pub"] }), [b.publicKey.keyId]);
    assert.ok((await locate({ objectType: "PrivateKey" })).includes(b.privateKey.keyId));
    assert.ok(!(await locate({ objectType: "PrivateKey" })).includes(b.publicKey.keyId));
    await f.service.kmip.activate(f.caller, a.keyId);
    assert.ok((await locate({ state: "Active" })).includes(a.keyId));
    assert.ok(!(await locate({ state: "PreActive" })).includes(a.keyId));
    await assert.rejects(newKey("locate-a"), kmsError("AliasAlreadyExists"));
    assert.equal(b.privateKey.kmip?.linkedId, b.publicKey.keyId);
  });
});

describe("KMIP Locate over many objects", () => {
  it("walks the account a page at a time, letting the event loop run between pages, and stops once it has enough", async (t) => {
    const g = await openService();
    try {
      // 1000 objects: one made by the core, the rest its copies under new ids (Locate reads metadata only).
      const first = await g.service.kmip.createSymmetric(g.caller, { names: ["many-0"], usageMask: 12, keySpec: "AES_256" });
      const version = await g.store.getKeyVersion(first.keyId, 1);
      for (let i = 1; i < 1000; i++) {
        const keyId = randomUUID();
        await g.store.insertKey({ ...first, keyId, alias: `many-${i}`, createTime: first.createTime + i, kmip: { ...first.kmip!, names: [`many-${i}`] } }, { ...version!, keyId });
      }
      let pages = 0;
      const listKeys = g.store.listKeys.bind(g.store);
      g.store.listKeys = (query) => {
        pages++;
        return listKeys(query);
      };
      // A walk to the end (nothing is Compromised), with a setImmediate chain ticking beside it.
      let ticks = 0;
      let worstGapMs = 0;
      let last = performance.now();
      let walking = true;
      const tick = () => {
        const now = performance.now();
        worstGapMs = Math.max(worstGapMs, now - last);
        last = now;
        ticks++;
        if (walking) setImmediate(tick);
      };
      setImmediate(tick);
      const none = await g.service.kmip.locate(g.caller, { state: "Compromised", maxItems: 10_000, offset: 0 });
      walking = false;
      assert.deepEqual(none, []);
      assert.equal(pages, 11, "1000 keys in ten full pages of 100, then an empty one");
      assert.ok(ticks >= 10, `the event loop ran between pages (${ticks} ticks)`);
      t.diagnostic(`Locate over 1000 objects: ${pages} pages, longest stretch without the event loop ${worstGapMs.toFixed(1)} ms`);
      // Maximum Items 3 after Offset 2: the 3rd to 5th oldest, from the first page alone.
      pages = 0;
      const some = await g.service.kmip.locate(g.caller, { objectType: "SymmetricKey", maxItems: 3, offset: 2 });
      assert.equal(pages, 1);
      assert.deepEqual(some, await Promise.all([2, 3, 4].map(async (i) => (await g.store.getKeyByAlias(`many-${i}`))!.keyId)));
    } finally {
      await g.close();
    }
  });
});
