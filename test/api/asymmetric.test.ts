// Asymmetric keys end to end through the official tencentcloud-sdk-nodejs client (and a smoke test
// through tresor/sdk): every usage, GetPublicKey, Sign/Verify in RAW and DIGEST mode with each
// algorithm, AsymmetricRsaDecrypt and AsymmetricSm2Decrypt, and EncryptionPublicKey on Decrypt and
// GenerateDataKey. Interoperability is checked with the openssl command line: our signatures verify
// with `openssl pkeyutl -verify` using GetPublicKey's PEM, and ciphertexts openssl made with that PEM
// decrypt through the API. Wrong usage, wrong algorithm, bad DER, oversized and tampered inputs get
// Tencent error codes and change nothing; a tampered signature verifies as false.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { KmsClient } from "tresor/sdk";
import { sm2CiphertextFromRaw, sm2Digest, sm2GenerateKeyPair, sm2PrivateKeyToPkcs8, sm2PublicKeyFromSpki, sm2PublicKeyToSpki, sm2Verify } from "../../src/crypto/sm2.js";
import { opensslSkip, requireOpenssl } from "../helpers/openssl.js";
import { officialKmsClient, type OfficialCall } from "../helpers/official-client.js";
import { assertError, refusedWithoutChange, startInProcessServer, type InProcessServer } from "./helpers-inprocess.js";


type Call = OfficialCall;

let s: InProcessServer;
let call: Call;
let dir: string;
const keys: Record<string, string> = {};
const pems: Record<string, string> = {};

const USAGES = {
  rsaDecrypt: "ASYMMETRIC_DECRYPT_RSA_2048",
  rsaDecrypt3072: "ASYMMETRIC_DECRYPT_RSA_3072",
  rsaDecrypt4096: "ASYMMETRIC_DECRYPT_RSA_4096",
  sm2Decrypt: "ASYMMETRIC_DECRYPT_SM2",
  sm2Sign: "ASYMMETRIC_SIGN_VERIFY_SM2",
  rsaSign: "ASYMMETRIC_SIGN_VERIFY_RSA_2048",
  rsaSign3072: "ASYMMETRIC_SIGN_VERIFY_RSA_3072",
  rsaSign4096: "ASYMMETRIC_SIGN_VERIFY_RSA_4096",
  ecc: "ASYMMETRIC_SIGN_VERIFY_ECC",
  ecc384: "ASYMMETRIC_SIGN_VERIFY_ECDSA384",
} as const;
type Name = keyof typeof USAGES;

before(async () => {
  s = await startInProcessServer();
  dir = mkdtempSync(path.join(tmpdir(), "tresor-asym-"));
  call = officialKmsClient(s, { reqTimeout: 30 });
  keys.symmetric = (await call("CreateKey", { Alias: "asym-symmetric" })).KeyId;
  for (const [name, usage] of Object.entries(USAGES)) {
    const created = await call("CreateKey", { Alias: `asym-${name}`, KeyUsage: usage });
    assert.equal(created.KeyUsage, usage);
    assert.equal(created.KeyState, "Enabled");
    keys[name] = created.KeyId;
    pems[name] = (await call("GetPublicKey", { KeyId: created.KeyId })).PublicKeyPem;
  }
});

