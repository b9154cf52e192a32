// The AWS asymmetric actions: GetPublicKey, Sign, Verify (MessageType RAW or DIGEST, AWS's signing
// algorithm names), GenerateDataKeyPair(+WithoutPlaintext), and Encrypt and Decrypt with an RSA key
// (RSAES_OAEP_SHA_1/256). A signature that does not verify fails Verify with
// KMSInvalidSignatureException, as the KMS API reference says.

import { KmsError } from "../../service/errors.js";
import { base64, oneOf, optional } from "../tencent/params.js";
import { MAX_SIGN_MESSAGE_BYTES } from "../tencent/actions.js";
import { action, b64, keyOf, type AwsActionContext, type AwsActionDefinition } from "./action.js";
import { keyArn } from "./identifiers.js";
import { AWS_SIGNING_ALGORITHMS, awsKeyType, keyAlgorithms, SIGNING_ALGORITHMS_OF } from "./metadata.js";
import type { AsymmetricKeySpec } from "../../keys/key.js";
import { dryRun, encryptionContextMap, grantTokens, keyIdParam, unsupported } from "./params.js";

/** The largest signature any key gives (RSA 4096). */
const MAX_SIGNATURE_BYTES = 512;
/** One RSA block of the largest modulus offered (4096 bits). */
const MAX_RSA_CIPHERTEXT_BYTES = 512;

const signatureSchema = {
  KeyId: keyIdParam(),
  Message: base64({ max: MAX_SIGN_MESSAGE_BYTES }),
  MessageType: optional(oneOf(["RAW", "DIGEST"])),
  SigningAlgorithm: oneOf(AWS_SIGNING_ALGORITHMS),
  GrantTokens: grantTokens,
  DryRun: dryRun,
};

/** GenerateDataKeyPair's KeyPairSpec values Tresor makes (PKCS#8 private keys). */
const KEY_PAIR_SPECS: Readonly<Record<string, AsymmetricKeySpec>> = {
  RSA_2048: "RSA_2048",
  RSA_3072: "RSA_3072",
  RSA_4096: "RSA_4096",
  ECC_NIST_P256: "ECC_P256",
  ECC_NIST_P384: "ECC_P384",
};

const keyPairSchema = {
  KeyId: keyIdParam(),
  KeyPairSpec: oneOf(Object.keys(KEY_PAIR_SPECS)),
  EncryptionContext: optional(encryptionContextMap()),
  GrantTokens: grantTokens,
  DryRun: dryRun,
};

/** GenerateDataKeyPair and its WithoutPlaintext twin: the answer, with or without the private key. */
async function dataKeyPair(ctx: AwsActionContext, p: { KeyId: string; KeyPairSpec: string; EncryptionContext?: Readonly<Record<string, string>> | undefined }, withPlaintext: boolean) {
  const pair = await ctx.service.generateDataKeyPair(ctx.caller, await keyOf(ctx, p.KeyId), KEY_PAIR_SPECS[p.KeyPairSpec]!, p.EncryptionContext ?? {});
  try {
    return {
      PrivateKeyCiphertextBlob: b64(pair.blob),
      ...(withPlaintext ? { PrivateKeyPlaintext: b64(pair.privateKey) } : {}),
      PublicKey: b64(pair.publicKey),
      KeyId: keyArn(ctx.scope, pair.keyId),
      KeyPairSpec: p.KeyPairSpec,
    };
  } finally {
    pair.privateKey.fill(0);
  }
}

