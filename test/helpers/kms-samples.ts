// One well-formed request per KMS action, all about one symmetric key and one ciphertext of it: for
// tests that walk every action (authorization, audit). Asymmetric and import actions get
// well-formed parameters the key does not fit, so they fail after their checks, not in parsing.

export function kmsSampleRequests(keyId: string, blob: string, alias: string): Record<string, object> {
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
  };
}
