// KMIP's tags and enumerations that Tresor reads or writes, with the values of the KMIP 1.4
// specification §9.1.3 (tags) and §9.1.3.2 (enumerations); KMIP 2.0 §11 adds the ones marked 2.0.

export const TAG = {
  ActivationDate: 0x420001,
  AsynchronousIndicator: 0x420007,
  Attribute: 0x420008,
  AttributeIndex: 0x420009,
  AttributeName: 0x42000a,
  AttributeValue: 0x42000b,
  Authentication: 0x42000c,
  BatchCount: 0x42000d,
  BatchErrorContinuationOption: 0x42000e,
  BatchItem: 0x42000f,
  BatchOrderOption: 0x420010,
  BlockCipherMode: 0x420011,
  CertificateType: 0x42001d,
  CertificateValue: 0x42001e,
  Certificate: 0x420013,
  CommonTemplateAttribute: 0x42001f,
  CompromiseOccurrenceDate: 0x420021,
  CompromiseDate: 0x420020,
  CrtCoefficient: 0x420027,
  CryptographicAlgorithm: 0x420028,
  CryptographicLength: 0x42002a,
  CryptographicParameters: 0x42002b,
  CryptographicUsageMask: 0x42002c,
  D: 0x42002e,
  DeactivationDate: 0x42002f,
  EncryptionKeyInformation: 0x420036,
  DestroyDate: 0x420033,
  HashingAlgorithm: 0x420038,
  InitialDate: 0x420039,
  IvCounterNonce: 0x42003d,
  Key: 0x42003f,
  KeyBlock: 0x420040,
  KeyCompressionType: 0x420041,
  KeyFormatType: 0x420042,
  KeyMaterial: 0x420043,
  KeyValue: 0x420045,
  KeyWrappingData: 0x420046,
  KeyWrappingSpecification: 0x420047,
  LastChangeDate: 0x420048,
  Link: 0x42004a,
  LinkType: 0x42004b,
  LinkedObjectIdentifier: 0x42004c,
  MacSignatureKeyInformation: 0x42004e,
  MaximumItems: 0x42004f,
  MaximumResponseSize: 0x420050,
  Modulus: 0x420052,
  Name: 0x420053,
  NameType: 0x420054,
  NameValue: 0x420055,
  ObjectGroup: 0x420056,
  ObjectType: 0x420057,
  Offset: 0x420058,
  Operation: 0x42005c,
  OperationPolicyName: 0x42005d,
  PaddingMethod: 0x42005f,
  P: 0x42005e,
  PrimeExponentP: 0x420060,
  PrimeExponentQ: 0x420061,
  PrivateExponent: 0x420063,
  PrivateKey: 0x420064,
  PrivateKeyTemplateAttribute: 0x420065,
  PrivateKeyUniqueIdentifier: 0x420066,
  ProtocolVersion: 0x420069,
  ProtocolVersionMajor: 0x42006a,
  ProtocolVersionMinor: 0x42006b,
  PublicExponent: 0x42006c,
  PublicKey: 0x42006d,
  PublicKeyTemplateAttribute: 0x42006e,
  PublicKeyUniqueIdentifier: 0x42006f,
  Q: 0x420071,
  QString: 0x420072,
  QueryFunction: 0x420074,
  RecommendedCurve: 0x420075,
  RequestHeader: 0x420077,
  RequestMessage: 0x420078,
  RequestPayload: 0x420079,
  ResponseHeader: 0x42007a,
  ResponseMessage: 0x42007b,
  ResponsePayload: 0x42007c,
  ResultMessage: 0x42007d,
  ResultReason: 0x42007e,
  ResultStatus: 0x42007f,
  RevocationMessage: 0x420080,
  RevocationReason: 0x420081,
  RevocationReasonCode: 0x420082,
  SecretData: 0x420085,
  SecretDataType: 0x420086,
  ServerInformation: 0x420088,
  State: 0x42008d,
  StorageStatusMask: 0x42008e,
  SymmetricKey: 0x42008f,
  TemplateAttribute: 0x420091,
  TimeStamp: 0x420092,
  UniqueBatchItemId: 0x420093,
  UniqueIdentifier: 0x420094,
  ValidityIndicator: 0x42009b,
  VendorIdentification: 0x42009d,
  WrappingMethod: 0x42009e,
  EncodingOption: 0x4200a3,
  DigitalSignatureAlgorithm: 0x4200ae,
  Data: 0x4200c2,
  MacData: 0x4200c6,
  SignatureData: 0x4200c3,
  TagLength: 0x4200ce,
  OffsetItems: 0x4200d4,
  LocatedItems: 0x4200d5,
  AuthenticatedEncryptionAdditionalData: 0x4200fe,
  AuthenticatedEncryptionTag: 0x4200ff,
  /** 2.0 */
  Attributes: 0x420125,
  /** 2.0 */
  CommonAttributes: 0x420126,
  /** 2.0 */
  PrivateKeyAttributes: 0x420127,
  /** 2.0 */
  PublicKeyAttributes: 0x420128,
  /** 2.0 */
  AttributeReference: 0x42013b,
  /** 2.0 */
  CurrentAttribute: 0x42013c,
  /** 2.0 */
  NewAttribute: 0x42013d,
} as const;

