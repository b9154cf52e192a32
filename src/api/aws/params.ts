// Parameter types of the AWS KMS JSON protocol that the Tencent schemas do not have: a key
// identifier of any of AWS's four forms, the encryption context as a JSON map, booleans, grant
// tokens. Everything else (strings, integers, enums, base64 blobs, objects) is the shared schema
// combinators of ../tencent/params.ts, so both doors check a value the same way.

import type { EncryptionContext } from "../../keys/blob.js";
import { KmsError } from "../../service/errors.js";
import { ENCRYPTION_CONTEXT_MAX, array, optional, string, type Param } from "../tencent/params.js";

/** Tags are the same in both doors (TagKey, TagValue). */
export { tag, toTags } from "../tencent/actions.js";

/** AWS's KeyId: 1 to 2048 characters (a key id, key ARN, alias name or alias ARN; identifiers.ts). */
type Required<T> = Param<T> & { readonly required: true };
type Optional<T> = Param<T> & { readonly required: false };

export const keyIdParam = (): Required<string> => string({ min: 1, max: 2048, code: "InvalidKeyId" });

/**
 * A timestamp as the AWS JSON protocol sends it: epoch seconds, fractions allowed (the SDKs send
 * a Date's milliseconds). Whole seconds are kept, as Tresor stores them.
 */
export function epochSeconds(max: number): Required<number> {
  return {
    required: true,
    parse: (value, name) => {
      if (typeof value !== "number" || !Number.isFinite(value)) throw new KmsError("InvalidParameter", `"${name}" must be a number of seconds since the epoch`);
      if (value < 0 || value > max) throw new KmsError("InvalidParameterValue", `"${name}" must be between 0 and ${max} seconds since the epoch`);
      return Math.floor(value);
    },
  };
}

/** A JSON boolean. */
export function boolean(): Required<boolean> {
  return {
    required: true,
    parse: (value, name) => {
      if (typeof value !== "boolean") throw new KmsError("InvalidParameter", `"${name}" must be a boolean`);
      return value;
    },
  };
}

/**
 * AWS's EncryptionContext: a JSON object of string values. Bounded as the Tencent door bounds its
 * (1024 characters of JSON), so a context made through either door can be given through the other.
 */
export function encryptionContextMap(): Required<EncryptionContext> {
  return {
    required: true,
    parse: (value, name) => {
      const problem = `"${name}" must be a JSON object of string values, at most ${ENCRYPTION_CONTEXT_MAX} characters as JSON`;
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new KmsError("InvalidParameter", problem);
      const context: Record<string, string> = Object.create(null);
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") throw new KmsError("InvalidParameter", problem);
        context[k] = v;
      }
      if (JSON.stringify(context).length > ENCRYPTION_CONTEXT_MAX) throw new KmsError("InvalidParameterValue", problem);
      return context;
    },
  };
}

/**
 * GrantTokens: accepted and unused. A grant token only adds permissions a grant gives, and this
 * service has no grants (docs/aws.md), so ignoring one never allows more.
 */
export const grantTokens: Optional<string[]> = optional(array(string({ min: 1, max: 8192 }), { max: 10 }));

/** DryRun: only false (or absent) is served. */
export const dryRun: Optional<boolean> = optional({
  required: true,
  parse: (value: unknown, name: string) => {
    if (typeof value !== "boolean") throw new KmsError("InvalidParameter", `"${name}" must be a boolean`);
    if (value) throw new KmsError("UnsupportedOperation", `"${name}" true is not supported: this service has no dry runs`);
    return value;
  },
});

/** A parameter AWS defines for a feature Tresor does not offer: refused by name when given. */
export function unsupported(feature: string): Optional<never> {
  return {
    required: false,
    parse: (_value, name) => {
      throw new KmsError("UnsupportedOperation", `"${name}" is not supported: ${feature}`);
    },
  };
}

