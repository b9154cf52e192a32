// The error every KmsClient call rejects with: the server's Tencent error code, or one of the codes
// the client itself produces when no valid answer came.

/** Codes the client itself produces; every other code comes from the server's Error.Code. */
export const CLIENT_ERROR_CODES = {
  /** The server answered with an HTTP status other than 200. */
  HttpError: "HttpError",
  /** The answer was not `{"Response":{...,"RequestId"}}`, or was cut off. */
  InvalidResponse: "InvalidResponse",
  /** No answer: the connection failed (after the retries, when the failure was transient). */
  NetworkError: "NetworkError",
  /** No complete answer within timeoutMs. */
  Timeout: "Timeout",
  /** The client was closed. */
  ClientClosed: "ClientClosed",
} as const;

export class KmsClientError extends Error {
  override readonly name = "KmsClientError";
  /** A Tencent error code such as "ResourceUnavailable.CmkDisabled", or one of CLIENT_ERROR_CODES. */
  readonly code: string;
  /** The server's RequestId, when the server answered with one. */
  readonly requestId: string | undefined;
  /** The HTTP status, when a response was received. */
  readonly status: number | undefined;

  constructor(code: string, message: string, details: { requestId?: string; status?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.requestId = details.requestId;
    this.status = details.status;
  }
}