export const OPERATION = {
  Create: 0x01,
  CreateKeyPair: 0x02,
  Register: 0x03,
  ReKey: 0x04,
  Locate: 0x08,
  Get: 0x0a,
  GetAttributes: 0x0b,
  GetAttributeList: 0x0c,
  AddAttribute: 0x0d,
  ModifyAttribute: 0x0e,
  DeleteAttribute: 0x0f,
  Activate: 0x12,
  Revoke: 0x13,
  Destroy: 0x14,
  Query: 0x18,
  DiscoverVersions: 0x1e,
  Encrypt: 0x1f,
  Decrypt: 0x20,
  Sign: 0x21,
  SignatureVerify: 0x22,
  MAC: 0x23,
  /** 2.0 */
  SetAttribute: 0x31,
} as const;
export type OperationName = keyof typeof OPERATION;

export const RESULT_STATUS = { Success: 0, OperationFailed: 1 } as const;

export const RESULT_REASON = {
  ItemNotFound: 0x01,
  ResponseTooLarge: 0x02,
  AuthenticationNotSuccessful: 0x03,
  InvalidMessage: 0x04,
  OperationNotSupported: 0x05,
  MissingData: 0x06,
  InvalidField: 0x07,
  FeatureNotSupported: 0x08,
  CryptographicFailure: 0x0a,
  IllegalOperation: 0x0b,
  PermissionDenied: 0x0c,
  KeyFormatTypeNotSupported: 0x10,
  GeneralFailure: 0x100,
} as const;
export type ResultReasonName = keyof typeof RESULT_REASON;

export const OBJECT_TYPE = { Certificate: 1, SymmetricKey: 2, PublicKey: 3, PrivateKey: 4, SecretData: 7 } as const;
export const CRYPTOGRAPHIC_ALGORITHM = { AES: 3, RSA: 4, ECDSA: 6, HMAC_SHA256: 9, HMAC_SHA384: 0x0a, HMAC_SHA512: 0x0b, EC: 0x1a, SM4: 0x2d } as const;
export const STATE = { PreActive: 1, Active: 2, Deactivated: 3, Compromised: 4, Destroyed: 5, DestroyedCompromised: 6 } as const;
export const KEY_FORMAT_TYPE = {
  Raw: 1,
  Opaque: 2,
  PKCS1: 3,
  PKCS8: 4,
  X509: 5,
  ECPrivateKey: 6,
  TransparentSymmetricKey: 7,
  TransparentRSAPrivateKey: 0x0a,
  TransparentRSAPublicKey: 0x0b,
  TransparentECPrivateKey: 0x14,
  TransparentECPublicKey: 0x15,
} as const;
export const BLOCK_CIPHER_MODE = { CBC: 1, ECB: 2, GCM: 9, AESKeyWrapPadding: 0x0c, NISTKeyWrap: 0x0d } as const;
export const WRAPPING_METHOD = { Encrypt: 1 } as const;
export const ENCODING_OPTION = { NoEncoding: 1 } as const;
export const CERTIFICATE_TYPE = { X509: 1 } as const;
/** KMIP 1.4 §9.1.3.2.5. */
export const RECOMMENDED_CURVE = { P256: 7, P384: 0x0a } as const;
export const PADDING_METHOD = { None: 1, PKCS5: 3 } as const;
export const NAME_TYPE = { UninterpretedTextString: 1 } as const;
export const QUERY_FUNCTION = { QueryOperations: 1, QueryObjects: 2, QueryServerInformation: 3 } as const;
export const LINK_TYPE = { PublicKeyLink: 0x103, PrivateKeyLink: 0x104, ReplacementObjectLink: 0x106, ReplacedObjectLink: 0x107 } as const;
export const VALIDITY_INDICATOR = { Valid: 1, Invalid: 2 } as const;
export const HASHING_ALGORITHM = { SHA256: 6, SHA384: 7 } as const;
export const PADDING_METHOD_SIGN = { PKCS1v15: 8, PSS: 0x0a } as const;
export const DIGITAL_SIGNATURE_ALGORITHM = { SHA256WithRSA: 5, RSASSA_PSS: 8, ECDSAWithSHA256: 0x0e, ECDSAWithSHA384: 0x0f } as const;
export const REVOCATION_REASON_CODE = { KeyCompromise: 2, CACompromise: 3 } as const;
