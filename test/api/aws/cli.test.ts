// The AWS CLI v2 from Debian's awscli package (/usr/bin/aws, named explicitly: a v1 earlier on PATH
// would shadow it) against Tresor with --endpoint-url: create-key, encrypt with fileb://, decrypt,
// generate-data-key, list-keys, sign and verify. The CLI signs only content-type, host, x-amz-date and
// x-amz-target and sends no x-amz-content-sha256, so the server hashes the body itself.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { childEnv } from "../../helpers/server.js";
import { startInProcessServer, type InProcessServer } from "../helpers-inprocess.js";

const AWS_CLI = "/usr/bin/aws";
const present = existsSync(AWS_CLI);
// Under CI the suite never skips: .ci/run installs awscli.
const skip = !present && process.env.CI !== "true" ? `${AWS_CLI} is not installed (apt-get install awscli)` : false;

describe("AWS CLI v2 against Tresor", { skip }, () => {
  let server: InProcessServer;
  let dir: string;

  /** Runs `aws kms <args> --endpoint-url … --output json`; resolves with the parsed output, rejects with stderr. */
  function aws(args: readonly string[], env: Record<string, string> = {}): Promise<Record<string, any>> {
    return new Promise((resolve, reject) => {
      execFile(
        AWS_CLI,
        ["kms", ...args, "--endpoint-url", server.url, "--region", server.region, "--output", "json"],
        {
          env: childEnv({
            AWS_ACCESS_KEY_ID: server.secretId,
            AWS_SECRET_ACCESS_KEY: server.secretKey,
            AWS_CONFIG_FILE: path.join(dir, "no-config"),
            AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "no-credentials"),
            AWS_EC2_METADATA_DISABLED: "true",
            AWS_PAGER: "",
            AWS_MAX_ATTEMPTS: "1",
            ...env,
          }),
          timeout: 60_000,
        },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`aws kms ${args[0]} failed: ${stderr}`));
          else resolve(stdout.trim() === "" ? {} : (JSON.parse(stdout) as Record<string, any>));
        },
      );
    });
  }

  before(async () => {
    server = await startInProcessServer({ region: "cli-test-1" });
    dir = await mkdtemp(path.join(tmpdir(), "tresor-awscli-"));
  });
  after(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("create-key, encrypt --plaintext fileb://, decrypt, generate-data-key and list-keys", async () => {
    const created = await aws(["create-key", "--description", "made by the aws cli"]);
    const { KeyId, Arn } = created.KeyMetadata;
    assert.equal(Arn, `arn:aws:kms:cli-test-1:${server.caller.uin}:key/${KeyId}`);
    assert.equal(created.KeyMetadata.KeySpec, "SYMMETRIC_DEFAULT");

    const plaintextFile = path.join(dir, "plain.bin");
    const plaintext = Buffer.from([0, 1, 2, 250, 251, 252, ...Buffer.from(" binary secret")]);
    await writeFile(plaintextFile, plaintext);
    const enc = await aws(["encrypt", "--key-id", KeyId, "--plaintext", `fileb://${plaintextFile}`, "--encryption-context", "app=cli,tenant=t1"]);
    assert.equal(enc.KeyId, Arn);
    const ciphertextFile = path.join(dir, "cipher.bin");
    await writeFile(ciphertextFile, Buffer.from(enc.CiphertextBlob, "base64"));
    const dec = await aws(["decrypt", "--ciphertext-blob", `fileb://${ciphertextFile}`, "--encryption-context", "tenant=t1,app=cli"]);
    assert.deepEqual(Buffer.from(dec.Plaintext, "base64"), plaintext);
    assert.equal(dec.KeyId, Arn);
    await assert.rejects(aws(["decrypt", "--ciphertext-blob", `fileb://${ciphertextFile}`]), /InvalidCiphertextException/);

    const dataKey = await aws(["generate-data-key", "--key-id", Arn, "--key-spec", "AES_256"]);
    assert.equal(Buffer.from(dataKey.Plaintext, "base64").length, 32);
    await writeFile(ciphertextFile, Buffer.from(dataKey.CiphertextBlob, "base64"));
    const opened = await aws(["decrypt", "--ciphertext-blob", `fileb://${ciphertextFile}`]);
    assert.equal(opened.Plaintext, dataKey.Plaintext);

    const listed = await aws(["list-keys"]);
    assert.ok(listed.Keys.some((k: { KeyId: string; KeyArn: string }) => k.KeyId === KeyId && k.KeyArn === Arn));
  });

  it("create-key ECC_NIST_P256 SIGN_VERIFY, sign and verify with fileb://", async () => {
    const { KeyId } = (await aws(["create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"])).KeyMetadata;
    const messageFile = path.join(dir, "message.txt");
    await writeFile(messageFile, "signed by the aws cli");
    const signed = await aws(["sign", "--key-id", KeyId, "--message", `fileb://${messageFile}`, "--message-type", "RAW", "--signing-algorithm", "ECDSA_SHA_256"]);
    assert.equal(signed.SigningAlgorithm, "ECDSA_SHA_256");
    const signatureFile = path.join(dir, "signature.bin");
    await writeFile(signatureFile, Buffer.from(signed.Signature, "base64"));
    const verified = await aws(["verify", "--key-id", KeyId, "--message", `fileb://${messageFile}`, "--message-type", "RAW", "--signature", `fileb://${signatureFile}`, "--signing-algorithm", "ECDSA_SHA_256"]);
    assert.equal(verified.SignatureValid, true);
    await writeFile(messageFile, "another message");
    await assert.rejects(
      aws(["verify", "--key-id", KeyId, "--message", `fileb://${messageFile}`, "--message-type", "RAW", "--signature", `fileb://${signatureFile}`, "--signing-algorithm", "ECDSA_SHA_256"]),
      /KMSInvalidSignatureException/,
    );
  });

  it("a wrong secret access key is refused as InvalidSignatureException", async () => {
    await assert.rejects(aws(["list-keys"], { AWS_SECRET_ACCESS_KEY: "wrong" }), /InvalidSignatureException/);
  });
});