export const ASYMMETRIC_ACTIONS: Readonly<Record<string, AwsActionDefinition>> = {
  GetPublicKey: action("GetPublicKey", { KeyId: keyIdParam(), GrantTokens: grantTokens }, async (p, ctx) => {
    const keyId = await keyOf(ctx, p.KeyId);
    const key = await ctx.service.describeKey(ctx.caller, keyId);
    const { publicKey } = await ctx.service.getPublicKey(ctx.caller, keyId);
    const { KeySpec, KeyUsage } = awsKeyType(key);
    return { KeyId: keyArn(ctx.scope, keyId), PublicKey: b64(publicKey), KeySpec, CustomerMasterKeySpec: KeySpec, KeyUsage, ...keyAlgorithms(key) };
  }),

  Sign: action("SignByAsymmetricKey", signatureSchema, async (p, ctx) => {
    const { keyId, signature } = await ctx.service.sign(ctx.caller, {
      keyId: await keyOf(ctx, p.KeyId),
      algorithm: SIGNING_ALGORITHMS_OF[p.SigningAlgorithm]!,
      message: p.Message,
      messageType: p.MessageType ?? "RAW",
    });
    return { KeyId: keyArn(ctx.scope, keyId), Signature: b64(signature), SigningAlgorithm: p.SigningAlgorithm };
  }),

  Verify: action("VerifyByAsymmetricKey", { ...signatureSchema, Signature: base64({ max: MAX_SIGNATURE_BYTES }) }, async (p, ctx) => {
    const keyId = await keyOf(ctx, p.KeyId);
    const valid = await ctx.service.verify(ctx.caller, {
      keyId,
      algorithm: SIGNING_ALGORITHMS_OF[p.SigningAlgorithm]!,
      message: p.Message,
      messageType: p.MessageType ?? "RAW",
      signature: p.Signature,
    });
    if (!valid) throw new KmsError("InvalidSignature", `the signature does not verify under key ${keyId} with ${p.SigningAlgorithm}`);
    return { KeyId: keyArn(ctx.scope, keyId), SignatureValid: true, SigningAlgorithm: p.SigningAlgorithm };
  }),

  GenerateDataKeyPair: action("GenerateDataKey", { ...keyPairSchema, Recipient: unsupported("Nitro Enclaves attestation is not offered") }, (p, ctx) => dataKeyPair(ctx, p, true)),

  GenerateDataKeyPairWithoutPlaintext: action("GenerateDataKey", keyPairSchema, (p, ctx) => dataKeyPair(ctx, p, false)),
};

/** Asymmetric encryption binds no context: one given would be believed checked, so it is refused. */
function noContext(context: Readonly<Record<string, string>> | undefined, algorithm: string): void {
  if (context !== undefined) throw new KmsError("InvalidParameterValue", `"EncryptionContext" is not taken with "EncryptionAlgorithm" ${algorithm}: asymmetric encryption binds no context`);
}

/** Encrypt with an RSA key: no encryption context, as AWS takes none for asymmetric keys. */
export async function encryptAsymmetric(
  ctx: AwsActionContext,
  keyIdParam: string,
  algorithm: "RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256",
  plaintext: Buffer,
  context: Readonly<Record<string, string>> | undefined,
) {
  try {
    noContext(context, algorithm);
    const { keyId, ciphertext } = await ctx.service.asymmetricEncrypt(ctx.caller, await keyOf(ctx, keyIdParam), algorithm, plaintext);
    return { CiphertextBlob: b64(ciphertext), KeyId: keyArn(ctx.scope, keyId), EncryptionAlgorithm: algorithm };
  } finally {
    plaintext.fill(0);
  }
}

/** Decrypt with an RSA key: KeyId is required, as AWS requires it for asymmetric keys. */
export async function decryptAsymmetric(
  ctx: AwsActionContext,
  keyIdParam: string | undefined,
  algorithm: "RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256",
  ciphertext: Buffer,
  context: Readonly<Record<string, string>> | undefined,
) {
  if (keyIdParam === undefined) throw new KmsError("MissingParameter", `"KeyId" is required to decrypt with "EncryptionAlgorithm" ${algorithm}`);
  noContext(context, algorithm);
  if (ciphertext.length > MAX_RSA_CIPHERTEXT_BYTES) throw new KmsError("InvalidCiphertext", `"CiphertextBlob" is longer than one RSA block`);
  const { keyId, plaintext } = await ctx.service.asymmetricDecrypt(ctx.caller, "AsymmetricRsaDecrypt", await keyOf(ctx, keyIdParam), algorithm, ciphertext);
  try {
    return { KeyId: keyArn(ctx.scope, keyId), Plaintext: b64(plaintext), EncryptionAlgorithm: algorithm };
  } finally {
    plaintext.fill(0);
  }
}
