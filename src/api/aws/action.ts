// What every AWS action shares: its context, its declaration (catalogue action, schema, handler),
// and the one way a KeyId parameter becomes a key id.

import type { CatalogActionName } from "../../policy/catalog.js";
import type { Caller, KmsService } from "../../service/kms-service.js";
import type { Parsed, Schema } from "../tencent/params.js";
import { parseKeyRef, resolveKeyRef, type ArnScope } from "./identifiers.js";

export interface AwsActionContext {
  service: KmsService;
  caller: Caller;
  scope: ArnScope;
}

export interface AwsActionDefinition {
  /** The catalogue action whose permission governs it and whose kind (read-only or not) its audit record has. */
  catalog: CatalogActionName<"kms">;
  schema: Schema;
  run(params: Record<string, unknown>, ctx: AwsActionContext): Promise<Record<string, unknown>> | Record<string, unknown>;
}

export function action<S extends Schema>(
  catalog: CatalogActionName<"kms">,
  schema: S,
  run: (params: Parsed<S>, ctx: AwsActionContext) => Promise<Record<string, unknown>> | Record<string, unknown>,
): AwsActionDefinition {
  return { catalog, schema, run: run as AwsActionDefinition["run"] };
}

export function b64(buf: Buffer): string {
  return buf.toString("base64");
}

/** The key id a KeyId parameter names, in the caller's account. */
export function keyOf(ctx: AwsActionContext, value: string, name = "KeyId"): Promise<string> {
  return resolveKeyRef(parseKeyRef(value, ctx.scope, name), ctx.service, ctx.caller);
}
