// One well-formed request per KMS action, all about one symmetric key and one ciphertext of it: for
// tests that walk every action (authorization, audit). Asymmetric and import actions get
// well-formed parameters the key does not fit, so they fail after their checks, not in parsing.
// The Tang server actions name `tangName` (default: the one CreateTangServer's sample makes).

export function kmsSampleRequests(keyId: string, blob: string, alias: string, tangName = `${alias}-tang`): Record<string, object> {
  return {
    CreateKey: { Alias: alias },
    DescribeKey: { KeyId: keyId },
    DescribeKeys: { KeyIds: [keyId] },
    ListKeys: {},
    ListKeyDetail: {},
    EnableKey: { KeyId: keyId },
    DisableKey: { KeyId: keyId },
    EnableKeys: { KeyIds: [keyId] },
    DisableKeys: { KeyIds: [keyId] },
    UpdateAlias: { KeyId: keyId, Alias: `${alias}-renamed` },
    UpdateKeyDescription: { KeyId: keyId, Description: "changed" },
    TagResource: { KeyId: keyId, Tags: [{ TagKey: "sample", TagValue: "1" }] },
    UntagResource: { KeyId: keyId, TagKeys: ["sample"] },
    ListResourceTags: { KeyId: keyId },
    Encrypt: { KeyId: keyId, Plaintext: "aGk=" },
    Decrypt: { CiphertextBlob: blob },
    ReEncrypt: { CiphertextBlob: blob },
    GenerateDataKey: { KeyId: keyId, KeySpec: "AES_256" },
    GenerateRandom: { NumberOfBytes: 16 },
    GetServiceStatus: {},
    ListAlgorithms: {},
    GetPublicKey: { KeyId: keyId },
    AsymmetricRsaDecrypt: { KeyId: keyId, Ciphertext: "aGk=", Algorithm: "RSAES_OAEP_SHA_256" },
    AsymmetricSm2Decrypt: { KeyId: keyId, Ciphertext: "aGk=" },
    SignByAsymmetricKey: { KeyId: keyId, Algorithm: "SM2DSA", Message: "aGk=" },
    VerifyByAsymmetricKey: { KeyId: keyId, Algorithm: "SM2DSA", Message: "aGk=", SignatureValue: "aGk=" },
    PostQuantumCryptoEncrypt: { KeyId: keyId, PlainText: "aGk=" },
    PostQuantumCryptoDecrypt: { CiphertextBlob: pqBlobNaming(keyId) },
    PostQuantumCryptoSign: { KeyId: keyId, Message: "aGk=" },
    PostQuantumCryptoVerify: { KeyId: keyId, Message: "aGk=", SignatureValue: "aGk=" },
    GenerateMac: { KeyId: keyId, Message: "aGk=", MacAlgorithm: "HMAC_SM3" },
    VerifyMac: { KeyId: keyId, Message: "aGk=", MacAlgorithm: "HMAC_SM3", Mac: "aGk=" },
    DeriveSharedSecret: { KeyId: keyId, KeyAgreementAlgorithm: "ECDH", PublicKey: "aGk=" },
    GetRegions: {},
    ArchiveKey: { KeyId: keyId },
    CancelKeyArchive: { KeyId: keyId },
    ScheduleKeyDeletion: { KeyId: keyId, PendingWindowInDays: 7 },
    CancelKeyDeletion: { KeyId: keyId },
    EnableKeyRotation: { KeyId: keyId },
    DisableKeyRotation: { KeyId: keyId },
    GetKeyRotationStatus: { KeyId: keyId },
    RotateKey: { KeyId: keyId },
    ListKeyVersions: { KeyId: keyId },
    GetParametersForImport: { KeyId: keyId, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_2048" },
    ImportKeyMaterial: { KeyId: keyId, ImportToken: "token", EncryptedKeyMaterial: "aGk=" },
    DeleteImportedKeyMaterial: { KeyId: keyId },
    CreateTangServer: { Name: `${alias}-tang` },
    ListTangServers: {},
    DescribeTangServer: { Name: tangName },
    UpdateTangServer: { Name: tangName, AllowedNetworks: ["10.0.0.0/8"] },
    RotateTangServer: { Name: tangName },
    DisableTangServer: { Name: tangName },
    EnableTangServer: { Name: tangName },
  };
}

/**
 * A well-formed post-quantum ciphertext (docs/formats.md: format 0x02, X-Wing) naming `keyId`, whose
 * KEM ciphertext and tag are zeros: it parses, names the key, and then does not decrypt.
 */
function pqBlobNaming(keyId: string): string {
  const version = Buffer.alloc(4);
  version.writeUInt32BE(1);
  return Buffer.concat([Buffer.of(0x02, 0x10), Buffer.from(keyId.replaceAll("-", ""), "hex"), version, Buffer.alloc(1120 + 1 + 16)]).toString("base64");
}
