// Bring your own key, end to end against a real `tresor serve` process through the official
// tencentcloud-sdk-nodejs client: fetch import parameters, wrap local material with the returned
// public key (node:crypto for each RSA wrapping algorithm, src/crypto/sm2.ts for SM2PKE), import,
// encrypt and decrypt, delete the material, re-import it, and decrypt a ciphertext made before.
// Then rotation, archiving and deletion scheduling through the same client.

import assert from "node:assert/strict";
import { constants, createPublicKey, publicEncrypt, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { sm2Encrypt, sm2PublicKeyFromSpki } from "../../src/crypto/sm2.js";
import { runCli, startServer, type TestServer } from "../helpers/server.js";
import { officialKmsClient, type OfficialCall } from "../helpers/official-client.js";


type Call = OfficialCall;

let server: TestServer;
let call: Call;

before(async () => {
  server = await startServer({ serveArgs: ["--scheduler-interval", "1"] });
  call = officialKmsClient(server);
});

after(async () => {
  const code = await server.stop();
  assert.equal(code, 0, `serve exited with ${code}: ${server.logs()}`);
});

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    const got = (e as { code?: unknown }).code;
    assert.equal(got, code, `expected error ${code}, got ${String(got)}: ${(e as Error).message}`);
    return true;
  });
}

