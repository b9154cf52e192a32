// AWS key identifiers onto Tresor's key ids: a key id (UUID), a key ARN
// arn:aws:kms:<region>:<account>:key/<id>, an alias alias/<name> or an alias ARN
// arn:aws:kms:<region>:<account>:alias/<name> (KMS API reference, "KeyId" of each action). An alias
// is the key's one Tencent alias; a key whose alias is its own id (made through this door) has none.

import { isUuid } from "../../keys/blob.js";
import type { Caller, KmsService } from "../../service/kms-service.js";
import { KmsError } from "../../service/errors.js";

/** Where this door's ARNs point: the server's region and the caller's account. */
export interface ArnScope {
  region: string;
  account: string;
}

export type KeyRef = { keyId: string } | { alias: string };

/** The partition of the ARNs this door writes; ARNs of any partition are read. */
const PARTITION = "aws";
const ARN_PATTERN = /^arn:aws[a-z-]*:kms:([^:]*):([^:]*):(key|alias)\/(.+)$/;
/** AWS: alias/ then letters, digits, /, _ and -, at most 256 characters in all. */
export const ALIAS_NAME_PATTERN = /^alias\/[A-Za-z0-9/_-]{1,250}$/;

export function keyArn(scope: ArnScope, keyId: string): string {
  return `arn:${PARTITION}:kms:${scope.region}:${scope.account}:key/${keyId}`;
}

export function aliasArn(scope: ArnScope, aliasName: string): string {
  return `arn:${PARTITION}:kms:${scope.region}:${scope.account}:${aliasName}`;
}

/**
 * What a KeyId parameter names. An ARN of another region or account names no key here (AWS answers
 * such an ARN NotFoundException too); a malformed identifier is NotFoundException as in AWS.
 */
export function parseKeyRef(value: string, scope: ArnScope, name: string): KeyRef {
  const arn = ARN_PATTERN.exec(value);
  if (arn) {
    const [, region, account, kind, resource] = arn as unknown as [string, string, string, string, string];
    if (region !== scope.region || account !== scope.account) {
      throw new KmsError("CmkNotFound", `"${name}": ${value} is not a key of this region (${scope.region}) and account`);
    }
    return kind === "key" ? keyRef(resource, name) : aliasRef(`alias/${resource}`, name);
  }
  if (value.startsWith("alias/")) return aliasRef(value, name);
  return keyRef(value, name);
}

function keyRef(id: string, name: string): KeyRef {
  if (!isUuid(id)) throw new KmsError("InvalidKeyId", `"${name}" must be a key id, a key ARN, an alias name or an alias ARN`);
  return { keyId: id };
}

function aliasRef(aliasName: string, name: string): KeyRef {
  if (!ALIAS_NAME_PATTERN.test(aliasName)) throw new KmsError("InvalidKeyId", `"${name}": ${aliasName} is not a valid alias name`);
  return { alias: aliasName.slice("alias/".length) };
}

/** The key id a reference names; an alias is looked up in the caller's account. */
export async function resolveKeyRef(ref: KeyRef, service: KmsService, caller: Caller): Promise<string> {
  if ("keyId" in ref) return ref.keyId;
  const keyId = await service.keyIdOfAlias(caller, ref.alias);
  // A key without an alias carries its own id as its Tencent alias: that is no AWS alias.
  if (keyId === ref.alias) throw new KmsError("CmkNotFound", `no key has the alias alias/${ref.alias}`);
  return keyId;
}

/** The AWS alias name of a key ("alias/<name>"), or undefined when it has none. */
export function awsAliasOf(key: { keyId: string; alias: string }): string | undefined {
  return key.alias === key.keyId ? undefined : `alias/${key.alias}`;
}
