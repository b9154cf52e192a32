// The AWS Encryption SDK for JavaScript (@aws-crypto/client-node) with its KMS keyring, whose client
// provider points at Tresor servers: 1 MiB round trip under the default (committing, signed) suite,
// the key ARN recorded as each data key's provider info, and a multi-key keyring over two servers
// in two regions that still decrypts through the second when the first is stopped.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { buildClient, CommitmentPolicy, KmsKeyringNode } from "@aws-crypto/client-node";
import type { KMS } from "@aws-sdk/client-kms";
import { startInProcessServer, type InProcessServer } from "../helpers-inprocess.js";
import { awsKms } from "./helpers.js";

type ClientProvider = NonNullable<NonNullable<ConstructorParameters<typeof KmsKeyringNode>[0]>["clientProvider"]>;

/** Deterministic bytes: SHA-256 of a label and a counter, block after block. */
function patternBytes(label: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let at = 0, i = 0; at < length; at += 32, i++) createHash("sha256").update(`${label}:${i}`).digest().copy(out, at);
  return out;
}

describe("AWS Encryption SDK KMS keyring against Tresor", () => {
  const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  let west: InProcessServer;
  let east: InProcessServer;
  let clients: Map<string, KMS>;
  let westArn: string;
  let eastArn: string;
  // The SDK's outputs mark KeyId optional where the keyring's interface requires it (a difference
  // only under exactOptionalPropertyTypes); the objects are the SDK's own clients.
  const clientProvider = ((region: string) => clients.get(region) ?? false) as unknown as ClientProvider;

  before(async () => {
    west = await startInProcessServer({ region: "tresor-west-1" });
    east = await startInProcessServer({ region: "tresor-east-1" });
    clients = new Map([west, east].map((s) => [s.region, awsKms(s)]));
    westArn = (await clients.get(west.region)!.createKey({ Description: "esdk west" })).KeyMetadata!.Arn!;
    eastArn = (await clients.get(east.region)!.createKey({ Description: "esdk east" })).KeyMetadata!.Arn!;
  });
  after(async () => {
    for (const c of clients?.values() ?? []) c.destroy();
    await west?.stop();
    await east?.stop();
  });

  it("encrypts and decrypts 1 MiB; the data key's provider info is the key ARN", async () => {
    const keyring = new KmsKeyringNode({ generatorKeyId: westArn, clientProvider });
    const plaintext = patternBytes("esdk-1MiB", 1024 * 1024);
    const { result, messageHeader } = await encrypt(keyring, plaintext, { encryptionContext: { purpose: "tresor-test" } });
    assert.equal(messageHeader.encryptedDataKeys.length, 1);
    assert.equal(messageHeader.encryptedDataKeys[0]!.providerId, "aws-kms");
    assert.equal(messageHeader.encryptedDataKeys[0]!.providerInfo, westArn);
    assert.match(westArn, new RegExp(`^arn:aws:kms:tresor-west-1:${west.caller.uin}:key/[0-9a-f-]{36}$`));
    const opened = await decrypt(keyring, result);
    assert.ok(opened.plaintext.equals(plaintext));
    assert.equal(opened.messageHeader.encryptionContext.purpose, "tresor-test");
    // The signed suite's public key travelled to Tresor in the encryption context.
    assert.ok("aws-crypto-public-key" in opened.messageHeader.encryptionContext);
  });

  it("a multi-key keyring over two servers in two regions decrypts through the second when the first is stopped", async () => {
    const keyring = new KmsKeyringNode({ generatorKeyId: westArn, keyIds: [eastArn], clientProvider });
    const plaintext = patternBytes("esdk-multi", 64 * 1024);
    const { result, messageHeader } = await encrypt(keyring, plaintext);
    assert.deepEqual(messageHeader.encryptedDataKeys.map((k) => k.providerInfo), [westArn, eastArn]);
    assert.ok((await decrypt(keyring, result)).plaintext.equals(plaintext));
    await west.stop();
    const opened = await decrypt(keyring, result);
    assert.ok(opened.plaintext.equals(plaintext));
    // Only the east server is left: a keyring of the west key alone can no longer decrypt.
    await assert.rejects(decrypt(new KmsKeyringNode({ keyIds: [westArn], clientProvider }), result));
  });
});
