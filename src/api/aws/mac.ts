// AWS DeriveSharedSecret (ECDH with a KEY_AGREEMENT key; the peer's public key validated by the
// service), and GenerateMac and VerifyMac (KMS API reference) with HMAC keys: MacAlgorithm HMAC_SHA_256/384/512
// (HMAC_SHA_224 is not offered) and Tresor's HMAC_SM3. A MAC that does not verify fails VerifyMac
// with KMSInvalidMacException, as the reference says.

import { KEY_AGREEMENT_ALGORITHMS, MAC_ALGORITHMS } from "../../keys/specs.js";
import { KmsError } from "../../service/errors.js";
import { MAX_PLAINTEXT_BYTES } from "../tencent/actions.js";
import { base64, oneOf } from "../tencent/params.js";
import { action, b64, keyOf, type AwsActionDefinition } from "./action.js";
import { keyArn } from "./identifiers.js";
import { dryRun, grantTokens, keyIdParam, unsupported } from "./params.js";

/** The longest HMAC offered (SHA-512). */
const MAX_MAC_BYTES = 64;

const macSchema = {
  KeyId: keyIdParam(),
  Message: base64({ max: MAX_PLAINTEXT_BYTES }),
  MacAlgorithm: oneOf(MAC_ALGORITHMS),
  GrantTokens: grantTokens,
  DryRun: dryRun,
};

export const MAC_ACTIONS: Readonly<Record<string, AwsActionDefinition>> = {
  GenerateMac: action("GenerateMac", macSchema, async (p, ctx) => {
    const { keyId, mac } = await ctx.service.generateMac(ctx.caller, { keyId: await keyOf(ctx, p.KeyId), algorithm: p.MacAlgorithm, message: p.Message });
    return { Mac: b64(mac), MacAlgorithm: p.MacAlgorithm, KeyId: keyArn(ctx.scope, keyId) };
  }),

  DeriveSharedSecret: action(
    "DeriveSharedSecret",
    {
      KeyId: keyIdParam(),
      KeyAgreementAlgorithm: oneOf(KEY_AGREEMENT_ALGORITHMS),
      PublicKey: base64({ max: 1024 }),
      GrantTokens: grantTokens,
      DryRun: dryRun,
      Recipient: unsupported("Nitro Enclaves attestation is not offered"),
    },
    async (p, ctx) => {
      const { keyId, sharedSecret } = await ctx.service.deriveSharedSecret(ctx.caller, { keyId: await keyOf(ctx, p.KeyId), algorithm: p.KeyAgreementAlgorithm, publicKey: p.PublicKey });
      try {
        return { KeyId: keyArn(ctx.scope, keyId), SharedSecret: b64(sharedSecret), KeyAgreementAlgorithm: p.KeyAgreementAlgorithm, KeyOrigin: "AWS_KMS" };
      } finally {
        sharedSecret.fill(0);
      }
    },
  ),

  VerifyMac: action("VerifyMac", { ...macSchema, Mac: base64({ max: MAX_MAC_BYTES }) }, async (p, ctx) => {
    const { keyId, valid } = await ctx.service.verifyMac(ctx.caller, { keyId: await keyOf(ctx, p.KeyId), algorithm: p.MacAlgorithm, message: p.Message, mac: p.Mac });
    if (!valid) throw new KmsError("InvalidMac", `the MAC does not verify under key ${keyId} with ${p.MacAlgorithm}`);
    return { KeyId: keyArn(ctx.scope, keyId), MacValid: true, MacAlgorithm: p.MacAlgorithm };
  }),
};
