// The post-quantum keyring (data keys wrapped to an ML-KEM hybrid public key, offline) and the
// ML-DSA-65 suite: round trips locally and through a real server's PostQuantumCryptoDecrypt,
// changed bytes of the wrapped key and of the signature refused, wrong keys refused, and liboqs
// (@oqs/liboqs-js) as the second implementation of ML-KEM and ML-DSA.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createDecipheriv, createECDH, createHash, createPrivateKey, createPublicKey, diffieHellman, hkdfSync } from "node:crypto";
import { createMLDSA65, createMLKEM1024, createMLKEM768 } from "@oqs/liboqs-js";
import { ml_kem1024, ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { mlDsaPublicKeyFromSpki } from "../../../src/crypto/ml-dsa.js";
import { KmsClient } from "../../../src/sdk/index.js";
import {
  decrypt,
  encrypt,
  EncryptionSdkError,
  fetchPqRecipient,
  generatePqKeyPair,
  KmsKeyring,
  PostQuantumKeyring,
  PUBLIC_KEY_CONTEXT_KEY,
  RawKeyring,
  type PqRecipient,
} from "../../../src/sdk/encryption/index.js";
import { parseHeader } from "../../../src/sdk/encryption/format.js";
import { kmsContext } from "../../../src/sdk/encryption/keyring.js";
import { startServer, type TestServer } from "../../helpers/server.js";

const SUITE = "AES_256_GCM_HKDF_SHA512_COMMIT_ML_DSA_65";
const KEY_ID = "6b1f4a52-0c3e-4d7a-9e21-5f8a7c3b2d10";
const KEY_ID_1024 = "0d3c2b1a-4f5e-4a6b-8c7d-9e0f1a2b3c4d";
const ML_DSA_65_SIGNATURE = 3309;
const KEM_CT = { ML_KEM_768_X25519_AES_256_GCM: 1120, ML_KEM_1024_P384_AES_256_GCM: 1665 } as const;

const x = generatePqKeyPair("ML_KEM_768_X25519_AES_256_GCM");
const p = generatePqKeyPair("ML_KEM_1024_P384_AES_256_GCM");
const local = (): PqRecipient[] => [
  { keyId: KEY_ID, region: "here", publicKey: x.publicKey, seed: x.seed },
  { keyId: KEY_ID_1024, region: "here", publicKey: p.publicKey, seed: p.seed },
];

const headerOf = (message: Buffer) => parseHeader(message, { maxEncryptedDataKeys: 5, maxHeaderBytes: 16 * 1024 })!.header;
const noDataKey = (e: unknown): boolean => e instanceof EncryptionSdkError && e.code === "NoDataKey";

/** The message without its footer (uint16 length + signature): what the ML-DSA signature covers. */
function splitFooter(message: Buffer): { signed: Buffer; signature: Buffer; at: number } {
  const at = message.length - ML_DSA_65_SIGNATURE;
  assert.equal(message.readUInt16BE(at - 2), ML_DSA_65_SIGNATURE, "the footer's length field");
  return { signed: message.subarray(0, at - 2), signature: message.subarray(at), at };
}

/** The X25519 key of 32 raw bytes as DER (RFC 8410). */
const x25519Private = (raw: Buffer) => createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b656e04220420", "hex"), raw]), format: "der", type: "pkcs8" });
const x25519Public = (raw: Buffer) => createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b656e032100", "hex"), raw]), format: "der", type: "spki" });

/**
 * The post-quantum ciphertext opened without Tresor's code or noble's KEMs: liboqs decapsulates the
 * ML-KEM part (the FIPS 203 decapsulation key from the drafts' SHAKE256 seed expansion, encoded by
 * noble's ML-KEM keygen, a standard format liboqs takes), node:crypto the curve part (X25519, or
 * P-384 ECDH's x-coordinate), the combiner, HKDF and AES-GCM.
 */
function unwrapIndependently(blob: Buffer, recipient: PqRecipient, oqs: { decapsulate(ct: Uint8Array, sk: Uint8Array): Uint8Array; destroy(): void }): Buffer {
  const xWing = blob[1] === 0x10;
  const [ctM, ctE, pkLength, label] = xWing ? [1088, 32, 1184, Buffer.from("5c2e2f2f5e5c", "hex")] : [1568, 97, 1568, Buffer.from("MLKEM1024-P384")];
  const expanded = createHash("shake256", { outputLength: xWing ? 96 : 112 }).update(recipient.seed!).digest();
  const decapsulationKey = (xWing ? ml_kem768 : ml_kem1024).keygen(expanded.subarray(0, 64)).secretKey;
  const kemCt = blob.subarray(22, 22 + ctM + ctE);
  const ssM = Buffer.from(oqs.decapsulate(new Uint8Array(kemCt.subarray(0, ctM)), new Uint8Array(decapsulationKey)));
  oqs.destroy();
  const curveCt = kemCt.subarray(ctM);
  const curvePk = Buffer.from(recipient.publicKey).subarray(pkLength);
  let ssE: Buffer;
  if (xWing) ssE = diffieHellman({ privateKey: x25519Private(expanded.subarray(64)), publicKey: x25519Public(curveCt) });
  else {
    const ecdh = createECDH("secp384r1");
    ecdh.setPrivateKey(expanded.subarray(64));
    ssE = ecdh.computeSecret(curveCt);
  }
  const ss = createHash("sha3-256").update(Buffer.concat([ssM, ssE, curveCt, curvePk, label])).digest();
  const key = Buffer.from(hkdfSync("sha256", ss, Buffer.alloc(0), Buffer.concat([Buffer.from("Tresor PQ hybrid v1"), blob.subarray(0, 22)]), 32));
  const d = createDecipheriv("aes-256-gcm", key, Buffer.alloc(12));
  d.setAAD(blob.subarray(0, 22 + kemCt.length));
  d.setAuthTag(blob.subarray(blob.length - 16));
  return Buffer.concat([d.update(blob.subarray(22 + kemCt.length, blob.length - 16)), d.final()]);
}

describe("PostQuantumKeyring and the ML-DSA-65 suite, offline", () => {
  it("wraps the data key once per recipient as a post-quantum ciphertext and decrypts with either seed", async () => {
    const { message } = await encrypt("to the post-quantum age", { keyring: new PostQuantumKeyring(local()), suite: SUITE, encryptionContext: { app: "t" } });
    assert.deepEqual(
      headerOf(message).encryptedDataKeys.map((e) => [e.provider, e.region, e.keyId, e.blob.length, e.blob[0], e.blob[1]]),
      [
        ["tresor-pq", "here", KEY_ID, 22 + KEM_CT.ML_KEM_768_X25519_AES_256_GCM + 32 + 16, 0x02, 0x10],
        ["tresor-pq", "here", KEY_ID_1024, 22 + KEM_CT.ML_KEM_1024_P384_AES_256_GCM + 32 + 16, 0x02, 0x11],
      ],
    );
    for (const only of local()) {
      const out = await decrypt(message, { keyring: new PostQuantumKeyring([only]), requiredContext: { app: "t" } });
      assert.equal(out.plaintext.toString(), "to the post-quantum age");
      assert.equal(out.info.decryptedWith?.keyId, only.keyId);
    }
  });

  it("refuses a changed byte of the wrapped data key: every header and AEAD byte, every 16th KEM byte", async () => {
    const keyring = new PostQuantumKeyring([local()[0]!]);
    const { dataKey, encryptedDataKeys } = await keyring.generateDataKey(32, {});
    const [edk] = encryptedDataKeys;
    assert.deepEqual((await keyring.decryptDataKey(encryptedDataKeys, {}, 32)).dataKey, dataKey);
    const kemEnd = 22 + KEM_CT.ML_KEM_768_X25519_AES_256_GCM;
    let tried = 0;
    for (let i = 0; i < edk!.blob.length; i += i >= 22 && i < kemEnd ? 16 : 1) {
      const blob = Buffer.from(edk!.blob);
      blob[i]! ^= 0x01 << (i % 8);
      await assert.rejects(keyring.decryptDataKey([{ ...edk!, blob }], {}, 32), noDataKey, `byte ${i}`);
      tried++;
    }
    assert.ok(tried > 22 + 48 + 60);
    await assert.rejects(keyring.decryptDataKey([{ ...edk!, blob: edk!.blob.subarray(1) }], {}, 32), noDataKey);
  });

  it("refuses a changed byte of the ML-DSA signature (every 17th, and the first and last 32), a cut one, and another key's", async () => {
    // The signature does not depend on the keyring: a raw one keeps each try to the verification.
    const keyring = new RawKeyring([{ name: "k", algorithm: "AES-256-GCM", key: Buffer.alloc(32, 1) }]);
    const { message } = await encrypt(Buffer.alloc(5000, 3), { keyring, suite: SUITE, frameLength: 1024 });
    const { at, signature } = splitFooter(message);
    const positions = [...Array(signature.length).keys()].filter((i) => i % 17 === 0 || i < 32 || i >= signature.length - 32);
    for (const i of positions) {
      const changed = Buffer.from(message);
      changed[at + i]! ^= 0x80 >> (i % 8);
      await assert.rejects(decrypt(changed, { keyring }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "SignatureInvalid", `byte ${i}`);
    }
    await assert.rejects(decrypt(message.subarray(0, message.length - 1), { keyring }), EncryptionSdkError);
    // A bad signature followed by more bytes: the stream fails on the extra bytes; the verification
    // running in the thread meanwhile fails unawaited, and must not surface as an unhandled rejection
    // (the test runner fails the file on one, while the tests after this one run).
    const badAndLong = Buffer.concat([message, Buffer.of(0)]);
    badAndLong[at]! ^= 1;
    await assert.rejects(decrypt(badAndLong, { keyring }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "InvalidMessage");
    // Another message's valid signature does not close this one.
    const other = await encrypt(Buffer.alloc(5000, 3), { keyring, suite: SUITE, frameLength: 1024 });
    const spliced = Buffer.concat([message.subarray(0, at), splitFooter(other.message).signature]);
    await assert.rejects(decrypt(spliced, { keyring }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "SignatureInvalid");
  });

  it("a script that only encrypts and decrypts waits for the post-quantum thread, and exits once it is idle", async () => {
    // The thread is started on first use; an idle one must not keep the process alive, a busy one must.
    const script = [
      `import { PostQuantumKeyring, encrypt, decrypt, generatePqKeyPair } from ${JSON.stringify(new URL("../../../src/sdk/encryption/index.js", import.meta.url).href)};`,
      'const pair = generatePqKeyPair("ML_KEM_1024_P384_AES_256_GCM");',
      `const keyring = new PostQuantumKeyring([{ keyId: "${KEY_ID}", region: "r", ...pair }]);`,
      `const { message } = await encrypt("done", { keyring, suite: "${SUITE}" });`,
      "console.log((await decrypt(message, { keyring })).plaintext.toString());",
    ].join("\n");
    const dir = await mkdtemp(path.join(tmpdir(), "tresor-pq-"));
    try {
      await writeFile(path.join(dir, "check.mjs"), script);
      assert.equal(execFileSync(process.execPath, [path.join(dir, "check.mjs")], { encoding: "utf8", timeout: 30_000 }), "done\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("KMS binds an ML-DSA public key by its SHA-256 (it alone would pass 1024 characters); shorter keys as they are", async () => {
    const { message } = await encrypt("x", { keyring: new PostQuantumKeyring(local()), suite: SUITE, encryptionContext: { app: "t" } });
    const context = headerOf(message).context;
    const spki = Buffer.from(context[PUBLIC_KEY_CONTEXT_KEY]!, "base64");
    assert.equal(spki.length, 1974);
    assert.deepEqual(kmsContext(context), { app: "t", "tresor:public-key-sha256": createHash("sha256").update(spki).digest("base64") });
    const ecdsa = { app: "t", [PUBLIC_KEY_CONTEXT_KEY]: "A".repeat(160) };
    assert.deepEqual(kmsContext(ecdsa), ecdsa);
  });

  it("refuses bad recipients with errors naming the parameter", () => {
    const bad: [unknown, RegExp][] = [
      [[], /"recipients"/],
      [[{ ...local()[0]!, keyId: "alias/x" }], /"recipients\[0\]\.keyId"/],
      [[{ ...local()[0]!, publicKey: x.publicKey.subarray(1) }], /"recipients\[0\]\.publicKey".*1215 bytes/],
      [[{ ...local()[0]!, seed: Buffer.alloc(31) }], /"recipients\[0\]\.seed"/],
      [[{ ...local()[0]!, region: "" }], /"recipients\[0\]\.region"/],
      [Array(6).fill(local()[0]), /"recipients"/],
    ];
    for (const [arg, message] of bad) {
      assert.throws(() => new PostQuantumKeyring(arg as PqRecipient[]), (e: unknown) => e instanceof EncryptionSdkError && e.code === "InvalidArgument" && message.test(e.message));
    }
  });

  it("refuses a public key that is not an encapsulation key (ML-KEM's modulus check)", async () => {
    const publicKey = Buffer.alloc(1216, 0xff);
    await assert.rejects(encrypt("x", { keyring: new PostQuantumKeyring([{ keyId: KEY_ID, region: "here", publicKey }]) }), (e: unknown) =>
      e instanceof EncryptionSdkError && e.code === "InvalidArgument" && /not a valid X-Wing public key/.test(e.message),
    );
  });

  for (const [index, name] of [[0, "X-Wing (ML-KEM-768)"], [1, "MLKEM1024-P384 (ML-KEM-1024)"]] as const) {
    it(`${name}: liboqs decapsulates the ML-KEM part of a wrapped data key, node:crypto does the rest of the unwrap and gets the data key`, async () => {
      const recipient = local()[index]!;
      const { dataKey, encryptedDataKeys } = await new PostQuantumKeyring([recipient]).generateDataKey(32, {});
      assert.deepEqual(unwrapIndependently(encryptedDataKeys[0]!.blob, recipient, await (index === 0 ? createMLKEM768() : createMLKEM1024())), dataKey);
    });
  }

  it("liboqs verifies the suite's signature as pure ML-DSA-65 over the message up to its footer", async () => {
    const { message } = await encrypt(Buffer.alloc(70_000, 9), { keyring: new PostQuantumKeyring(local()), suite: SUITE, frameLength: 4096, encryptionContext: { a: "b" } });
    const { signed, signature } = splitFooter(message);
    const publicKey = mlDsaPublicKeyFromSpki("ML-DSA-65", Buffer.from(headerOf(message).context[PUBLIC_KEY_CONTEXT_KEY]!, "base64"));
    const oqs = await createMLDSA65();
    assert.equal(oqs.verify(new Uint8Array(signed), new Uint8Array(signature), new Uint8Array(publicKey)), true);
    const changed = new Uint8Array(signed);
    changed[100]! ^= 1;
    assert.equal(oqs.verify(changed, new Uint8Array(signature), new Uint8Array(publicKey)), false);
    oqs.destroy();
  });
});

describe("PostQuantumKeyring through a real server", { timeout: 120_000 }, () => {
  let server: TestServer;
  let client: KmsClient;
  const keys: Record<string, string> = {};

  before(async () => {
    server = await startServer({ region: "pq-region" });
    client = new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: server.secretKey, region: server.region, maxRetries: 0, timeoutMs: 5000 });
    for (const [name, usage] of [
      ["kem768", "ASYMMETRIC_DECRYPT_ML_KEM_768"],
      ["kem1024", "ASYMMETRIC_DECRYPT_ML_KEM_1024"],
      ["dsa65", "ASYMMETRIC_SIGN_VERIFY_ML_DSA_65"],
    ] as const) {
      keys[name] = (await client.createKey({ Alias: `esdk-${name}`, KeyUsage: usage })).KeyId!;
    }
    keys["sm4"] = (await client.createKey({ Alias: "esdk-sm4" })).KeyId!;
  });
  after(async () => {
    client?.close();
    await server?.stop();
  });

  it("encrypts offline to the keys' public keys and decrypts through PostQuantumCryptoDecrypt", async () => {
    const recipients = [
      await fetchPqRecipient({ keyId: keys["kem768"]!, region: "pq-region", clients: client }),
      await fetchPqRecipient({ keyId: keys["kem1024"]!, region: "pq-region", clients: client }),
    ];
    assert.deepEqual(recipients[0]!.publicKey, Buffer.from((await client.getPublicKey({ KeyId: keys["kem768"]! })).PublicKey!, "base64"));
    // The encrypting keyring has no client at all: it cannot call the server.
    const offline = new PostQuantumKeyring(recipients.map(({ keyId, region, publicKey }) => ({ keyId, region, publicKey })));
    for (const suite of [SUITE, "SM4_GCM_SM3"] as const) {
      const { message } = await encrypt(Buffer.alloc(100_000, 5), { keyring: offline, suite, encryptionContext: { tenant: "t1" } });
      // Each wrapped data key is a ciphertext the server's own PostQuantumCryptoDecrypt opens.
      for (const edk of headerOf(message).encryptedDataKeys) {
        const res = await client.postQuantumCryptoDecrypt({ CiphertextBlob: edk.blob.toString("base64") });
        assert.equal(res.KeyId, edk.keyId);
        assert.equal(Buffer.from(res.PlainText!, "base64").length, 32);
      }
      for (const r of recipients) {
        const out = await decrypt(message, { keyring: new PostQuantumKeyring([r]), requiredContext: { tenant: "t1" } });
        assert.deepEqual(out.plaintext, Buffer.alloc(100_000, 5));
        assert.deepEqual(out.info.decryptedWith, { provider: "tresor-pq", region: "pq-region", keyId: r.keyId });
      }
    }
  });

  it("a decrypt-only keyring by region finds the key in the message; another region's keyring does not", async () => {
    const r = await fetchPqRecipient({ keyId: keys["kem768"]!, region: "pq-region", clients: client });
    const { message } = await encrypt("by region", { keyring: new PostQuantumKeyring([{ keyId: r.keyId, region: r.region, publicKey: r.publicKey }]) });
    const byRegion = new PostQuantumKeyring([], { decryptRegions: [{ region: "pq-region", clients: client }] });
    const out = await decrypt(message, { keyring: byRegion });
    assert.equal(out.plaintext.toString(), "by region");
    assert.deepEqual(out.info.decryptedWith, { provider: "tresor-pq", region: "pq-region", keyId: r.keyId });
    const elsewhere = new PostQuantumKeyring([], { decryptRegions: [{ region: "other", clients: client }] });
    await assert.rejects(decrypt(message, { keyring: elsewhere }), (e: unknown) => noDataKey(e) && /not in the keyring/.test((e as Error).message));
    await assert.rejects(encrypt("x", { keyring: byRegion }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "InvalidArgument" && /only decrypts/.test(e.message));
    assert.throws(() => new PostQuantumKeyring([]), (e: unknown) => e instanceof EncryptionSdkError && /"recipients" must be an array of 1 to 5/.test(e.message));
  });

  it("the ML-DSA-65 suite works with KmsKeyring too: KMS binds the public key's SHA-256", async () => {
    const keyring = new KmsKeyring({ primary: { keyId: keys["sm4"]!, region: "pq-region", clients: client } });
    const { message } = await encrypt("signed, kms", { keyring, suite: SUITE, encryptionContext: { app: "kms" } });
    assert.equal((await decrypt(message, { keyring })).plaintext.toString(), "signed, kms");
  });

  it("refuses through the server: a changed wrapped key (sampled), a key of another usage, a disabled key, a non-PQ key's public key", async () => {
    const r = await fetchPqRecipient({ keyId: keys["kem768"]!, region: "pq-region", clients: client });
    const keyring = new PostQuantumKeyring([r]);
    const { encryptedDataKeys } = await keyring.generateDataKey(32, {});
    const edk = encryptedDataKeys[0]!;
    for (let i = 0; i < edk.blob.length; i += i < 22 || i >= edk.blob.length - 48 ? 1 : 97) {
      const blob = Buffer.from(edk.blob);
      blob[i]! ^= 0x40;
      await assert.rejects(keyring.decryptDataKey([{ ...edk, blob }], {}, 32), noDataKey, `byte ${i}`);
    }
    // A data key wrapped "to" an ML-DSA key's id: the server refuses to decrypt under a key of that usage.
    const forged = new PostQuantumKeyring([{ keyId: keys["dsa65"]!, region: "pq-region", publicKey: x.publicKey, clients: client }]);
    const { message } = await encrypt("x", { keyring: forged });
    await assert.rejects(decrypt(message, { keyring: forged }), (e: unknown) => noDataKey(e) && /InvalidCiphertext/.test((e as Error).message));
    await assert.rejects(fetchPqRecipient({ keyId: keys["dsa65"]!, region: "pq-region", clients: client }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "InvalidArgument");
    await assert.rejects(fetchPqRecipient({ keyId: keys["sm4"]!, region: "pq-region", clients: client }), EncryptionSdkError);

    const sealed = await encrypt("while enabled", { keyring });
    await client.disableKey({ KeyId: r.keyId });
    try {
      await assert.rejects(decrypt(sealed.message, { keyring }), (e: unknown) => noDataKey(e) && /KeyIsDisabled|Disabled/i.test((e as Error).message));
    } finally {
      await client.enableKey({ KeyId: r.keyId });
    }
    assert.equal((await decrypt(sealed.message, { keyring })).plaintext.toString(), "while enabled");
  });
});
