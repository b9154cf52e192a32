// HMAC, Ed25519 and key agreement (ECDH) keys through both protocols: the official Tencent SDK (GenerateMac and
// VerifyMac through its generic request(), SignByAsymmetricKey with ED25519) and @aws-sdk/client-kms
// (GenerateMac, VerifyMac, Sign ED25519_SHA_512). MACs are checked against HMAC computed
// independently by node:crypto after a rotation proves versions; Ed25519 signatures are verified
// by `openssl pkeyutl` with GetPublicKey's PEM.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { createPublicKey, diffieHellman, generateKeyPairSync } from "node:crypto";
import { CreateKeyCommand, DeriveSharedSecretCommand, GenerateMacCommand, GetPublicKeyCommand, SignCommand, VerifyMacCommand, type KMSClient } from "@aws-sdk/client-kms";
import { officialKmsClient, type OfficialCall } from "../helpers/official-client.js";
import { opensslSkip, requireOpenssl } from "../helpers/openssl.js";
import { awsClient } from "./aws/helpers.js";
import { refusedWithoutChange, startInProcessServer, type InProcessServer } from "./helpers-inprocess.js";

let s: InProcessServer;
let call: OfficialCall;
let kms: KMSClient;
let dir: string;
const b64 = (b: Buffer | string) => Buffer.from(b).toString("base64");
const unb64 = (text: string) => Buffer.from(text, "base64");
const SPECS = { HMAC_SHA256: ["HMAC_SHA_256", 32], HMAC_SHA384: ["HMAC_SHA_384", 48], HMAC_SHA512: ["HMAC_SHA_512", 64], HMAC_SM3: ["HMAC_SM3", 32] } as const;

before(async () => {
  s = await startInProcessServer({ region: "eu-test-1" });
  call = officialKmsClient(s, { reqTimeout: 30 });
  kms = awsClient(s);
  dir = mkdtempSync(path.join(tmpdir(), "tresor-mac-"));
});