const RSA_PADDING = {
  RSAES_PKCS1_V1_5: { padding: constants.RSA_PKCS1_PADDING },
  RSAES_OAEP_SHA_1: { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
  RSAES_OAEP_SHA_256: { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
} as const;
type WrappingAlgorithm = keyof typeof RSA_PADDING | "SM2PKE";

/** GetParametersForImport, then the material wrapped with its public key as a BYOK client does. */
async function wrapped(keyId: string, algorithm: WrappingAlgorithm, material: Buffer): Promise<{ ImportToken: string; EncryptedKeyMaterial: string }> {
  const spec = algorithm === "SM2PKE" ? "SM2" : "RSA_2048";
  const p = await call("GetParametersForImport", { KeyId: keyId, WrappingAlgorithm: algorithm, WrappingKeySpec: spec });
  assert.equal(p["KeyId"], keyId);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Math.abs(p["ParametersValidTo"] - (now + 86_400)) < 60, "valid for 24 hours");
  const spki = Buffer.from(p["PublicKey"], "base64");
  const encrypted =
    algorithm === "SM2PKE"
      ? sm2Encrypt(sm2PublicKeyFromSpki(spki), material)
      : publicEncrypt({ key: createPublicKey({ key: spki, format: "der", type: "spki" }), ...RSA_PADDING[algorithm] }, material);
  return { ImportToken: p["ImportToken"], EncryptedKeyMaterial: encrypted.toString("base64") };
}

async function state(keyId: string): Promise<Record<string, any>> {
  return (await call("DescribeKey", { KeyId: keyId }))["KeyMetadata"];
}

describe("BYOK through tencentcloud-sdk-nodejs", () => {
  const cases: [WrappingAlgorithm, "SM4" | "AES_256"][] = [
    ["RSAES_PKCS1_V1_5", "SM4"],
    ["RSAES_OAEP_SHA_1", "AES_256"],
    ["RSAES_OAEP_SHA_256", "SM4"],
    ["SM2PKE", "SM4"],
  ];
  for (const [algorithm, keySpec] of cases) {
    it(`imports ${keySpec} material wrapped with ${algorithm}, deletes it and imports it again`, async () => {
      const created = await call("CreateKey", { Alias: `byok-${algorithm}`.replaceAll("_", "-"), Type: 2, KeySpec: keySpec, Tags: [{ TagKey: "byok", TagValue: algorithm }] });
      assert.equal(created["KeyState"], "PendingImport");
      const keyId: string = created["KeyId"];
      const md = await state(keyId);
      assert.equal(md["Origin"], "EXTERNAL");
      await rejectsWith(call("Encrypt", { KeyId: keyId, Plaintext: Buffer.from("x").toString("base64") }), "ResourceUnavailable.CmkStateNotSupport");

      const material = randomBytes(keySpec === "SM4" ? 16 : 32);
      await call("ImportKeyMaterial", { KeyId: keyId, ...(await wrapped(keyId, algorithm, material)) });
      assert.equal((await state(keyId))["KeyState"], "Enabled");
      const plaintext = Buffer.from(`imported under ${algorithm}`).toString("base64");
      const { CiphertextBlob } = await call("Encrypt", { KeyId: keyId, Plaintext: plaintext });
      assert.equal((await call("Decrypt", { CiphertextBlob }))["Plaintext"], plaintext);

      await call("DeleteImportedKeyMaterial", { KeyId: keyId });
      assert.equal((await state(keyId))["KeyState"], "PendingImport");
      await rejectsWith(call("Decrypt", { CiphertextBlob }), "ResourceUnavailable.CmkStateNotSupport");
      // Other material is refused; the same material brings the old ciphertext back.
      await rejectsWith(
        call("ImportKeyMaterial", { KeyId: keyId, ...(await wrapped(keyId, algorithm, randomBytes(material.length))) }),
        "InvalidParameterValue.MaterialNotMatch",
      );
      await call("ImportKeyMaterial", { KeyId: keyId, ...(await wrapped(keyId, algorithm, material)) });
      assert.equal((await call("Decrypt", { CiphertextBlob }))["Plaintext"], plaintext);
      const listed = await call("ListKeyDetail", { Origin: "EXTERNAL", TagFilters: [{ TagKey: "byok", TagValue: [algorithm] }] });
      assert.deepEqual(listed["KeyMetadatas"].map((k: { KeyId: string }) => k.KeyId), [keyId]);
    });
  }

  it("answers the documented errors: wrong length, unwrappable, used token, not external, future ValidTo", async () => {
    const { KeyId } = await call("CreateKey", { Alias: "byok-errors", Type: 2 });
    await rejectsWith(call("ImportKeyMaterial", { KeyId, ...(await wrapped(KeyId, "RSAES_OAEP_SHA_256", randomBytes(32))) }), "InvalidParameterValue.InvalidImportKeyMaterial");
    const p = await wrapped(KeyId, "RSAES_OAEP_SHA_256", randomBytes(16));
    await rejectsWith(
      call("ImportKeyMaterial", { KeyId, ImportToken: p.ImportToken, EncryptedKeyMaterial: randomBytes(256).toString("base64") }),
      "InvalidParameter.DecryptMaterialError",
    );
    const validTo = Math.floor(Date.now() / 1000) + 3600;
    await call("ImportKeyMaterial", { KeyId, ...p, ValidTo: validTo });
    assert.equal((await state(KeyId))["ValidTo"], validTo);
    await rejectsWith(call("ImportKeyMaterial", { KeyId, ...p }), "ResourceUnavailable.TokenExpired");
    await rejectsWith(call("EnableKeyRotation", { KeyId }), "UnsupportedOperation.ExternalCmkCanNotRotate");
    const generated = await call("CreateKey", { Alias: "byok-not-external" });
    await rejectsWith(
      call("GetParametersForImport", { KeyId: generated["KeyId"], WrappingAlgorithm: "RSAES_OAEP_SHA_1", WrappingKeySpec: "RSA_2048" }),
      "UnsupportedOperation.NotExternalCmk",
    );
  });
});

describe("rotation, archiving and deletion through tencentcloud-sdk-nodejs", () => {
  it("rotates on demand once per 24 h, shows it in KeyMetadata, and keeps old ciphertexts", async () => {
    const { KeyId } = await call("CreateKey", { Alias: "rotating" });
    const plaintext = Buffer.from("before rotation").toString("base64");
    const { CiphertextBlob: old } = await call("Encrypt", { KeyId, Plaintext: plaintext });
    assert.equal((await call("GetKeyRotationStatus", { KeyId }))["KeyRotationEnabled"], false);
    await call("EnableKeyRotation", { KeyId, RotateDays: 30 });
    const md = await state(KeyId);
    assert.equal(md["KeyRotationEnabled"], true);
    assert.equal(md["RotateDays"], 30);
    assert.ok(md["NextRotateTime"] > Math.floor(Date.now() / 1000) + 29 * 86_400);
    const { TaskId } = await call("RotateKey", { KeyId });
    assert.equal(typeof TaskId, "string");
    assert.ok((await state(KeyId))["LastRotateTime"] > 0);
    await rejectsWith(call("RotateKey", { KeyId }), "RequestLimitExceeded.RotateRateLimited");
    assert.equal((await call("Decrypt", { CiphertextBlob: old }))["Plaintext"], plaintext);
    const moved = await call("ReEncrypt", { CiphertextBlob: old });
    assert.equal(moved["ReEncrypted"], true);
    assert.equal((await call("Decrypt", { CiphertextBlob: moved["CiphertextBlob"] }))["Plaintext"], plaintext);
    await call("DisableKeyRotation", { KeyId });
    assert.equal((await call("GetKeyRotationStatus", { KeyId }))["KeyRotationEnabled"], false);

    // `tresor key versions` shows both versions, without material.
    const versions = await runCli(["key", "versions", KeyId, "--endpoint", server.url, "--json"], {
      env: { TRESOR_SECRET_ID: server.secretId, TRESOR_SECRET_KEY: server.secretKey, TRESOR_REGION: server.region },
    });
    assert.equal(versions.code, 0, versions.stderr);
    const listed = JSON.parse(versions.stdout) as { KeyId: string; CurrentVersion: number; Versions: { Version: number; CreateTime: number }[] };
    assert.equal(listed.CurrentVersion, 2);
    assert.deepEqual(listed.Versions.map((v) => v.Version), [1, 2]);
    assert.deepEqual(Object.keys(listed.Versions[0]!).sort(), ["CreateTime", "Version"]);
  });

  it("archives, and schedules and cancels deletion", async () => {
    const { KeyId } = await call("CreateKey", { Alias: "archived-then-deleted" });
    await call("ArchiveKey", { KeyId });
    await rejectsWith(call("Encrypt", { KeyId, Plaintext: "AA==" }), "ResourceUnavailable.CmkArchived");
    await rejectsWith(call("ScheduleKeyDeletion", { KeyId, PendingWindowInDays: 7 }), "ResourceUnavailable.CmkShouldBeDisabled");
    await call("CancelKeyArchive", { KeyId });
    await call("DisableKey", { KeyId });
    await rejectsWith(call("ScheduleKeyDeletion", { KeyId, PendingWindowInDays: 31 }), "InvalidParameter.InvalidPendingWindowInDays");
    const scheduled = await call("ScheduleKeyDeletion", { KeyId, PendingWindowInDays: 7 });
    assert.equal(scheduled["KeyId"], KeyId);
    assert.equal((await state(KeyId))["DeletionDate"], scheduled["DeletionDate"]);
    await rejectsWith(call("Encrypt", { KeyId, Plaintext: "AA==" }), "ResourceUnavailable.CmkStateNotSupport");
    // The server flushes its buffered log at least once a second.
    for (let i = 0; i < 50 && !server.logs().includes("refused a use of a key pending deletion"); i++) await new Promise((r) => setTimeout(r, 100));
    const warning = server.logs().split("\n").find((l) => l.includes("refused a use of a key pending deletion"));
    assert.ok(warning, "the refused use is logged");
    const record = JSON.parse(warning) as Record<string, unknown>;
    assert.equal(record["level"], 40, "as a warning");
    assert.equal(record["keyId"], KeyId);
    assert.equal(record["action"], "Encrypt");
    assert.ok(!warning.includes("Plaintext") && !warning.includes("AA=="), "no parameters in the log");
    assert.equal((await call("CancelKeyDeletion", { KeyId }))["KeyId"], KeyId);
    assert.equal((await state(KeyId))["KeyState"], "Disabled");
    await rejectsWith(call("CancelKeyDeletion", { KeyId }), "ResourceUnavailable.CmkNotPendingDelete");
  });
});

describe("the tresor key lifecycle commands", () => {
  const cli = (...args: string[]) =>
    runCli(["key", ...args, "--endpoint", server.url], {
      env: { TRESOR_SECRET_ID: server.secretId, TRESOR_SECRET_KEY: server.secretKey, TRESOR_REGION: server.region },
    });

  for (const algorithm of ["RSAES_OAEP_SHA_256", "SM2PKE"] as const) {
    it(`imports a material file (${algorithm}) and the key encrypts`, async () => {
      const created = await cli("create", "--alias", `cli-import-${algorithm}`.replaceAll("_", "-"), "--external", "--json");
      assert.equal(created.code, 0, created.stderr);
      const { KeyId, KeyState } = JSON.parse(created.stdout) as { KeyId: string; KeyState: string };
      assert.equal(KeyState, "PendingImport");
      const dir = await mkdtemp(path.join(tmpdir(), "tresor-material-"));
      try {
        const file = path.join(dir, "material.bin");
        await writeFile(file, randomBytes(16), { mode: 0o600 });
        const r = await cli("import", KeyId, "--material", file, "--wrapping-algorithm", algorithm);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /imported material/);
        assert.equal((await state(KeyId))["KeyState"], "Enabled");
        await call("Encrypt", { KeyId, Plaintext: "AA==" });
        const wrong = path.join(dir, "short.bin");
        await writeFile(wrong, randomBytes(15));
        const bad = await cli("import", KeyId, "--material", wrong);
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /InvalidParameterValue\.InvalidImportKeyMaterial/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it("turns rotation on, rotates, archives, unarchives, schedules and cancels deletion", async () => {
    const { KeyId } = await call("CreateKey", { Alias: "cli-lifecycle" });
    let r = await cli("rotation", KeyId, "--enable", "--days", "90");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /enabled, every 90 days/);
    r = await cli("rotate", KeyId);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await state(KeyId))["KeyRotationEnabled"], true);
    r = await cli("versions", KeyId);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^2 +\*/m);
    r = await cli("rotate", KeyId);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /RequestLimitExceeded\.RotateRateLimited/);
    r = await cli("rotation", KeyId, "--disable");
    assert.match(r.stdout, /disabled/);
    assert.equal((await cli("archive", KeyId)).code, 0);
    assert.equal((await state(KeyId))["KeyState"], "Archived");
    assert.equal((await cli("unarchive", KeyId)).code, 0);
    await call("DisableKey", { KeyId });
    r = await cli("schedule-deletion", KeyId, "--days", "7");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await state(KeyId))["KeyState"], "PendingDelete");
    assert.equal((await cli("schedule-deletion", KeyId, "--days", "3")).code, 2, "a window outside 7-30 is a usage error");
    assert.equal((await cli("cancel-deletion", KeyId)).code, 0);
    assert.equal((await state(KeyId))["KeyState"], "Disabled");
  });
});

