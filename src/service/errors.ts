// One error type for the whole service. `code` is protocol-neutral; the protocol adapters map it
// to their wire names through the registry below. Messages never carry key material or secrets.

export const ERROR_CODES = {
  // request shape
  InvalidAction: { tencent: "InvalidAction" },
  NoSuchVersion: { tencent: "NoSuchVersion" },
  UnsupportedRegion: { tencent: "UnsupportedRegion" },
  UnsupportedProtocol: { tencent: "UnsupportedProtocol" },
  UnknownParameter: { tencent: "UnknownParameter" },
  MissingParameter: { tencent: "MissingParameter" },
  InvalidParameter: { tencent: "InvalidParameter" },
  InvalidParameterValue: { tencent: "InvalidParameterValue" },
  RequestSizeLimitExceeded: { tencent: "RequestSizeLimitExceeded" },
  RequestLimitExceeded: { tencent: "RequestLimitExceeded" },
  // authentication
  InvalidAuthorization: { tencent: "AuthFailure.InvalidAuthorization" },
  SecretIdNotFound: { tencent: "AuthFailure.SecretIdNotFound" },
  SignatureExpire: { tencent: "AuthFailure.SignatureExpire" },
  SignatureFailure: { tencent: "AuthFailure.SignatureFailure" },
  TokenFailure: { tencent: "AuthFailure.TokenFailure" },
  UnauthorizedOperation: { tencent: "UnauthorizedOperation" },
  // parameter values specific to KMS
  InvalidKeyId: { tencent: "InvalidParameterValue.InvalidKeyId" },
  InvalidAlias: { tencent: "InvalidParameterValue.InvalidAlias" },
  AliasAlreadyExists: { tencent: "InvalidParameterValue.AliasAlreadyExists" },
  InvalidKeyUsage: { tencent: "InvalidParameterValue.InvalidKeyUsage" },
  InvalidType: { tencent: "InvalidParameterValue.InvalidType" },
  InvalidHsmClusterId: { tencent: "InvalidParameterValue.InvalidHsmClusterId" },
  InvalidPlaintext: { tencent: "InvalidParameterValue.InvalidPlaintext" },
  InvalidCiphertext: { tencent: "InvalidParameterValue.InvalidCiphertext" },
  DuplicatedKeyId: { tencent: "InvalidParameterValue.DuplicatedKeyId" },
  TagKeysDuplicated: { tencent: "InvalidParameterValue.TagKeysDuplicated" },
  InvalidPendingWindowInDays: { tencent: "InvalidParameter.InvalidPendingWindowInDays" },
  // bring your own key
  DecryptMaterialError: { tencent: "InvalidParameter.DecryptMaterialError" },
  InvalidImportKeyMaterial: { tencent: "InvalidParameterValue.InvalidImportKeyMaterial" },
  MaterialNotMatch: { tencent: "InvalidParameterValue.MaterialNotMatch" },
  TokenExpired: { tencent: "ResourceUnavailable.TokenExpired" },
  NotExternalCmk: { tencent: "UnsupportedOperation.NotExternalCmk" },
  // rotation
  ExternalCmkCanNotRotate: { tencent: "UnsupportedOperation.ExternalCmkCanNotRotate" },
  RotateNotSupported: { tencent: "UnsupportedOperation.RotateNotSupported" },
  RotateRateLimited: { tencent: "RequestLimitExceeded.RotateRateLimited" },
  // key state and existence
  CmkNotFound: { tencent: "ResourceUnavailable.CmkNotFound" },
  CmkDisabled: { tencent: "ResourceUnavailable.CmkDisabled" },
  CmkArchived: { tencent: "ResourceUnavailable.CmkArchived" },
  CmkStateNotSupport: { tencent: "ResourceUnavailable.CmkStateNotSupport" },
  CmkShouldBeDisabled: { tencent: "ResourceUnavailable.CmkShouldBeDisabled" },
  CmkNotPendingDelete: { tencent: "ResourceUnavailable.CmkNotPendingDelete" },
  CmkLimitExceeded: { tencent: "LimitExceeded.CmkLimitExceeded" },
  UnsupportedOperation: { tencent: "UnsupportedOperation" },
  DecryptError: { tencent: "FailedOperation.DecryptError" },
  /** Only the AWS door's Verify fails so; the Tencent door answers SignatureValid false. */
  InvalidSignature: { tencent: "FailedOperation.InvalidSignature" },
  /** Only the AWS door's VerifyMac fails so; the Tencent door answers MacValid false. */
  InvalidMac: { tencent: "FailedOperation.InvalidMac" },
  EncryptionError: { tencent: "FailedOperation.EncryptionError" },
  // access control (the CAM and STS actions)
  UserNotExist: { tencent: "ResourceNotFound.UserNotExist" },
  UserNameInUse: { tencent: "FailedOperation.UserNameInUse" },
  UserHasAccessKey: { tencent: "OperationDenied.UserHasAccessKey" },
  AccessKeyNotExist: { tencent: "ResourceNotFound.AccessKeyNotExist" },
  AccessKeyOverLimit: { tencent: "OperationDenied.AccessKeyOverLimit" },
  PolicyNotExist: { tencent: "ResourceNotFound.PolicyIdNotExist" },
  PolicyNameInUse: { tencent: "FailedOperation.PolicyNameInUse" },
  PolicyNotAttached: { tencent: "FailedOperation.PolicyNotAttached" },
  PolicyDocumentError: { tencent: "InvalidParameter.PolicyDocumentError" },
  RoleNotExist: { tencent: "ResourceNotFound.RoleNotExist" },
  RoleNameInUse: { tencent: "FailedOperation.RoleNameInUse" },
  OperationDenied: { tencent: "OperationDenied" },
  // Tang servers (Tresor extension)
  TangServerNotFound: { tencent: "ResourceNotFound.TangServerNotFound" },
  TangServerNameInUse: { tencent: "FailedOperation.TangServerNameInUse" },
  TangKeyNotFound: { tencent: "ResourceNotFound.TangKeyNotFound" },
  // the node cannot reach its store or its root of trust now; another node, or a later retry, may succeed
  ServiceUnavailable: { tencent: "ServiceUnavailable" },
  // everything else
  InternalError: { tencent: "InternalError" },
} as const satisfies Record<string, { tencent: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class KmsError extends Error {
  override readonly name = "KmsError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** `needs(cond, code, message)`: throws a KmsError unless `cond` holds, and narrows its type. */
export function needs(cond: unknown, code: ErrorCode, message: string): asserts cond {
  if (!cond) throw new KmsError(code, message);
}
