// The AWS wire name and HTTP status of every error code of the registry (service/errors.ts): an
// error code without an AWS answer fails to compile. Names are the KMS API reference's exception
// shapes (botocore kms/2014-11-01 service-2.json) and the common errors of the AWS JSON protocol
// (UnknownOperationException, SerializationException, ValidationException, the SigV4 failures).

import type { ErrorCode } from "../../service/errors.js";

export interface AwsError {
  type: string;
  status: number;
}

const validation = { type: "ValidationException", status: 400 };
const notFound = { type: "NotFoundException", status: 400 };
const invalidState = { type: "KMSInvalidStateException", status: 400 };
const unsupported = { type: "UnsupportedOperationException", status: 400 };
const accessDenied = { type: "AccessDeniedException", status: 400 };
const invalidSignature = { type: "InvalidSignatureException", status: 400 };

export const AWS_ERRORS: Readonly<Record<ErrorCode, AwsError>> = {
  InvalidAction: { type: "UnknownOperationException", status: 400 },
  NoSuchVersion: { type: "UnknownOperationException", status: 400 },
  // The region reaches the AWS door only as the credential scope's: AWS answers a wrong one so.
  UnsupportedRegion: invalidSignature,
  UnsupportedProtocol: validation,
  UnknownParameter: validation,
  MissingParameter: validation,
  // A value of the wrong JSON type, or a body that is not a JSON object.
  InvalidParameter: { type: "SerializationException", status: 400 },
  InvalidParameterValue: validation,
  RequestSizeLimitExceeded: { type: "RequestEntityTooLargeException", status: 413 },
  RequestLimitExceeded: { type: "ThrottlingException", status: 400 },
  InvalidAuthorization: { type: "IncompleteSignatureException", status: 400 },
  SecretIdNotFound: { type: "UnrecognizedClientException", status: 400 },
  SignatureExpire: invalidSignature,
  SignatureFailure: invalidSignature,
  TokenFailure: { type: "UnrecognizedClientException", status: 400 },
  UnauthorizedOperation: accessDenied,
  InvalidKeyId: notFound,
  InvalidAlias: { type: "InvalidAliasNameException", status: 400 },
  AliasAlreadyExists: { type: "AlreadyExistsException", status: 400 },
  InvalidKeyUsage: { type: "InvalidKeyUsageException", status: 400 },
  InvalidType: validation,
  InvalidHsmClusterId: validation,
  InvalidPlaintext: validation,
  InvalidCiphertext: { type: "InvalidCiphertextException", status: 400 },
  DuplicatedKeyId: validation,
  TagKeysDuplicated: { type: "TagException", status: 400 },
  InvalidPendingWindowInDays: validation,
  DecryptMaterialError: { type: "InvalidCiphertextException", status: 400 },
  InvalidImportKeyMaterial: { type: "IncorrectKeyMaterialException", status: 400 },
  MaterialNotMatch: { type: "IncorrectKeyMaterialException", status: 400 },
  TokenExpired: { type: "ExpiredImportTokenException", status: 400 },
  NotExternalCmk: unsupported,
  ExternalCmkCanNotRotate: unsupported,
  RotateNotSupported: unsupported,
  RotateRateLimited: { type: "LimitExceededException", status: 400 },
  CmkNotFound: notFound,
  CmkDisabled: { type: "DisabledException", status: 400 },
  CmkArchived: invalidState,
  CmkStateNotSupport: invalidState,
  CmkShouldBeDisabled: invalidState,
  CmkNotPendingDelete: invalidState,
  CmkLimitExceeded: { type: "LimitExceededException", status: 400 },
  UnsupportedOperation: unsupported,
  DecryptError: { type: "InvalidCiphertextException", status: 400 },
  InvalidSignature: { type: "KMSInvalidSignatureException", status: 400 },
  InvalidMac: { type: "KMSInvalidMacException", status: 400 },
  EncryptionError: { type: "KMSInternalException", status: 500 },
  UserNotExist: notFound,
  UserNameInUse: { type: "AlreadyExistsException", status: 400 },
  UserHasAccessKey: validation,
  AccessKeyNotExist: notFound,
  AccessKeyOverLimit: { type: "LimitExceededException", status: 400 },
  PolicyNotExist: notFound,
  PolicyNameInUse: { type: "AlreadyExistsException", status: 400 },
  PolicyNotAttached: validation,
  PolicyDocumentError: { type: "MalformedPolicyDocumentException", status: 400 },
  RoleNotExist: notFound,
  RoleNameInUse: { type: "AlreadyExistsException", status: 400 },
  OperationDenied: accessDenied,
  // Tang servers are managed through the Tencent API only; these reach the AWS door never, named for completeness.
  TangServerNotFound: notFound,
  TangServerNameInUse: { type: "AlreadyExistsException", status: 400 },
  TangKeyNotFound: notFound,
  // The store or root of trust is out of reach: a 5xx the SDKs retry, on another node behind a balancer.
  ServiceUnavailable: { type: "DependencyTimeoutException", status: 503 },
  InternalError: { type: "KMSInternalException", status: 500 },
};

/** The JSON body and status of an error answer of the AWS JSON 1.1 protocol. */
export function awsErrorReply(code: ErrorCode, message: string): { status: number; body: { __type: string; message: string } } {
  const { type, status } = AWS_ERRORS[code];
  return { status, body: { __type: type, message } };
}
