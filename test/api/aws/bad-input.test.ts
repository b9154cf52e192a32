// Bad input on every AWS action: an unknown parameter, and each parameter in turn given a JSON
// value of a type it does not take, beside otherwise valid parameters. Each request is answered
// with an AWS-shaped error (non-2xx, __type, a message naming the parameter), and no key changes.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { AWS_ACTIONS } from "../../../src/api/aws/actions.js";
import { snapshotKeys, startInProcessServer, type InProcessServer } from "../helpers-inprocess.js";
import { awsRaw } from "./helpers.js";

/** Parameters whose own type is a JSON object: a number is the wrong type for them. */
const OBJECT_PARAMS = new Set(["EncryptionContext", "SourceEncryptionContext", "DestinationEncryptionContext"]);
/** CreateGrant takes whatever it is given: the action itself is refused (UnsupportedOperationException). */
const REFUSED_WHOLE = new Set(["CreateGrant"]);
const ERROR_TYPES = new Set(["SerializationException", "ValidationException", "UnsupportedOperationException"]);

describe("AWS door: bad input on every action", () => {
  let server: InProcessServer;
  let samples: Record<string, Record<string, unknown>>;

  before(async () => {
    server = await startInProcessServer({ region: "eu-test-1" });
    const keyId = (await awsRaw(server, "CreateKey", {})).json!.KeyMetadata as { KeyId: string };
    const k = keyId.KeyId;
    const blob = (await awsRaw(server, "Encrypt", { KeyId: k, Plaintext: "AAAA" })).json!.CiphertextBlob as string;
    const key = { KeyId: k };
    samples = {
      CreateKey: {},
      DescribeKey: key,
      ListKeys: {},
      EnableKey: key,
      DisableKey: key,
      UpdateKeyDescription: { ...key, Description: "d" },
      ScheduleKeyDeletion: key,
      CancelKeyDeletion: key,
      Encrypt: { ...key, Plaintext: "AAAA" },
      Decrypt: { CiphertextBlob: blob },
      ReEncrypt: { CiphertextBlob: blob, DestinationKeyId: k },
      GenerateDataKey: { ...key, NumberOfBytes: 32 },
      GenerateDataKeyWithoutPlaintext: { ...key, NumberOfBytes: 32 },
      GenerateRandom: { NumberOfBytes: 8 },
      GetPublicKey: key,
      Sign: { ...key, Message: "AAAA", SigningAlgorithm: "ECDSA_SHA_256" },
      Verify: { ...key, Message: "AAAA", SigningAlgorithm: "ECDSA_SHA_256", Signature: "AAAA" },
      GenerateDataKeyPair: { ...key, KeyPairSpec: "ECC_NIST_P256" },
      GenerateDataKeyPairWithoutPlaintext: { ...key, KeyPairSpec: "ECC_NIST_P256" },
      GenerateMac: { ...key, Message: "AAAA", MacAlgorithm: "HMAC_SHA_256" },
      VerifyMac: { ...key, Message: "AAAA", MacAlgorithm: "HMAC_SHA_256", Mac: "AAAA" },
      DeriveSharedSecret: { ...key, KeyAgreementAlgorithm: "ECDH", PublicKey: "AAAA" },
      CreateAlias: { AliasName: "alias/x", TargetKeyId: k },
      UpdateAlias: { AliasName: "alias/x", TargetKeyId: k },
      DeleteAlias: { AliasName: "alias/x" },
      ListAliases: {},
      GetKeyPolicy: key,
      ListKeyPolicies: key,
      PutKeyPolicy: { ...key, Policy: "{}" },
      ListGrants: key,
      ListRetirableGrants: { RetiringPrincipal: "p" },
      CreateGrant: {},
      RetireGrant: {},
      RevokeGrant: { ...key, GrantId: "g" },
      TagResource: { ...key, Tags: [{ TagKey: "t", TagValue: "v" }] },
      UntagResource: { ...key, TagKeys: ["t"] },
      ListResourceTags: key,
      EnableKeyRotation: key,
      DisableKeyRotation: key,
      GetKeyRotationStatus: key,
      RotateKeyOnDemand: key,
      ListKeyRotations: key,
      GetParametersForImport: { ...key, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_2048" },
      ImportKeyMaterial: { ...key, ImportToken: "AAAA", EncryptedKeyMaterial: "AAAA" },
      DeleteImportedKeyMaterial: key,
    };
  });
  after(async () => {
    await server?.stop();
  });

  it("has a valid sample body for every action the door serves", () => {
    assert.deepEqual(Object.keys(samples).sort(), Object.keys(AWS_ACTIONS).sort());
  });

  it("answers an unknown parameter and every mistyped parameter with an AWS error naming it, changing nothing", async () => {
    const before = await snapshotKeys(server.service, server.caller);
    let requests = 0;
    for (const [name, definition] of Object.entries(AWS_ACTIONS)) {
      const sample = samples[name]!;
      const unknown = await awsRaw(server, name, { ...sample, Bogus: 1 });
      requests++;
      assert.equal(unknown.status, 400, `${name}: ${unknown.text}`);
      assert.equal(unknown.json?.__type, "ValidationException", `${name}: ${unknown.text}`);
      assert.match(String(unknown.json?.message), /"Bogus"/, name);
      if (REFUSED_WHOLE.has(name)) {
        const refused = await awsRaw(server, name, { KeyId: "x", Operations: ["Decrypt"] });
        assert.equal(refused.json?.__type, "UnsupportedOperationException", name);
        continue;
      }
      for (const param of Object.keys(definition.schema)) {
        const wrong = OBJECT_PARAMS.has(param) ? 12 : { nested: ["x"] };
        const r = await awsRaw(server, name, { ...sample, [param]: wrong });
        requests++;
        const where = `${name}.${param}: ${r.text}`;
        assert.ok(r.status >= 400 && r.status < 500, where);
        assert.ok(ERROR_TYPES.has(String(r.json?.__type)), where);
        assert.ok(String(r.json?.message).includes(`"${param}"`), where);
      }
    }
    assert.ok(requests > 100, `only ${requests} requests`);
    assert.equal(await snapshotKeys(server.service, server.caller), before);
  });
});
