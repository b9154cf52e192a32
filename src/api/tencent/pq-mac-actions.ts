// Tencent's post-quantum actions (PostQuantumCryptoEncrypt/Decrypt/Sign/Verify, kms_models of
// 2019-01-18: `PlainText` with a capital T, messages of at most 4096 bytes), and the HMAC and key
// agreement actions, Tresor extensions under AWS's names (GenerateMac, VerifyMac, DeriveSharedSecret). `Context` on the post-quantum
// signing actions is a Tresor extension: FIPS 204's context string, empty when absent.

import { ML_DSA_MAX_CONTEXT } from "../../crypto/ml-dsa.js";
import { pqBlobMaxLength } from "../../crypto/pq-ciphertext.js";
import { KEY_AGREEMENT_ALGORITHMS, MAC_ALGORITHMS } from "../../keys/specs.js";
import type { ActionDefinition } from "./actions.js";
import { base64, keyId, oneOf, optional, type Schema } from "./params.js";
import { plaintextField, publicKeyWrap, publicKeyWrapper } from "./public-key-wrap.js";

type ActionHelper = <S extends Schema>(schema: S, run: ActionDefinition<S>["run"]) => ActionDefinition<Schema>;

/** Tencent: plaintexts and messages of at most 4 KiB. */
const MAX_MESSAGE_BYTES = 4096;
/** The largest ML-DSA signature (ML-DSA-87, FIPS 204 table 2). */
const MAX_PQ_SIGNATURE_BYTES = 4627;
/** The largest HMAC (SHA-512). */
const MAX_MAC_BYTES = 64;

const pqSignSchema = {
  KeyId: keyId(),
  Message: base64({ max: MAX_MESSAGE_BYTES }),
  Context: optional(base64({ max: ML_DSA_MAX_CONTEXT })),
};

const macSchema = {
  KeyId: keyId(),
  Message: base64({ max: MAX_MESSAGE_BYTES }),
  MacAlgorithm: oneOf(MAC_ALGORITHMS),
};

/** Built with the table's own `action` helper (passed in, so this file does not import actions.ts at run time). */
export function postQuantumActions(action: ActionHelper) {
  return {
    PostQuantumCryptoEncrypt: action({ KeyId: keyId(), PlainText: base64({ max: MAX_MESSAGE_BYTES, code: "InvalidPlaintext" }) }, async (p, { service, caller }) => {
      try {
        const { keyId, blob } = await service.postQuantum.encrypt(caller, p.KeyId, p.PlainText);
        return { CiphertextBlob: blob.toString("base64"), KeyId: keyId };
      } finally {
        p.PlainText.fill(0);
      }
    }),

    PostQuantumCryptoDecrypt: action(
      { CiphertextBlob: base64({ max: pqBlobMaxLength(MAX_MESSAGE_BYTES), code: "InvalidCiphertext" }), ...publicKeyWrap },
      async (p, { service, caller }) => {
        const wrap = publicKeyWrapper(p, service);
        const { keyId, plaintext } = await service.postQuantum.decrypt(caller, p.CiphertextBlob);
        try {
          return { KeyId: keyId, PlainText: plaintextField(plaintext, wrap) };
        } finally {
          plaintext.fill(0);
        }
      },
    ),

    PostQuantumCryptoSign: action(pqSignSchema, async (p, { service, caller }) => {
      const { signature } = await service.postQuantum.sign(caller, { keyId: p.KeyId, message: p.Message, context: p.Context ?? Buffer.alloc(0) });
      return { Signature: signature.toString("base64") };
    }),

    PostQuantumCryptoVerify: action({ ...pqSignSchema, SignatureValue: base64({ max: MAX_PQ_SIGNATURE_BYTES }) }, async (p, { service, caller }) => {
      const valid = await service.postQuantum.verify(caller, { keyId: p.KeyId, message: p.Message, signature: p.SignatureValue, context: p.Context ?? Buffer.alloc(0) });
      return { SignatureValid: valid };
    }),
  };
}

/** A DER SubjectPublicKeyInfo of P-384 is 120 bytes; anything past 1 KiB is no key of ours. */
const MAX_PEER_PUBLIC_KEY_BYTES = 1024;

export function macActions(action: ActionHelper) {
  return {
    /** ECDH with a key agreement key, in AWS's shape (Tresor extension). */
    DeriveSharedSecret: action(
      { KeyId: keyId(), KeyAgreementAlgorithm: oneOf(KEY_AGREEMENT_ALGORITHMS), PublicKey: base64({ max: MAX_PEER_PUBLIC_KEY_BYTES }) },
      async (p, { service, caller }) => {
        const { keyId, sharedSecret } = await service.deriveSharedSecret(caller, { keyId: p.KeyId, algorithm: p.KeyAgreementAlgorithm, publicKey: p.PublicKey });
        try {
          return { KeyId: keyId, SharedSecret: sharedSecret.toString("base64"), KeyAgreementAlgorithm: p.KeyAgreementAlgorithm };
        } finally {
          sharedSecret.fill(0);
        }
      },
    ),

    GenerateMac: action(macSchema, async (p, { service, caller }) => {
      const { keyId, mac } = await service.generateMac(caller, { keyId: p.KeyId, algorithm: p.MacAlgorithm, message: p.Message });
      return { KeyId: keyId, Mac: mac.toString("base64"), MacAlgorithm: p.MacAlgorithm };
    }),

    VerifyMac: action({ ...macSchema, Mac: base64({ max: MAX_MAC_BYTES }) }, async (p, { service, caller }) => {
      const { keyId, valid } = await service.verifyMac(caller, { keyId: p.KeyId, algorithm: p.MacAlgorithm, message: p.Message, mac: p.Mac });
      return { KeyId: keyId, MacValid: valid, MacAlgorithm: p.MacAlgorithm };
    }),
  };
}
