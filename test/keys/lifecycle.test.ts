// The lifecycle table, walked row by row against the real service: for every action and every key
// state, an allowed action succeeds and leaves the key in the row's state; a forbidden one fails
// with exactly the table's error and changes nothing. Then the rules the design and Tencent's
// documentation state, checked independently of the table.

import assert from "node:assert/strict";
import { constants, createPublicKey, generateKeyPairSync, publicEncrypt } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { rsaEncrypt, rsaPublicKey } from "../../src/crypto/rsa.js";
import { sm2Encrypt, sm2PublicKeyFromSpki } from "../../src/crypto/sm2.js";
import { pqSeal } from "../../src/crypto/pq-ciphertext.js";
import { KEY_STATES, type KeyRecord, type KeyState, type KeyUsage } from "../../src/keys/key.js";
import { LIFECYCLE, lifecycleMarkdown, ruleFor, stateAfter, type KeyAction, type LifecycleRow } from "../../src/keys/lifecycle.js";
import { ERROR_CODES, KmsError } from "../../src/service/errors.js";
import { checkKeyState } from "../../src/service/kms-service.js";
import { RequestAudit } from "../../src/service/request-audit.js";
import { p521 } from "@noble/curves/nist.js";
import { kmsError, openService, type ServiceFixture } from "../service/fixture.js";

let f: ServiceFixture;
/** An Enabled key used as the other side of ReEncrypt. */
let partner: KeyRecord;
let partnerBlob: Buffer;

before(async () => {
  f = await openService();
  partner = await f.createKey({ alias: "partner" });
  partnerBlob = (await f.service.encrypt(f.caller, partner.keyId, Buffer.from("partner data"), {})).blob;
});

after(async () => {
  await f.close();
});

interface Subject {
  key: KeyRecord;
  /** EXTERNAL subjects: the material imported while the key was Enabled. */
  material?: Buffer;
  /** A blob made under the key while it was Enabled (symmetric keys), or a ciphertext made with its public key (decryption keys). */
  blob: Buffer;
  /** Tang subjects: the Tang server whose key this is, and its exchange key's thumbprint. */
  tang?: { name: string; kid: string };
}

/** The Tang door's actions: tried on a Tang server's signing key (TangAdvertise) or exchange key (TangRecover). */
const TANG_SUBJECTS: Partial<Record<KeyAction, "signingKey" | "exchangeKey">> = { TangAdvertise: "signingKey", TangRecover: "exchangeKey" };
let tangServers = 0;
const tangRequest = () => ({ sourceIp: "127.0.0.1", audit: new RequestAudit(() => ({ action: "TangRecover" })) });
/** A point of P-521 a client could send: the base point. */
const CLIENT_POINT = (() => {
  const g = p521.Point.BASE.toBytes(false);
  return { x: Buffer.from(g.subarray(1, 67)), y: Buffer.from(g.subarray(67)) };
})();

/** The usage of the key each asymmetric action is tried on; the other actions use ENCRYPT_DECRYPT keys. */
const ASYMMETRIC_SUBJECTS: Partial<Record<KeyAction, KeyUsage>> = {
  GetPublicKey: "ASYMMETRIC_SIGN_VERIFY_ECC",
  SignByAsymmetricKey: "ASYMMETRIC_SIGN_VERIFY_ECC",
  VerifyByAsymmetricKey: "ASYMMETRIC_SIGN_VERIFY_ECC",
  AsymmetricRsaDecrypt: "ASYMMETRIC_DECRYPT_RSA_2048",
  AsymmetricSm2Decrypt: "ASYMMETRIC_DECRYPT_SM2",
  PostQuantumCryptoSign: "ASYMMETRIC_SIGN_VERIFY_ML_DSA_44",
  PostQuantumCryptoVerify: "ASYMMETRIC_SIGN_VERIFY_ML_DSA_44",
  PostQuantumCryptoEncrypt: "ASYMMETRIC_DECRYPT_ML_KEM_768",
  PostQuantumCryptoDecrypt: "ASYMMETRIC_DECRYPT_ML_KEM_768",
  VerifyMac: "GENERATE_VERIFY_MAC",
  DeriveSharedSecret: "ASYMMETRIC_KEY_AGREEMENT_ECC_P256",
};

/** The actions tried on an EXTERNAL key with imported material; RotateKey's subject has rotation enabled. */
const EXTERNAL_SUBJECTS: ReadonlySet<KeyAction> = new Set(["GetParametersForImport", "ImportKeyMaterial", "DeleteImportedKeyMaterial"]);