after(async () => {
  await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The call fails with `code` and no key record changes. */
const refused = (action: string, params: object, code: string, mention?: string): Promise<void> => refusedWithoutChange(s, call, action, params, code, mention);

function file(name: string, data: string | Buffer): string {
  const p = path.join(dir, name);
  writeFileSync(p, data);
  return p;
}

function openssl(args: string[], input?: Buffer): Buffer {
  return execFileSync("openssl", args, { input, stdio: ["pipe", "pipe", "pipe"] });
}

function opensslVerifies(args: string[]): boolean {
  try {
    return openssl(args).toString().includes("Signature Verified Successfully");
  } catch {
    return false;
  }
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString("base64");
const unb64 = (s: string) => Buffer.from(s, "base64");

describe("key usages", () => {
  it("CreateKey fixes each usage with its spec and the Type Tencent reports", async () => {
    const specs: Record<Name, [string, number]> = {
      rsaDecrypt: ["RSA_2048", 2],
      rsaDecrypt3072: ["RSA_3072", 2],
      rsaDecrypt4096: ["RSA_4096", 2],
      sm2Decrypt: ["SM2", 4],
      sm2Sign: ["SM2", 4],
      rsaSign: ["RSA_2048", 2],
      rsaSign3072: ["RSA_3072", 2],
      rsaSign4096: ["RSA_4096", 2],
      ecc: ["ECC_P256", 2],
      ecc384: ["ECC_P384", 2],
    };
    for (const [name, [spec, type]] of Object.entries(specs) as [Name, [string, number]][]) {
      const meta = (await call("DescribeKey", { KeyId: keys[name] })).KeyMetadata;
      assert.equal(meta.KeyUsage, USAGES[name]);
      assert.equal(meta.KeySpec, spec, name);
      assert.equal(meta.Type, type, name);
    }
    const listed = await call("ListKeyDetail", { KeyUsage: "ASYMMETRIC_SIGN_VERIFY_SM2" });
    assert.deepEqual(listed.KeyMetadatas.map((m: { KeyId: string }) => m.KeyId), [keys.sm2Sign]);
    const defaultList = await call("ListKeyDetail", { Limit: 200 });
    assert.ok(defaultList.KeyMetadatas.every((m: { KeyUsage: string }) => m.KeyUsage === "ENCRYPT_DECRYPT"), "an empty KeyUsage lists symmetric keys only");
  });

  it("CreateKey refuses an unknown usage and a KeySpec that contradicts the usage", async () => {
    await refused("CreateKey", { Alias: "asym-bad-usage", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_DSA" }, "InvalidParameterValue.InvalidKeyUsage", "KeyUsage");
    await refused("CreateKey", { Alias: "asym-bad-spec", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_ECC", KeySpec: "RSA_2048" }, "InvalidParameterValue", "KeySpec");
    await refused("CreateKey", { Alias: "asym-bad-spec2", KeySpec: "SM2" }, "InvalidParameterValue", "KeySpec");
  });

  it("ListAlgorithms lists the asymmetric and the signing usages", async () => {
    const a = await call("ListAlgorithms");
    const pairs = (list: { KeyUsage: string; Algorithm: string }[]) => list.map((x) => `${x.KeyUsage}=${x.Algorithm}`).sort();
    assert.deepEqual(pairs(a.AsymmetricAlgorithms), [
      "ASYMMETRIC_DECRYPT_ML_KEM_1024=ML_KEM_1024",
      "ASYMMETRIC_DECRYPT_ML_KEM_768=ML_KEM_768",
      "ASYMMETRIC_DECRYPT_RSA_2048=RSA_2048",
      "ASYMMETRIC_DECRYPT_RSA_3072=RSA_3072",
      "ASYMMETRIC_DECRYPT_RSA_4096=RSA_4096",
      "ASYMMETRIC_DECRYPT_SM2=SM2",
      "ASYMMETRIC_KEY_AGREEMENT_ECC_P256=ECC",
      "ASYMMETRIC_KEY_AGREEMENT_ECC_P384=ECDSA384",
      "ASYMMETRIC_KEY_AGREEMENT_SM2=SM2",
    ]);
    assert.deepEqual(pairs(a.AsymmetricSignVerifyAlgorithms), [
      "ASYMMETRIC_SIGN_VERIFY_ECC=ECC",
      "ASYMMETRIC_SIGN_VERIFY_ECDSA384=ECDSA384",
      "ASYMMETRIC_SIGN_VERIFY_ECDSA521=ECC_P521",
      "ASYMMETRIC_SIGN_VERIFY_ED25519=ED25519",
      "ASYMMETRIC_SIGN_VERIFY_ML_DSA_44=ML_DSA_44",
      "ASYMMETRIC_SIGN_VERIFY_ML_DSA_65=ML_DSA_65",
      "ASYMMETRIC_SIGN_VERIFY_ML_DSA_87=ML_DSA_87",
      "ASYMMETRIC_SIGN_VERIFY_RSA_2048=RSA_2048",
      "ASYMMETRIC_SIGN_VERIFY_RSA_3072=RSA_3072",
      "ASYMMETRIC_SIGN_VERIFY_RSA_4096=RSA_4096",
      "ASYMMETRIC_SIGN_VERIFY_SM2=SM2",
    ]);
  });

  it("symmetric actions refuse asymmetric keys with InvalidKeyUsage", async () => {
    await refused("Encrypt", { KeyId: keys.rsaDecrypt, Plaintext: b64("x") }, "InvalidParameterValue.InvalidKeyUsage");
    await refused("GenerateDataKey", { KeyId: keys.sm2Decrypt, NumberOfBytes: 16 }, "InvalidParameterValue.InvalidKeyUsage");
    const blob = (await call("Encrypt", { KeyId: keys.symmetric, Plaintext: b64("x") })).CiphertextBlob;
    await refused("ReEncrypt", { CiphertextBlob: blob, DestinationKeyId: keys.ecc }, "InvalidParameterValue.InvalidKeyUsage");
  });
});

describe("GetPublicKey", () => {
  it("gives the same key as base64 DER and as PEM, for every asymmetric usage", async () => {
    for (const name of Object.keys(USAGES) as Name[]) {
      const r = await call("GetPublicKey", { KeyId: keys[name] });
      assert.equal(r.KeyId, keys[name]);
      assert.match(r.PublicKeyPem, /^-----BEGIN PUBLIC KEY-----\n(?:[A-Za-z0-9+/=]{1,64}\n)+-----END PUBLIC KEY-----\n$/);
      const fromPem = createPublicKey(r.PublicKeyPem).export({ type: "spki", format: "der" });
      assert.deepEqual(fromPem, unb64(r.PublicKey), name);
    }
    const sm2 = unb64((await call("GetPublicKey", { KeyId: keys.sm2Sign })).PublicKey);
    assert.equal(sm2PublicKeyFromSpki(sm2).length, 65);
  });

  it("refuses a symmetric key, a disabled key and an unknown key", async () => {
    await refused("GetPublicKey", { KeyId: keys.symmetric }, "InvalidParameterValue.InvalidKeyUsage");
    await refused("GetPublicKey", { KeyId: "00000000-0000-4000-8000-000000000000" }, "ResourceUnavailable.CmkNotFound");
    await refused("GetPublicKey", { KeyId: "nope" }, "InvalidParameterValue.InvalidKeyId");
  });
});

const SIGNERS: { name: Name; algorithm: string; hash: "sha256" | "sha384" | "sm3" }[] = [
  { name: "rsaSign", algorithm: "RSA_PSS_SHA_256", hash: "sha256" },
  { name: "rsaSign", algorithm: "RSA_PKCS1_SHA_256", hash: "sha256" },
  { name: "rsaSign3072", algorithm: "RSA_PSS_SHA_256", hash: "sha256" },
  { name: "rsaSign4096", algorithm: "RSA_PKCS1_SHA_256", hash: "sha256" },
  { name: "ecc", algorithm: "ECC_P256_R1", hash: "sha256" },
  { name: "ecc384", algorithm: "ECDSA_P384_SHA_384", hash: "sha384" },
  { name: "sm2Sign", algorithm: "SM2DSA", hash: "sm3" },
];

function opensslVerifyArgs(algorithm: string, pem: string, signature: Buffer, message: Buffer): string[] {
  const sig = file("sig.bin", signature);
  if (algorithm === "SM2DSA") {
    return ["pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin", "-in", file("msg.bin", message), "-sigfile", sig, "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"];
  }
  const hash = algorithm === "ECDSA_P384_SHA_384" ? "sha384" : "sha256";
  const digest = file("digest.bin", createHash(hash).update(message).digest());
  const opts =
    algorithm === "RSA_PSS_SHA_256"
      ? ["-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32"]
      : algorithm === "RSA_PKCS1_SHA_256"
        ? ["-pkeyopt", "digest:sha256"]
        : [];
  return ["pkeyutl", "-verify", "-pubin", "-inkey", pem, "-in", digest, "-sigfile", sig, ...opts];
}

describe("SignByAsymmetricKey and VerifyByAsymmetricKey", { skip: opensslSkip }, () => {
  before(requireOpenssl);

  for (const { name, algorithm, hash } of SIGNERS) {
    it(`${USAGES[name]} / ${algorithm}: RAW and DIGEST signatures verify with openssl and with the API; altered ones are false`, async () => {
      const pem = file(`${name}.pem`, pems[name]!);
      const message = randomBytes(777);
      const spki = createPublicKey(pems[name]!).export({ type: "spki", format: "der" });
      // SM2's DIGEST is e = SM3(Z || M) with the default identity (GB/T 32918.2); the others hash M.
      const digest = hash === "sm3" ? sm2Digest(sm2PublicKeyFromSpki(spki), message) : createHash(hash).update(message).digest();
      for (const [messageType, sent] of [["RAW", message], ["DIGEST", digest]] as const) {
        const signed = await call("SignByAsymmetricKey", { KeyId: keys[name], Algorithm: algorithm, Message: b64(sent), MessageType: messageType });
        const signature = unb64(signed.Signature);
        assert.ok(opensslVerifies(opensslVerifyArgs(algorithm, pem, signature, message)), `openssl verifies the ${messageType} signature`);
        if (algorithm === "SM2DSA") assert.ok(sm2Verify(sm2PublicKeyFromSpki(spki), message, signature));
        for (const [type, m] of [["RAW", message], ["DIGEST", digest]] as const) {
          const v = await call("VerifyByAsymmetricKey", { KeyId: keys[name], Algorithm: algorithm, Message: b64(m), MessageType: type, SignatureValue: signed.Signature });
          assert.equal(v.SignatureValid, true, `a ${messageType} signature verifies as ${type}`);
        }
        const tampered = Buffer.from(signature);
        tampered[tampered.length - 5] = tampered[tampered.length - 5]! ^ 0x10;
        assert.equal(opensslVerifies(opensslVerifyArgs(algorithm, pem, tampered, message)), false, "openssl rejects the altered signature");
        for (const [label, params] of [
          ["altered signature", { Message: b64(message), SignatureValue: b64(tampered) }],
          ["other message", { Message: b64(Buffer.concat([message, Buffer.of(0)])), SignatureValue: signed.Signature }],
          ["garbage signature", { Message: b64(message), SignatureValue: b64("not a signature") }],
          ["truncated signature", { Message: b64(message), SignatureValue: b64(signature.subarray(0, signature.length - 1)) }],
        ] as const) {
          const v = await call("VerifyByAsymmetricKey", { KeyId: keys[name], Algorithm: algorithm, ...params });
          assert.equal(v.SignatureValid, false, label);
        }
      }
      // The default MessageType is RAW.
      const plain = await call("SignByAsymmetricKey", { KeyId: keys[name], Algorithm: algorithm, Message: b64(message) });
      assert.equal((await call("VerifyByAsymmetricKey", { KeyId: keys[name], Algorithm: algorithm, Message: b64(message), SignatureValue: plain.Signature })).SignatureValid, true);
    });
  }

  it("a 4096-byte RAW message signs; 4097 bytes do not", async () => {
    const big = randomBytes(4096);
    const signed = await call("SignByAsymmetricKey", { KeyId: keys.sm2Sign, Algorithm: "SM2DSA", Message: b64(big) });
    assert.ok(opensslVerifies(opensslVerifyArgs("SM2DSA", file("sm2.pem", pems.sm2Sign!), unb64(signed.Signature), big)));
    await refused("SignByAsymmetricKey", { KeyId: keys.sm2Sign, Algorithm: "SM2DSA", Message: b64(randomBytes(4097)) }, "InvalidParameterValue", "Message");
  });

  it("refuses the wrong usage, the wrong algorithm for the key, a DIGEST of the wrong length and bad parameters", async () => {
    const msg = b64("hello");
    const sig = (await call("SignByAsymmetricKey", { KeyId: keys.ecc, Algorithm: "ECC_P256_R1", Message: msg })).Signature;
    for (const action of ["SignByAsymmetricKey", "VerifyByAsymmetricKey"]) {
      const extra = action === "VerifyByAsymmetricKey" ? { SignatureValue: sig } : {};
      await refused(action, { KeyId: keys.rsaDecrypt, Algorithm: "RSA_PSS_SHA_256", Message: msg, ...extra }, "InvalidParameterValue.InvalidKeyUsage");
      await refused(action, { KeyId: keys.sm2Decrypt, Algorithm: "SM2DSA", Message: msg, ...extra }, "InvalidParameterValue.InvalidKeyUsage");
      await refused(action, { KeyId: keys.symmetric, Algorithm: "SM2DSA", Message: msg, ...extra }, "InvalidParameterValue.InvalidKeyUsage");
      await refused(action, { KeyId: keys.ecc, Algorithm: "RSA_PSS_SHA_256", Message: msg, ...extra }, "InvalidParameterValue", "Algorithm");
      await refused(action, { KeyId: keys.ecc384, Algorithm: "ECC_P256_R1", Message: msg, ...extra }, "InvalidParameterValue", "Algorithm");
      await refused(action, { KeyId: keys.ecc, Algorithm: "ECDSA_SHA_256", Message: msg, ...extra }, "InvalidParameterValue", "Algorithm");
      await refused(action, { KeyId: keys.ecc, Algorithm: "ECC_P256_R1", Message: b64(randomBytes(31)), MessageType: "DIGEST", ...extra }, "InvalidParameterValue", "Message");
      await refused(action, { KeyId: keys.ecc384, Algorithm: "ECDSA_P384_SHA_384", Message: b64(randomBytes(32)), MessageType: "DIGEST", ...extra }, "InvalidParameterValue", "Message");
      await refused(action, { KeyId: keys.ecc, Algorithm: "ECC_P256_R1", Message: msg, MessageType: "HASH", ...extra }, "InvalidParameterValue", "MessageType");
      await refused(action, { KeyId: keys.ecc, Algorithm: "ECC_P256_R1", Message: "not base64!", ...extra }, "InvalidParameterValue", "Message");
      await refused(action, { KeyId: keys.ecc, Algorithm: "ECC_P256_R1", ...extra }, "MissingParameter", "Message");
    }
    await refused("VerifyByAsymmetricKey", { KeyId: keys.ecc, Algorithm: "ECC_P256_R1", Message: msg, SignatureValue: "%%%" }, "InvalidParameterValue", "SignatureValue");
    await refused("VerifyByAsymmetricKey", { KeyId: keys.ecc, Algorithm: "ECC_P256_R1", Message: msg, SignatureValue: b64(randomBytes(513)) }, "InvalidParameterValue", "SignatureValue");
    await refused("VerifyByAsymmetricKey", { KeyId: keys.ecc, Algorithm: "ECC_P256_R1", Message: msg }, "MissingParameter", "SignatureValue");
  });
});

function rsaOpts(algorithm: string): string[] {
  if (algorithm === "RSAES_PKCS1_V1_5") return ["-pkeyopt", "rsa_padding_mode:pkcs1"];
  const md = algorithm === "RSAES_OAEP_SHA_1" ? "sha1" : "sha256";
  return ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", `rsa_oaep_md:${md}`, "-pkeyopt", `rsa_mgf1_md:${md}`];
}

describe("AsymmetricRsaDecrypt", { skip: opensslSkip }, () => {
  before(requireOpenssl);

  for (const name of ["rsaDecrypt", "rsaDecrypt3072", "rsaDecrypt4096"] as const) {
    it(`${USAGES[name]}: decrypts what openssl pkeyutl -encrypt made with GetPublicKey's PEM, for each algorithm`, async () => {
      const pem = file(`${name}.pem`, pems[name]!);
      for (const algorithm of ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSAES_PKCS1_V1_5"]) {
        const plaintext = randomBytes(100);
        const ct = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", pem, ...rsaOpts(algorithm)], plaintext);
        const r = await call("AsymmetricRsaDecrypt", { KeyId: keys[name], Ciphertext: b64(ct), Algorithm: algorithm });
        assert.equal(r.KeyId, keys[name]);
        assert.deepEqual(unb64(r.Plaintext), plaintext, `${name} ${algorithm}`);
      }
    });
  }

  it("answers DecryptError for an altered OAEP ciphertext, the wrong OAEP hash and a wrong length", async () => {
    const pem = file("rsa.pem", pems.rsaDecrypt!);
    const ct = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", pem, ...rsaOpts("RSAES_OAEP_SHA_256")], Buffer.from("secret"));
    const bad = Buffer.from(ct);
    bad[7] = bad[7]! ^ 1;
    await refused("AsymmetricRsaDecrypt", { KeyId: keys.rsaDecrypt, Ciphertext: b64(bad), Algorithm: "RSAES_OAEP_SHA_256" }, "FailedOperation.DecryptError", "Ciphertext");
    await refused("AsymmetricRsaDecrypt", { KeyId: keys.rsaDecrypt, Ciphertext: b64(ct), Algorithm: "RSAES_OAEP_SHA_1" }, "FailedOperation.DecryptError");
    await refused("AsymmetricRsaDecrypt", { KeyId: keys.rsaDecrypt, Ciphertext: b64(ct.subarray(1)), Algorithm: "RSAES_OAEP_SHA_256" }, "FailedOperation.DecryptError");
    await refused("AsymmetricRsaDecrypt", { KeyId: keys.rsaDecrypt, Ciphertext: b64(randomBytes(513)), Algorithm: "RSAES_OAEP_SHA_256" }, "InvalidParameterValue", "Ciphertext");
  });

  it("PKCS#1 v1.5: an altered ciphertext gets a stable substitute plaintext, not an error (implicit rejection)", async () => {
    const pem = file("rsa.pem", pems.rsaDecrypt!);
    const plaintext = Buffer.from("pkcs1 secret");
    const ct = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", pem, ...rsaOpts("RSAES_PKCS1_V1_5")], plaintext);
    const bad = Buffer.from(ct);
    bad[50] = bad[50]! ^ 0x80;
    const first = await call("AsymmetricRsaDecrypt", { KeyId: keys.rsaDecrypt, Ciphertext: b64(bad), Algorithm: "RSAES_PKCS1_V1_5" });
    const again = await call("AsymmetricRsaDecrypt", { KeyId: keys.rsaDecrypt, Ciphertext: b64(bad), Algorithm: "RSAES_PKCS1_V1_5" });
    assert.equal(first.Plaintext, again.Plaintext);
    assert.notDeepEqual(unb64(first.Plaintext), plaintext);
  });

  it("refuses a non-RSA-decrypt key, an unknown algorithm and a missing one", async () => {
    const ct = b64(randomBytes(256));
    await refused("AsymmetricRsaDecrypt", { KeyId: keys.rsaSign, Ciphertext: ct, Algorithm: "RSAES_OAEP_SHA_256" }, "InvalidParameterValue.InvalidKeyUsage");
    await refused("AsymmetricRsaDecrypt", { KeyId: keys.sm2Decrypt, Ciphertext: ct, Algorithm: "RSAES_OAEP_SHA_256" }, "InvalidParameterValue.InvalidKeyUsage");
    await refused("AsymmetricRsaDecrypt", { KeyId: keys.symmetric, Ciphertext: ct, Algorithm: "RSAES_OAEP_SHA_256" }, "InvalidParameterValue.InvalidKeyUsage");
    await refused("AsymmetricRsaDecrypt", { KeyId: keys.rsaDecrypt, Ciphertext: ct, Algorithm: "RSAES_OAEP_SHA_512" }, "InvalidParameterValue", "Algorithm");
    await refused("AsymmetricRsaDecrypt", { KeyId: keys.rsaDecrypt, Ciphertext: ct }, "MissingParameter", "Algorithm");
  });
});

describe("AsymmetricSm2Decrypt", { skip: opensslSkip }, () => {
  before(requireOpenssl);

  it("decrypts what openssl pkeyutl -encrypt made with GetPublicKey's PEM", async () => {
    const pem = file("sm2dec.pem", pems.sm2Decrypt!);
    for (const length of [1, 32, 140]) {
      const plaintext = randomBytes(length);
      const ct = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", pem], plaintext);
      assert.ok(ct.length <= 256);
      const r = await call("AsymmetricSm2Decrypt", { KeyId: keys.sm2Decrypt, Ciphertext: b64(ct) });
      assert.equal(r.KeyId, keys.sm2Decrypt);
      assert.deepEqual(unb64(r.Plaintext), plaintext);
    }
  });

  it("answers DecryptError for bad DER and altered ciphertexts, InvalidParameterValue over 256 bytes", async () => {
    const pem = file("sm2dec.pem", pems.sm2Decrypt!);
    const ct = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", pem], Buffer.from("sm2 secret"));
    const altered = Buffer.from(ct);
    altered[altered.length - 1] = altered[altered.length - 1]! ^ 1; // inside C2: C3 no longer matches
    await refused("AsymmetricSm2Decrypt", { KeyId: keys.sm2Decrypt, Ciphertext: b64(altered) }, "FailedOperation.DecryptError", "Ciphertext");
    await refused("AsymmetricSm2Decrypt", { KeyId: keys.sm2Decrypt, Ciphertext: b64(randomBytes(120)) }, "FailedOperation.DecryptError");
    await refused("AsymmetricSm2Decrypt", { KeyId: keys.sm2Decrypt, Ciphertext: b64(ct.subarray(0, ct.length - 3)) }, "FailedOperation.DecryptError");
    const raw = Buffer.concat([Buffer.of(4), randomBytes(64), randomBytes(32), randomBytes(10)]);
    await refused("AsymmetricSm2Decrypt", { KeyId: keys.sm2Decrypt, Ciphertext: b64(raw) }, "FailedOperation.DecryptError", "Ciphertext");
    await refused("AsymmetricSm2Decrypt", { KeyId: keys.sm2Decrypt, Ciphertext: b64(randomBytes(257)) }, "InvalidParameterValue", "Ciphertext");
    await refused("AsymmetricSm2Decrypt", { KeyId: keys.sm2Sign, Ciphertext: b64(ct) }, "InvalidParameterValue.InvalidKeyUsage");
    await refused("AsymmetricSm2Decrypt", { KeyId: keys.rsaDecrypt, Ciphertext: b64(ct) }, "InvalidParameterValue.InvalidKeyUsage");
    await refused("AsymmetricSm2Decrypt", { KeyId: keys.sm2Decrypt, Ciphertext: b64(ct), Algorithm: "SM2" }, "UnknownParameter", "Algorithm");
  });
});

describe("EncryptionPublicKey on GenerateDataKey and Decrypt", { skip: opensslSkip }, () => {
  before(requireOpenssl);

  it("encrypts the plaintext to an SM2 key (raw C1C3C2 by default, or ASN.1) that AsymmetricSm2Decrypt opens", async () => {
    const dk = await call("GenerateDataKey", { KeyId: keys.symmetric, NumberOfBytes: 32, EncryptionPublicKey: pems.sm2Decrypt });
    const clear = unb64((await call("Decrypt", { CiphertextBlob: dk.CiphertextBlob })).Plaintext);
    const raw = unb64(dk.Plaintext);
    assert.equal(raw[0], 0x04);
    assert.equal(raw.length, 65 + 32 + 32, "04||x||y||C3||C2");
    const opened = await call("AsymmetricSm2Decrypt", { KeyId: keys.sm2Decrypt, Ciphertext: b64(sm2CiphertextFromRaw(raw)) });
    assert.deepEqual(unb64(opened.Plaintext), clear);

    const asn1 = await call("Decrypt", { CiphertextBlob: dk.CiphertextBlob, EncryptionPublicKey: pems.sm2Decrypt, EncryptionAlgorithm: "SM2_C1C3C2_ASN1" });
    assert.equal(unb64(asn1.Plaintext)[0], 0x30);
    const opened2 = await call("AsymmetricSm2Decrypt", { KeyId: keys.sm2Decrypt, Ciphertext: asn1.Plaintext });
    assert.deepEqual(unb64(opened2.Plaintext), clear);
  });

  it("encrypts to the caller's own SM2 and RSA keys so that openssl decrypts it", async () => {
    const plaintext = Buffer.from("wrapped for the caller");
    const blob = (await call("Encrypt", { KeyId: keys.symmetric, Plaintext: b64(plaintext) })).CiphertextBlob;

    const sm2 = sm2GenerateKeyPair();
    const sm2Pub = `-----BEGIN PUBLIC KEY-----\n${sm2PublicKeyToSpki(sm2.publicKey).toString("base64")}\n-----END PUBLIC KEY-----\n`;
    const sm2Priv = file("caller-sm2.der", sm2PrivateKeyToPkcs8(sm2.privateKey));
    const viaSm2 = await call("Decrypt", { CiphertextBlob: blob, EncryptionPublicKey: sm2Pub, EncryptionAlgorithm: "SM2_C1C3C2_ASN1" });
    assert.deepEqual(openssl(["pkeyutl", "-decrypt", "-inkey", sm2Priv, "-keyform", "DER"], unb64(viaSm2.Plaintext)), plaintext);

    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const rsaPriv = file("caller-rsa.pem", rsa.privateKey.export({ type: "pkcs8", format: "pem" }));
    for (const algorithm of ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSAES_PKCS1_V1_5"]) {
      const r = await call("Decrypt", { CiphertextBlob: blob, EncryptionPublicKey: rsa.publicKey.export({ type: "spki", format: "pem" }), EncryptionAlgorithm: algorithm });
      assert.deepEqual(openssl(["pkeyutl", "-decrypt", "-inkey", rsaPriv, ...rsaOpts(algorithm)], unb64(r.Plaintext)), plaintext, algorithm);
    }
  });

  it("refuses a key that does not fit the algorithm, a malformed key, and an algorithm without a key", async () => {
    const blob = (await call("Encrypt", { KeyId: keys.symmetric, Plaintext: b64("x") })).CiphertextBlob;
    await refused("Decrypt", { CiphertextBlob: blob, EncryptionPublicKey: pems.rsaDecrypt, EncryptionAlgorithm: "SM2" }, "InvalidParameterValue", "EncryptionPublicKey");
    await refused("Decrypt", { CiphertextBlob: blob, EncryptionPublicKey: pems.sm2Decrypt, EncryptionAlgorithm: "RSAES_OAEP_SHA_256" }, "InvalidParameterValue", "EncryptionPublicKey");
    await refused("Decrypt", { CiphertextBlob: blob, EncryptionPublicKey: "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----" }, "InvalidParameterValue", "EncryptionPublicKey");
    await refused("Decrypt", { CiphertextBlob: blob, EncryptionPublicKey: pems.sm2Decrypt, EncryptionAlgorithm: "SM2_C1C3C2" }, "InvalidParameterValue", "EncryptionAlgorithm");
    await refused("GenerateDataKey", { KeyId: keys.symmetric, NumberOfBytes: 16, EncryptionAlgorithm: "SM2" }, "MissingParameter", "EncryptionPublicKey");
    // A data key too long for one RSA-2048 OAEP-SHA-256 block (190 bytes at most).
    await refused("GenerateDataKey", { KeyId: keys.symmetric, NumberOfBytes: 191, EncryptionPublicKey: pems.rsaDecrypt, EncryptionAlgorithm: "RSAES_OAEP_SHA_256" }, "FailedOperation.EncryptionError");
  });
});

describe("key states", () => {
  it("a Disabled asymmetric key refuses every asymmetric action with CmkStateNotSupport", async () => {
    const sign = (await call("CreateKey", { Alias: "asym-disabled-sign", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_SM2" })).KeyId;
    const rsa = (await call("CreateKey", { Alias: "asym-disabled-rsa", KeyUsage: "ASYMMETRIC_DECRYPT_RSA_2048" })).KeyId;
    const sm2 = (await call("CreateKey", { Alias: "asym-disabled-sm2", KeyUsage: "ASYMMETRIC_DECRYPT_SM2" })).KeyId;
    const sig = (await call("SignByAsymmetricKey", { KeyId: sign, Algorithm: "SM2DSA", Message: b64("m") })).Signature;
    for (const id of [sign, rsa, sm2]) await call("DisableKey", { KeyId: id });
    const code = "ResourceUnavailable.CmkStateNotSupport";
    await refused("GetPublicKey", { KeyId: sign }, code);
    await refused("SignByAsymmetricKey", { KeyId: sign, Algorithm: "SM2DSA", Message: b64("m") }, code);
    await refused("VerifyByAsymmetricKey", { KeyId: sign, Algorithm: "SM2DSA", Message: b64("m"), SignatureValue: sig }, code);
    await refused("AsymmetricRsaDecrypt", { KeyId: rsa, Ciphertext: b64(randomBytes(256)), Algorithm: "RSAES_OAEP_SHA_1" }, code);
    await refused("AsymmetricSm2Decrypt", { KeyId: sm2, Ciphertext: b64(randomBytes(120)) }, code);
    await call("EnableKey", { KeyId: sign });
    assert.equal((await call("VerifyByAsymmetricKey", { KeyId: sign, Algorithm: "SM2DSA", Message: b64("m"), SignatureValue: sig })).SignatureValid, true);
  });
});

describe("through tresor/sdk", () => {
  it("has typed methods for the asymmetric actions", async () => {
    const client = new KmsClient({ endpoint: s.url, secretId: s.secretId, secretKey: s.secretKey, region: s.region });
    try {
      const pub = await client.getPublicKey({ KeyId: keys.ecc! });
      assert.equal(pub.PublicKeyPem, pems.ecc);
      const signed = await client.signByAsymmetricKey({ KeyId: keys.ecc!, Algorithm: "ECC_P256_R1", Message: b64("sdk") });
      const v = await client.verifyByAsymmetricKey({ KeyId: keys.ecc!, Algorithm: "ECC_P256_R1", Message: b64("sdk"), SignatureValue: signed.Signature! });
      assert.equal(v.SignatureValid, true);
      const ct = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", file("sdk-sm2.pem", pems.sm2Decrypt!)], Buffer.from("sdk"));
      assert.equal((await client.asymmetricSm2Decrypt({ KeyId: keys.sm2Decrypt!, Ciphertext: b64(ct) })).Plaintext, b64("sdk"));
      const rct = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", file("sdk-rsa.pem", pems.rsaDecrypt!), ...rsaOpts("RSAES_OAEP_SHA_256")], Buffer.from("sdk"));
      assert.equal((await client.asymmetricRsaDecrypt({ KeyId: keys.rsaDecrypt!, Ciphertext: b64(rct), Algorithm: "RSAES_OAEP_SHA_256" })).Plaintext, b64("sdk"));
    } finally {
      client.close();
    }
  });

  it("never logs a plaintext, and answers in Tencent's error shape", async () => {
    const r = await s.raw("SignByAsymmetricKey", { KeyId: keys.rsaDecrypt, Algorithm: "RSA_PSS_SHA_256", Message: b64("x") });
    assertError(r, "InvalidParameterValue.InvalidKeyUsage", keys.rsaDecrypt!);
    assert.ok(!s.logs.text().includes(b64("sdk")));
  });
});