after(async () => {
  kms?.destroy();
  await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

const refused = (action: string, params: object, code: string, mention?: string): Promise<void> => refusedWithoutChange(s, call, action, params, code, mention);

describe("HMAC keys through the Tencent protocol", () => {
  for (const [spec, [algorithm, length]] of Object.entries(SPECS)) {
    it(`${spec}: GenerateMac gives a ${length}-byte MAC that VerifyMac accepts and a changed one fails`, async () => {
      const created = await call("CreateKey", { Alias: `mac-${spec}`, KeyUsage: "GENERATE_VERIFY_MAC", KeySpec: spec });
      assert.equal(created.KeyUsage, "GENERATE_VERIFY_MAC");
      const meta = (await call("DescribeKey", { KeyId: created.KeyId })).KeyMetadata;
      assert.equal(meta.KeySpec, spec);
      assert.equal(meta.Type, spec === "HMAC_SM3" ? 4 : 2);
      const message = b64("authenticate me");
      const r = await call("GenerateMac", { KeyId: created.KeyId, Message: message, MacAlgorithm: algorithm });
      assert.equal(unb64(r.Mac).length, length);
      assert.equal(r.MacAlgorithm, algorithm);
      assert.equal((await call("VerifyMac", { KeyId: created.KeyId, Message: message, MacAlgorithm: algorithm, Mac: r.Mac })).MacValid, true);
      const mac = unb64(r.Mac);
      for (const i of [0, length - 1]) {
        const bad = Buffer.from(mac);
        bad[i]! ^= 1;
        assert.equal((await call("VerifyMac", { KeyId: created.KeyId, Message: message, MacAlgorithm: algorithm, Mac: b64(bad) })).MacValid, false);
      }
      assert.equal((await call("VerifyMac", { KeyId: created.KeyId, Message: b64("other"), MacAlgorithm: algorithm, Mac: r.Mac })).MacValid, false);
    });
  }

  it("defaults to HMAC_SM3 under the SM4 default, and lists the HMAC specs in ListAlgorithms", async () => {
    const created = await call("CreateKey", { Alias: "mac-default", KeyUsage: "GENERATE_VERIFY_MAC" });
    assert.equal((await call("DescribeKey", { KeyId: created.KeyId })).KeyMetadata.KeySpec, "HMAC_SM3");
    const listed = (await call("ListAlgorithms", {})).SymmetricAlgorithms.filter((a: { KeyUsage: string }) => a.KeyUsage === "GENERATE_VERIFY_MAC");
    assert.deepEqual(listed.map((a: { Algorithm: string }) => a.Algorithm), Object.keys(SPECS));
  });

  it("verifies a MAC made before a rotation, makes new ones with the new version, and keeps an archived key verifying only", async () => {
    const keyId = (await call("CreateKey", { Alias: "mac-rotating", KeyUsage: "GENERATE_VERIFY_MAC", KeySpec: "HMAC_SHA256" })).KeyId;
    const message = b64("kept for years");
    const before = (await call("GenerateMac", { KeyId: keyId, Message: message, MacAlgorithm: "HMAC_SHA_256" })).Mac;
    await call("EnableKeyRotation", { KeyId: keyId, RotateDays: 30 });
    await call("RotateKey", { KeyId: keyId });
    assert.equal((await call("ListKeyVersions", { KeyId: keyId })).CurrentVersion, 2);
    const afterRotation = (await call("GenerateMac", { KeyId: keyId, Message: message, MacAlgorithm: "HMAC_SHA_256" })).Mac;
    assert.notEqual(afterRotation, before);
    for (const mac of [before, afterRotation]) assert.equal((await call("VerifyMac", { KeyId: keyId, Message: message, MacAlgorithm: "HMAC_SHA_256", Mac: mac })).MacValid, true);
    await call("ArchiveKey", { KeyId: keyId });
    assert.equal((await call("VerifyMac", { KeyId: keyId, Message: message, MacAlgorithm: "HMAC_SHA_256", Mac: before })).MacValid, true);
    await refused("GenerateMac", { KeyId: keyId, Message: message, MacAlgorithm: "HMAC_SHA_256" }, "ResourceUnavailable.CmkArchived");
  });

  it("refuses the wrong MacAlgorithm, keys of other usages, other specs and oversize input", async () => {
    const keyId = (await call("CreateKey", { Alias: "mac-refusals", KeyUsage: "GENERATE_VERIFY_MAC", KeySpec: "HMAC_SHA384" })).KeyId;
    const symmetric = (await call("CreateKey", { Alias: "mac-symmetric" })).KeyId;
    await refused("GenerateMac", { KeyId: keyId, Message: b64("m"), MacAlgorithm: "HMAC_SHA_256" }, "InvalidParameterValue", "HMAC_SHA_384");
    await refused("GenerateMac", { KeyId: symmetric, Message: b64("m"), MacAlgorithm: "HMAC_SHA_256" }, "InvalidParameterValue.InvalidKeyUsage", symmetric);
    await refused("GenerateMac", { KeyId: keyId, Message: b64(Buffer.alloc(4097)), MacAlgorithm: "HMAC_SHA_384" }, "InvalidParameterValue", "Message");
    await refused("VerifyMac", { KeyId: keyId, Message: b64("m"), MacAlgorithm: "HMAC_SHA_384", Mac: b64(Buffer.alloc(65)) }, "InvalidParameterValue", "Mac");
    await refused("GenerateMac", { KeyId: keyId, Message: b64("m"), MacAlgorithm: "HMAC_MD5" }, "InvalidParameterValue", "MacAlgorithm");
    await refused("Encrypt", { KeyId: keyId, Plaintext: b64("m") }, "InvalidParameterValue.InvalidKeyUsage");
    await refused("CreateKey", { Alias: "mac-bad-spec", KeyUsage: "GENERATE_VERIFY_MAC", KeySpec: "AES_256" }, "InvalidParameterValue", "HMAC");
    await refused("CreateKey", { Alias: "mac-external", KeyUsage: "GENERATE_VERIFY_MAC", Type: 2 }, "InvalidParameterValue.InvalidKeyUsage");
  });
});

describe("HMAC keys through the AWS protocol", () => {
  it("CreateKey HMAC_256 / GENERATE_VERIFY_MAC, GenerateMac, VerifyMac, and KMSInvalidMacException for a wrong MAC", async () => {
    const meta = (await kms.send(new CreateKeyCommand({ KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC" }))).KeyMetadata!;
    assert.equal(meta.KeySpec, "HMAC_256");
    assert.equal(meta.KeyUsage, "GENERATE_VERIFY_MAC");
    assert.deepEqual(meta.MacAlgorithms, ["HMAC_SHA_256"]);
    const message = Buffer.from("through the AWS door");
    const made = await kms.send(new GenerateMacCommand({ KeyId: meta.KeyId!, Message: message, MacAlgorithm: "HMAC_SHA_256" }));
    assert.equal(Buffer.from(made.Mac!).length, 32);
    const ok = await kms.send(new VerifyMacCommand({ KeyId: meta.KeyId!, Message: message, MacAlgorithm: "HMAC_SHA_256", Mac: made.Mac! }));
    assert.equal(ok.MacValid, true);
    // The same key through the Tencent door gives the same MAC.
    const tencent = await call("GenerateMac", { KeyId: meta.KeyId!, Message: b64(message), MacAlgorithm: "HMAC_SHA_256" });
    assert.deepEqual(unb64(tencent.Mac), Buffer.from(made.Mac!));
    const bad = Buffer.from(made.Mac!);
    bad[5]! ^= 1;
    await assert.rejects(kms.send(new VerifyMacCommand({ KeyId: meta.KeyId!, Message: message, MacAlgorithm: "HMAC_SHA_256", Mac: bad })), { name: "KMSInvalidMacException" });
    await assert.rejects(kms.send(new CreateKeyCommand({ KeySpec: "HMAC_256", KeyUsage: "SIGN_VERIFY" })), { name: "InvalidKeyUsageException" });
  });
});

describe("Ed25519 keys through both protocols", () => {
  it("signs through the Tencent SDK what `openssl pkeyutl -verify -rawin` accepts; DIGEST and a changed signature fail", { skip: opensslSkip }, async () => {
    requireOpenssl();
    const keyId = (await call("CreateKey", { Alias: "ed25519", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_ED25519" })).KeyId;
    const pem = (await call("GetPublicKey", { KeyId: keyId })).PublicKeyPem;
    const message = Buffer.from("an Ed25519 message");
    const signature = unb64((await call("SignByAsymmetricKey", { KeyId: keyId, Algorithm: "ED25519", Message: b64(message) })).Signature);
    assert.equal(signature.length, 64);
    writeFileSync(path.join(dir, "ed.pem"), pem);
    writeFileSync(path.join(dir, "msg"), message);
    writeFileSync(path.join(dir, "sig"), signature);
    const out = execFileSync("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", path.join(dir, "ed.pem"), "-rawin", "-in", path.join(dir, "msg"), "-sigfile", path.join(dir, "sig")], { encoding: "utf8" });
    assert.match(out, /Signature Verified Successfully/);
    assert.equal((await call("VerifyByAsymmetricKey", { KeyId: keyId, Algorithm: "ED25519", Message: b64(message), SignatureValue: b64(signature) })).SignatureValid, true);
    const bad = Buffer.from(signature);
    bad[0]! ^= 1;
    assert.equal((await call("VerifyByAsymmetricKey", { KeyId: keyId, Algorithm: "ED25519", Message: b64(message), SignatureValue: b64(bad) })).SignatureValid, false);
    await refused("SignByAsymmetricKey", { KeyId: keyId, Algorithm: "ED25519", Message: b64(Buffer.alloc(32)), MessageType: "DIGEST" }, "InvalidParameterValue", "DIGEST");
    await refused("SignByAsymmetricKey", { KeyId: keyId, Algorithm: "ECC_P256_R1", Message: b64(message) }, "InvalidParameterValue", "ED25519");
  });

  it("creates ECC_NIST_EDWARDS25519 keys and signs with ED25519_SHA_512 through the AWS SDK", { skip: opensslSkip }, async () => {
    requireOpenssl();
    const meta = (await kms.send(new CreateKeyCommand({ KeySpec: "ECC_NIST_EDWARDS25519", KeyUsage: "SIGN_VERIFY" }))).KeyMetadata!;
    assert.deepEqual(meta.SigningAlgorithms, ["ED25519_SHA_512"]);
    const message = Buffer.from("signed through the AWS door");
    const signed = await kms.send(new SignCommand({ KeyId: meta.KeyId!, Message: message, SigningAlgorithm: "ED25519_SHA_512" }));
    const spki = Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId: meta.KeyId! }))).PublicKey!);
    writeFileSync(path.join(dir, "aws.der"), spki);
    writeFileSync(path.join(dir, "aws-msg"), message);
    writeFileSync(path.join(dir, "aws-sig"), Buffer.from(signed.Signature!));
    const out = execFileSync(
      "openssl",
      ["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", path.join(dir, "aws.der"), "-rawin", "-in", path.join(dir, "aws-msg"), "-sigfile", path.join(dir, "aws-sig")],
      { encoding: "utf8" },
    );
    assert.match(out, /Signature Verified Successfully/);
  });
});

describe("key agreement (DeriveSharedSecret) through both protocols", () => {
  it("P-256 and P-384 through the Tencent door: the secret is the peer's own ECDH with GetPublicKey's key", async () => {
    for (const [usage, curve] of [["ASYMMETRIC_KEY_AGREEMENT_ECC_P256", "prime256v1"], ["ASYMMETRIC_KEY_AGREEMENT_ECC_P384", "secp384r1"]] as const) {
      const keyId = (await call("CreateKey", { Alias: `ecdh-${curve}`, KeyUsage: usage })).KeyId;
      const peer = generateKeyPairSync("ec", { namedCurve: curve });
      const r = await call("DeriveSharedSecret", { KeyId: keyId, KeyAgreementAlgorithm: "ECDH", PublicKey: b64(peer.publicKey.export({ format: "der", type: "spki" })) });
      const serverPublic = (await call("GetPublicKey", { KeyId: keyId })).PublicKeyPem;
      const expected = diffieHellman({ privateKey: peer.privateKey, publicKey: createPublicKey(serverPublic) });
      assert.deepEqual(unb64(r.SharedSecret), expected);
      assert.equal(r.KeyAgreementAlgorithm, "ECDH");
    }
  });

  it("refuses a peer key of another curve, off the curve or at infinity, and keys of other usages, changing nothing and staying up", async () => {
    const keyId = (await call("CreateKey", { Alias: "ecdh-refusals", KeyUsage: "ASYMMETRIC_KEY_AGREEMENT_ECC_P256" })).KeyId;
    const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({ format: "der", type: "spki" });
    const offCurve = Buffer.from(p256);
    offCurve[offCurve.length - 1]! ^= 1;
    const algorithm = p256.subarray(2, 23);
    const infinity = Buffer.concat([Buffer.of(0x30, algorithm.length + 4), algorithm, Buffer.of(0x03, 0x02, 0x00, 0x00)]);
    const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).publicKey.export({ format: "der", type: "spki" });
    for (const bad of [offCurve, infinity, p384, Buffer.from("junk")]) {
      await refused("DeriveSharedSecret", { KeyId: keyId, KeyAgreementAlgorithm: "ECDH", PublicKey: b64(bad) }, "InvalidParameterValue", "PublicKey");
    }
    const signing = (await call("CreateKey", { Alias: "ecdh-signing", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_ECC" })).KeyId;
    await refused("DeriveSharedSecret", { KeyId: signing, KeyAgreementAlgorithm: "ECDH", PublicKey: b64(p256) }, "InvalidParameterValue.InvalidKeyUsage");
    await refused("DeriveSharedSecret", { KeyId: keyId, KeyAgreementAlgorithm: "ECDH", PublicKey: b64(Buffer.alloc(1025)) }, "InvalidParameterValue", "PublicKey");
    // The server is still there.
    assert.equal((await call("DescribeKey", { KeyId: keyId })).KeyMetadata.KeyState, "Enabled");
  });

  it("KEY_AGREEMENT keys through the AWS SDK, SM2 included", async () => {
    for (const spec of ["ECC_NIST_P256", "SM2"] as const) {
      const meta = (await kms.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: "KEY_AGREEMENT" }))).KeyMetadata!;
      assert.equal(meta.KeyUsage, "KEY_AGREEMENT");
      assert.deepEqual(meta.KeyAgreementAlgorithms, ["ECDH"]);
      if (spec !== "ECC_NIST_P256") continue;
      const peer = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
      const r = await kms.send(new DeriveSharedSecretCommand({ KeyId: meta.KeyId!, KeyAgreementAlgorithm: "ECDH", PublicKey: peer.publicKey.export({ format: "der", type: "spki" }) }));
      const serverPublic = Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId: meta.KeyId! }))).PublicKey!);
      assert.deepEqual(Buffer.from(r.SharedSecret!), diffieHellman({ privateKey: peer.privateKey, publicKey: createPublicKey({ key: serverPublic, format: "der", type: "spki" }) }));
      assert.equal(r.KeyOrigin, "AWS_KMS");
    }
  });
});