describe("tresor serve --scheduler-interval", () => {
  it("runs the scheduler: material whose ValidTo passes is deleted and the key waits in PendingImport", async () => {
    const { KeyId } = await call("CreateKey", { Alias: "expires-in-real-time", Type: 2 });
    const material = randomBytes(16);
    // The wrapping key pair is made first (seconds on a loaded machine); ValidTo counts from the import.
    const wrappedMaterial = await wrapped(KeyId, "RSAES_OAEP_SHA_256", material);
    const validTo = Math.floor(Date.now() / 1000) + 3;
    await call("ImportKeyMaterial", { KeyId, ...wrappedMaterial, ValidTo: validTo });
    const { CiphertextBlob } = await call("Encrypt", { KeyId, Plaintext: "AQID" });
    let md = await state(KeyId);
    for (let i = 0; i < 300 && md["KeyState"] !== "PendingImport"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      md = await state(KeyId);
    }
    assert.equal(md["KeyState"], "PendingImport", "the scheduler of `tresor serve` (interval 1 s) expired the material");
    assert.ok(Date.now() / 1000 >= validTo, "not before ValidTo");
    assert.equal(md["ValidTo"], 0);
    await rejectsWith(call("Decrypt", { CiphertextBlob }), "ResourceUnavailable.CmkStateNotSupport");
    await call("ImportKeyMaterial", { KeyId, ...(await wrapped(KeyId, "RSAES_OAEP_SHA_256", material)) });
    assert.equal((await call("Decrypt", { CiphertextBlob }))["Plaintext"], "AQID");
  });

  it("refuses a value that is not a whole number of seconds", async () => {
    const bad = await runCli(["serve", "--data-dir", server.dataDir, "--port", "0", "--scheduler-interval", "0.5"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--scheduler-interval/);
  });
});