/** The KMIP operations' rows, tried on a KMIP-class (exportable) AES-256 key. */
const KMIP_SUBJECTS: ReadonlySet<KeyAction> = new Set(["GetKeyMaterial", "ActivateKey", "ModifyKeyAttributes", "RevokeKey", "DestroyKey", "GenerateMac"]);

/** Wraps `material` for the key with fresh import parameters (RSAES_OAEP_SHA_256), as a BYOK client does. */
async function importParameters(keyId: string, material: Buffer): Promise<{ importToken: string; encryptedKeyMaterial: Buffer }> {
  const p = await f.service.getParametersForImport(f.caller, keyId, "RSA_2048", "RSAES_OAEP_SHA_256");
  const encryptedKeyMaterial = publicEncrypt(
    { key: createPublicKey({ key: p.publicKey, format: "der", type: "spki" }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    material,
  );
  return { importToken: p.importToken, encryptedKeyMaterial };
}

/** A peer's P-256 public key (DER SPKI) for DeriveSharedSecret. */
const PEER_P256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({ format: "der", type: "spki" });

/** How to perform each action of the table on a key. */
const drivers: Record<string, (subject: Subject) => Promise<unknown>> = {
  DescribeKey: async ({ key }) => f.service.describeKey(f.caller, key.keyId),
  Encrypt: async ({ key }) => f.service.encrypt(f.caller, key.keyId, Buffer.from("data"), {}),
  GenerateDataKey: async ({ key }) => f.service.generateDataKey(f.caller, key.keyId, 32, {}),
  Decrypt: async ({ blob }) => f.service.decrypt(f.caller, blob, {}),
  ReEncryptSource: async ({ blob }) => f.service.reEncrypt(f.caller, { blob, destinationKeyId: partner.keyId, sourceContext: {}, destinationContext: {} }),
  ReEncryptDestination: async ({ key }) => f.service.reEncrypt(f.caller, { blob: partnerBlob, destinationKeyId: key.keyId, sourceContext: {}, destinationContext: {} }),
  EnableKey: async ({ key }) => f.service.enableKey(f.caller, key.keyId),
  DisableKey: async ({ key }) => f.service.disableKey(f.caller, key.keyId),
  UpdateAlias: async ({ key }) => f.service.updateAlias(f.caller, key.keyId, `${key.alias}-renamed`),
  UpdateKeyDescription: async ({ key }) => f.service.updateKeyDescription(f.caller, key.keyId, "described again"),
  TagResource: async ({ key }) => f.service.tagKey(f.caller, key.keyId, [{ key: "added", value: "1" }]),
  UntagResource: async ({ key }) => f.service.untagKey(f.caller, key.keyId, ["added"]),
  ListResourceTags: async ({ key }) => f.service.listKeyTags(f.caller, key.keyId),
  GetPublicKey: async ({ key }) => f.service.getPublicKey(f.caller, key.keyId),
  SignByAsymmetricKey: async ({ key }) => f.service.sign(f.caller, { keyId: key.keyId, algorithm: "ECC_P256_R1", message: Buffer.from("m"), messageType: "RAW" }),
  VerifyByAsymmetricKey: async ({ key }) =>
    f.service.verify(f.caller, { keyId: key.keyId, algorithm: "ECC_P256_R1", message: Buffer.from("m"), messageType: "RAW", signature: Buffer.from("not a signature") }),
  AsymmetricRsaDecrypt: async ({ key, blob }) => f.service.asymmetricDecrypt(f.caller, "AsymmetricRsaDecrypt", key.keyId, "RSAES_OAEP_SHA_256", blob),
  AsymmetricSm2Decrypt: async ({ key, blob }) => f.service.asymmetricDecrypt(f.caller, "AsymmetricSm2Decrypt", key.keyId, "SM2", blob),
  ArchiveKey: async ({ key }) => f.service.archiveKey(f.caller, key.keyId),
  CancelKeyArchive: async ({ key }) => f.service.cancelKeyArchive(f.caller, key.keyId),
  ScheduleKeyDeletion: async ({ key }) => f.service.scheduleKeyDeletion(f.caller, key.keyId, 7),
  ScheduleKeyDeletionAws: async ({ key }) => f.service.scheduleKeyDeletion(f.caller, key.keyId, 7, true),
  CancelKeyDeletion: async ({ key }) => f.service.cancelKeyDeletion(f.caller, key.keyId),
  EnableKeyRotation: async ({ key }) => f.service.enableKeyRotation(f.caller, key.keyId, 30),
  DisableKeyRotation: async ({ key }) => f.service.disableKeyRotation(f.caller, key.keyId),
  GetKeyRotationStatus: async ({ key }) => f.service.getKeyRotationStatus(f.caller, key.keyId),
  RotateKey: async ({ key }) => f.service.rotateKey(f.caller, key.keyId),
  ListKeyVersions: async ({ key }) => f.service.listKeyVersions(f.caller, key.keyId),
  GetParametersForImport: async ({ key }) => f.service.getParametersForImport(f.caller, key.keyId, "SM2", "SM2PKE"),
  ImportKeyMaterial: async ({ key, material }) => {
    assert.ok(material);
    // The parameters are fetched while the key is briefly in a state that allows it, so that the
    // refusal tested is ImportKeyMaterial's own.
    const stored = await f.store.getKey(key.keyId);
    assert.ok(stored);
    await f.store.updateKey({ ...stored, state: "PendingImport" });
    const params = await importParameters(key.keyId, material);
    await f.store.updateKey(stored);
    return f.service.importKeyMaterial(f.caller, { keyId: key.keyId, ...params, validTo: 0 });
  },
  DeleteImportedKeyMaterial: async ({ key }) => f.service.deleteImportedKeyMaterial(f.caller, key.keyId),
  GetKeyMaterial: async ({ key }) => f.service.kmip.getMaterial(f.caller, key.keyId),
  ActivateKey: async ({ key }) => f.service.kmip.activate(f.caller, key.keyId),
  GenerateMac: async ({ key }) => f.service.kmip.mac(f.caller, key.keyId, Buffer.from("m")),
  VerifyMac: async ({ key }) => f.service.verifyMac(f.caller, { keyId: key.keyId, algorithm: "HMAC_SM3", message: Buffer.from("m"), mac: Buffer.alloc(32) }),
  PostQuantumCryptoSign: async ({ key }) => f.service.postQuantum.sign(f.caller, { keyId: key.keyId, message: Buffer.from("m"), context: Buffer.alloc(0) }),
  PostQuantumCryptoVerify: async ({ key }) =>
    f.service.postQuantum.verify(f.caller, { keyId: key.keyId, message: Buffer.from("m"), signature: Buffer.from("not a signature"), context: Buffer.alloc(0) }),
  DeriveSharedSecret: async ({ key }) => f.service.deriveSharedSecret(f.caller, { keyId: key.keyId, algorithm: "ECDH", publicKey: PEER_P256 }),
  PostQuantumCryptoEncrypt: async ({ key }) => f.service.postQuantum.encrypt(f.caller, key.keyId, Buffer.from("m")),
  PostQuantumCryptoDecrypt: async ({ blob }) => f.service.postQuantum.decrypt(f.caller, blob),
  ModifyKeyAttributes: async ({ key }) => f.service.kmip.changeAttribute(f.caller, key.keyId, { op: "add", name: "x-owner", index: 0, value: "lifecycle" }),
  RevokeKey: async ({ key }) => f.service.kmip.revoke(f.caller, key.keyId, { compromised: false }),
  DestroyKey: async ({ key }) => f.service.kmip.destroy(f.caller, key.keyId),
  TangAdvertise: async ({ tang }) => f.service.tang.advertise(tangRequest(), tang!.name, undefined),
  TangRecover: async ({ tang }) => f.service.tang.recover(tangRequest(), tang!.name, tang!.kid, CLIENT_POINT),
};

async function subjectIn(state: KeyState, action: KeyAction): Promise<Subject> {
  const tangKey = TANG_SUBJECTS[action];
  if (tangKey) {
    const server = await f.service.tang.createTangServer(f.caller, { name: `lifecycle-${++tangServers}`, allowedNetworks: [] });
    const tang = { name: server.name, kid: server.exchangeKey.versions[0]!.thumbprint };
    return { key: await f.setState(server[tangKey].keyId, state), blob: Buffer.alloc(0), tang };
  }
  const usage = ASYMMETRIC_SUBJECTS[action];
  let key: KeyRecord;
  let blob: Buffer;
  if (usage) {
    key = await f.service.createKey(f.caller, { alias: `lifecycle-${action}-${state}`, description: "", keyUsage: usage, tags: [] });
    if (usage === "GENERATE_VERIFY_MAC") return { key: await f.setState(key.keyId, state), blob: Buffer.alloc(0) };
    const { publicKey } = await f.service.getPublicKey(f.caller, key.keyId);
    const plaintext = Buffer.from("made while enabled");
    blob =
      usage === "ASYMMETRIC_DECRYPT_SM2"
        ? sm2Encrypt(sm2PublicKeyFromSpki(publicKey), plaintext)
        : usage === "ASYMMETRIC_DECRYPT_RSA_2048"
          ? rsaEncrypt(rsaPublicKey(publicKey), "RSAES_OAEP_SHA_256", plaintext)
          : usage === "ASYMMETRIC_DECRYPT_ML_KEM_768"
            ? await pqSeal({ algorithm: "ML_KEM_768_X25519_AES_256_GCM", keyId: key.keyId, keyVersion: 1 }, publicKey, plaintext)
            : Buffer.alloc(0);
  } else if (KMIP_SUBJECTS.has(action)) {
    const keySpec = action === "GenerateMac" ? "HMAC_SHA256" : "AES_256";
    key = await f.service.kmip.createSymmetric(f.caller, { names: [`lifecycle-${action}-${state}`], usageMask: 12, keySpec });
    blob = Buffer.alloc(0);
  } else if (EXTERNAL_SUBJECTS.has(action)) {
    key = await f.service.createKey(f.caller, { alias: `lifecycle-${action}-${state}`, description: "", keyUsage: "ENCRYPT_DECRYPT", tags: [], origin: "EXTERNAL" });
    const material = Buffer.alloc(16, 7);
    await f.service.importKeyMaterial(f.caller, { keyId: key.keyId, ...(await importParameters(key.keyId, material)), validTo: 0 });
    blob = (await f.service.encrypt(f.caller, key.keyId, Buffer.from("made while enabled"), {})).blob;
    return { key: await f.setState(key.keyId, state), blob, material };
  } else {
    key = await f.createKey();
    if (action === "RotateKey") await f.service.enableKeyRotation(f.caller, key.keyId, 365);
    blob = (await f.service.encrypt(f.caller, key.keyId, Buffer.from("made while enabled"), {})).blob;
  }
  return { key: await f.setState(key.keyId, state), blob };
}

const rows = Object.entries(LIFECYCLE) as [KeyAction, LifecycleRow][];

describe("LIFECYCLE against the service", () => {
  it("has a driver for every action in the table", () => {
    assert.deepEqual(
      rows.map(([action]) => action).filter((a) => !Object.hasOwn(drivers, a)),
      [],
    );
  });

  for (const [action, row] of rows) {
    describe(action, () => {
      for (const state of KEY_STATES) {
        const rule = row.rules[state];
        const expected = rule === "allow" ? `succeeds${row.to ? ` and leaves it ${row.to}` : ""}` : `fails with ${rule}`;
        it(`on a ${state} key ${expected}`, async () => {
          const drive = drivers[action];
          assert.ok(drive, `no driver for ${action}`);
          const subject = await subjectIn(state, action);
          const before = await f.store.getKey(subject.key.keyId);
          assert.equal(before?.state, state);
          if (rule === "allow") {
            await drive(subject);
            const after = await f.store.getKey(subject.key.keyId);
            if (row.removes) assert.equal(after, undefined, "the key is gone");
            else assert.equal(after?.state, row.to ?? state);
          } else {
            await assert.rejects(drive(subject), kmsError(rule));
            assert.deepEqual(await f.store.getKey(subject.key.keyId), before, "a refused action changed the key");
          }
          // The partner is never touched by the subject's failures.
          assert.equal((await f.store.getKey(partner.keyId))?.state, "Enabled");
        });
      }
    });
  }
});

describe("the rules the design and Tencent's documentation state", () => {
  const rule = (action: KeyAction, state: KeyState) => LIFECYCLE[action].rules[state];

  it("every key can be described in every state", () => {
    for (const state of KEY_STATES) assert.equal(rule("DescribeKey", state), "allow");
  });

  it("only Enabled keys encrypt; Archived keys refuse with CmkArchived, Disabled with CmkDisabled", () => {
    for (const action of ["Encrypt", "GenerateDataKey", "ReEncryptDestination"] as const) {
      assert.equal(rule(action, "Enabled"), "allow");
      assert.equal(rule(action, "Archived"), "CmkArchived");
      assert.equal(rule(action, "Disabled"), "CmkDisabled");
      assert.notEqual(rule(action, "PendingDelete"), "allow");
      assert.notEqual(rule(action, "PendingImport"), "allow");
    }
  });

  it("Enabled and Archived keys decrypt; Disabled and PendingDelete keys do not", () => {
    for (const action of ["Decrypt", "ReEncryptSource"] as const) {
      assert.equal(rule(action, "Enabled"), "allow");
      assert.equal(rule(action, "Archived"), "allow");
      assert.equal(rule(action, "Disabled"), "CmkDisabled");
      assert.notEqual(rule(action, "PendingDelete"), "allow");
      assert.notEqual(rule(action, "PendingImport"), "allow");
    }
  });

  it("UpdateAlias and UpdateKeyDescription are refused while PendingDelete", () => {
    assert.notEqual(rule("UpdateAlias", "PendingDelete"), "allow");
    assert.notEqual(rule("UpdateKeyDescription", "PendingDelete"), "allow");
    assert.equal(rule("UpdateAlias", "Enabled"), "allow");
    assert.equal(rule("UpdateKeyDescription", "Disabled"), "allow");
  });

  it("EnableKey and DisableKey switch between Enabled and Disabled", () => {
    assert.equal(stateAfter("EnableKey", "Disabled"), "Enabled");
    assert.equal(stateAfter("DisableKey", "Enabled"), "Disabled");
    assert.equal(stateAfter("EnableKey", "Enabled"), "Enabled");
    assert.equal(stateAfter("DisableKey", "Disabled"), "Disabled");
  });

  it("every refusal is a code of the error registry", () => {
    for (const [action, row] of rows) {
      for (const state of KEY_STATES) {
        const r = row.rules[state];
        assert.ok(r === "allow" || Object.hasOwn(ERROR_CODES, r), `${action} in ${state}: ${r}`);
        if (r !== "allow") assert.match(ERROR_CODES[r].tencent, /^ResourceUnavailable\./, `${action} in ${state}: ${r}`);
      }
    }
  });
});

describe("ruleFor, checkKeyState and stateAfter", () => {
  it("ruleFor reads the table", () => {
    for (const [action, row] of rows) {
      for (const state of KEY_STATES) assert.equal(ruleFor(action, state), row.rules[state], `${action} in ${state}`);
    }
  });

  it("throw exactly the table's error, naming the key, its state and the action", () => {
    const keyId = "11111111-2222-4333-8444-555555555555";
    for (const [action, row] of rows) {
      for (const state of KEY_STATES) {
        const r = row.rules[state];
        if (r === "allow") {
          assert.doesNotThrow(() => checkKeyState(action, { keyId, state }));
          continue;
        }
        assert.throws(
          () => checkKeyState(action, { keyId, state }),
          (e: unknown) => e instanceof KmsError && e.code === r && e.message.includes(keyId) && e.message.includes(state) && e.message.includes(action),
        );
      }
    }
  });

  it("stateAfter gives the row's state, or the current one when the row has none", () => {
    for (const [action, row] of rows) {
      for (const state of KEY_STATES) assert.equal(stateAfter(action, state), row.to ?? state, `${action} from ${state}`);
    }
  });
});

describe("lifecycleMarkdown", () => {
  const lines = lifecycleMarkdown().split("\n");

  it("has a header, a rule line and one row per action", () => {
    assert.equal(lines.length, 2 + rows.length);
    assert.equal(lines[0], `| action | ${KEY_STATES.join(" | ")} | resulting state |`);
    for (const [action] of rows) {
      assert.equal(lines.filter((l) => l.startsWith(`| ${action} |`)).length, 1, action);
    }
  });

  it("prints every cell as the table says", () => {
    for (const [action, row] of rows) {
      const line = lines.find((l) => l.startsWith(`| ${action} |`));
      assert.ok(line);
      const cells = line.split("|").slice(1, -1).map((c) => c.trim());
      assert.equal(cells.length, KEY_STATES.length + 2);
      KEY_STATES.forEach((state, i) => {
        const r = row.rules[state];
        assert.equal(cells[i + 1], r === "allow" ? "yes" : `no: ${r}`, `${action} / ${state}`);
      });
      assert.equal(cells.at(-1), row.removes ? "(removed)" : (row.to ?? "unchanged"));
    }
  });
});
