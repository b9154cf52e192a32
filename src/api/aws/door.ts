// The AWS KMS door on Tresor's port: POST / with X-Amz-Target: TrentService.<Action> and
// Content-Type application/x-amz-json-1.1 (the AWS JSON 1.1 protocol), signed with SigV4. The
// server (../server.ts) routes a request here by its X-Amz-Target header and gives it the same
// audit record, rate limit and metrics as a Tencent request; this file only translates.

import type { Caller, KmsService } from "../../service/kms-service.js";
import { KmsError } from "../../service/errors.js";
import { capField } from "../../service/request-audit.js";
import type { IncomingSignedRequest } from "../tencent/authenticate.js";
import { AWS_ACTIONS, awsCatalogAction, runAwsAction } from "./actions.js";
import { SigV4Authenticator } from "./authenticate.js";

export { awsErrorReply } from "./errors.js";
export { awsCatalogAction };

/** The target prefix of KMS (the model's targetPrefix). */
export const TARGET_PREFIX = "TrentService.";
export const AWS_CONTENT_TYPE = "application/x-amz-json-1.1";
/** Every AWS action name the door serves, for the metrics' labels. */
export const AWS_ACTION_NAMES: readonly string[] = Object.freeze(Object.keys(AWS_ACTIONS));

/** Whether a request is for this door: it names an X-Amz-Target. */
export function isAwsRequest(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  return headers["x-amz-target"] !== undefined;
}

/** The action an X-Amz-Target names, as recorded: without the TrentService. prefix when it has it. */
export function awsActionOf(target: string): string {
  return capField(target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : target);
}

/** What the server does for every door: the request's caller recorded, its rate limit, its body parsed. */
export interface DoorHooks {
  authenticated(caller: Caller): void;
  /** Throws RequestLimitExceeded when the caller's account is over its rate. */
  admit(caller: Caller): void;
  /** The body as a JSON object, or InvalidParameter. */
  parseBody(body: Buffer): Record<string, unknown>;
}

export class AwsDoor {
  readonly #authenticator: SigV4Authenticator;

  constructor(
    private readonly service: KmsService,
    private readonly region: string,
    nowSeconds: () => number,
  ) {
    this.#authenticator = new SigV4Authenticator(service.access, region, nowSeconds);
  }

  /** The response body of a request, or a KmsError. */
  async handle(req: IncomingSignedRequest, hooks: DoorHooks): Promise<Record<string, unknown>> {
    const target = String(req.headers["x-amz-target"] ?? "");
    if (!target.startsWith(TARGET_PREFIX)) {
      throw new KmsError("InvalidAction", `"X-Amz-Target" must be ${TARGET_PREFIX}<Action>: this service serves AWS KMS only`);
    }
    const contentType = String(req.headers["content-type"] ?? "");
    if (!/^application\/x-amz-json-1\.[01]\s*(;|$)/i.test(contentType)) {
      throw new KmsError("UnsupportedProtocol", `"Content-Type" must be ${AWS_CONTENT_TYPE}`);
    }
    const caller = await this.#authenticator.authenticate(req);
    hooks.authenticated(caller);
    hooks.admit(caller);
    const params = hooks.parseBody(req.body);
    return runAwsAction(target.slice(TARGET_PREFIX.length), params, { service: this.service, caller, scope: { region: this.region, account: caller.uin } });
  }
}
