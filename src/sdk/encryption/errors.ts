// The Encryption SDK's one error class. `code` is stable and meant for programs; the message is
// for people and never holds key material or plaintext.

export const ENCRYPTION_ERROR_CODES = {
  /** A bad argument or option; the message names it. */
  InvalidArgument: "InvalidArgument",
  /** The bytes are not a well-formed message of a known version and suite. */
  InvalidMessage: "InvalidMessage",
  /** The message ended early: its final frame or signature footer never came. */
  Truncated: "Truncated",
  /** A header tag, frame tag or key commitment did not verify: the message was altered. */
  AuthenticationFailed: "AuthenticationFailed",
  /** The footer signature did not verify. */
  SignatureInvalid: "SignatureInvalid",
  /** The header holds more encrypted data keys than maxEncryptedDataKeys. */
  TooManyEncryptedDataKeys: "TooManyEncryptedDataKeys",
  /** The header is larger than maxHeaderBytes. */
  HeaderTooLarge: "HeaderTooLarge",
  /** The header declares a frame length larger than maxFrameLength. */
  FrameTooLarge: "FrameTooLarge",
  /** The message's encryption context lacks a required pair, or has another value for it. */
  ContextMismatch: "ContextMismatch",
  /** The suite is not among those the caller allows. */
  SuiteNotAllowed: "SuiteNotAllowed",
  /** No master key could give a data key: every failure is listed in the message and `failures`. */
  NoDataKey: "NoDataKey",
} as const;
export type EncryptionErrorCode = (typeof ENCRYPTION_ERROR_CODES)[keyof typeof ENCRYPTION_ERROR_CODES];

export class EncryptionSdkError extends Error {
  override readonly name = "EncryptionSdkError";
  readonly code: EncryptionErrorCode;
  /** For NoDataKey: one line per master key tried, e.g. `region r1 key 1f…: NetworkError: …`. */
  readonly failures: readonly string[];

  constructor(code: EncryptionErrorCode, message: string, options: { failures?: readonly string[]; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.failures = options.failures ?? [];
  }
}

/** `needs(cond, …)`: throws InvalidArgument unless `cond`, and narrows types for the compiler. */
export function needs(condition: unknown, message: string): asserts condition {
  if (!condition) throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.InvalidArgument, message);
}
