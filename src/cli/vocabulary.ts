// The CLI's one vocabulary (docs/cli.md), shared by every command group: how a key is named
// (`--key-id`: id, alias or alias/NAME), how an encryption context is written (`--context`: JSON
// or key=value, repeatable), how times print (human in tables, ISO 8601 in --json) and how a
// server's error reads in CLI terms (flags and commands, the API's code kept for scripts).

import { InvalidArgumentError } from "commander";
import { KmsClientError, type KmsClient } from "../sdk/index.js";
import type { EncryptionContext } from "../sdk/index.js";
import { ASYMMETRIC_USAGES } from "../keys/specs.js";

/** A mistake in how the command was called; exits with 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The help of every key argument and --key-id. */
export const KEY_HELP = "the CMK: its id, alias, or alias/NAME";
/** The help of every --context. */
export const CONTEXT_HELP = "encryption context: a JSON object of strings, or key=value (repeatable)";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** ListKeyDetail's largest page. */
const ALIAS_SEARCH_LIMIT = 200;

/** True when `ref` is a key id (a UUID, any case). */
export function isKeyId(ref: string): boolean {
  return UUID.test(ref);
}

/**
 * The key id `ref` names: a UUID in any case (lower-cased, as the API wants it), or an alias given
 * bare or as alias/NAME, looked up among the caller's keys of every usage and state.
 */
export async function resolveKeyId(client: KmsClient, ref: string): Promise<string> {
  const trimmed = ref.trim();
  if (isKeyId(trimmed)) return trimmed.toLowerCase();
  const alias = aliasOf(trimmed);
  if (alias === "") throw new KmsClientError("InvalidParameterValue", `--key-id: give a key id, an alias or alias/NAME, got ${JSON.stringify(ref)}`);
  // The search matches aliases containing the name: page until the exact one shows up.
  for (let offset = 0; ; offset += ALIAS_SEARCH_LIMIT) {
    const res = await client.listKeyDetail({ SearchKeyAlias: alias, KeyUsage: "ALL", Offset: offset, Limit: ALIAS_SEARCH_LIMIT });
    const match = (res.KeyMetadatas ?? []).find((k) => k.Alias === alias);
    if (match?.KeyId !== undefined) return match.KeyId;
    if (offset + ALIAS_SEARCH_LIMIT >= (res.TotalCount ?? 0)) {
      throw new KmsClientError("ResourceUnavailable.CmkNotFound", `no key has the id or alias ${JSON.stringify(alias)} (see tresor key list)`, {
        ...(res.RequestId === undefined ? {} : { requestId: res.RequestId }),
      });
    }
  }
}

/** The alias a key reference names, given bare or as alias/NAME ("" when it names none). */
export function aliasOf(ref: string): string {
  const trimmed = ref.trim();
  return trimmed.startsWith("alias/") ? trimmed.slice("alias/".length) : trimmed;
}

/**
 * An argParser for --context, repeatable: a JSON object of strings ('{"tenant":"acme"}') or one
 * key=value pair; the pairs of several --context flags are merged.
 */
export function contextArg(value: string, previous?: EncryptionContext): EncryptionContext {
  const pairs = value.trimStart().startsWith("{") ? jsonContext(value) : pairContext(value);
  const merged: Record<string, string> = { ...previous };
  for (const [k, v] of Object.entries(pairs)) {
    if (Object.hasOwn(merged, k) && merged[k] !== v) throw new InvalidArgumentError(`gives "${k}" twice with different values.`);
    merged[k] = v;
  }
  return merged;
}

function jsonContext(value: string): EncryptionContext {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError(`must be a JSON object such as '{"purpose":"backup"}' or a pair such as purpose=backup.`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(`must be a JSON object such as '{"purpose":"backup"}' or a pair such as purpose=backup.`);
  }
  for (const v of Object.values(parsed)) {
    if (typeof v !== "string") throw new InvalidArgumentError("values must be strings.");
  }
  return parsed as EncryptionContext;
}

function pairContext(value: string): EncryptionContext {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`must be key=value (repeatable) or a JSON object such as '{"purpose":"backup"}'.`);
  return { [value.slice(0, eq)]: value.slice(eq + 1) };
}

/**
 * The algorithm for an asymmetric key (`purpose` decrypt or sign): `given` when there is one, else
 * the key's only algorithm; a key that allows several (RSA) needs --algorithm.
 */
export async function keyAlgorithm(client: KmsClient, keyId: string, purpose: "decrypt" | "sign", given: string | undefined): Promise<string> {
  if (given !== undefined) return given;
  const meta = (await client.describeKey({ KeyId: keyId })).KeyMetadata ?? {};
  const usage = ASYMMETRIC_USAGES[meta.KeyUsage as keyof typeof ASYMMETRIC_USAGES];
  if (usage === undefined || usage.purpose !== purpose) {
    throw new KmsClientError("UnsupportedOperation", `key ${keyId} is a ${meta.KeyUsage ?? "?"} key: it does not ${purpose === "sign" ? "sign or verify" : "decrypt asymmetrically"}`);
  }
  const [only, ...more] = usage.algorithms;
  if (only === undefined || more.length > 0) {
    throw new UsageError(`key ${keyId} (${meta.KeyUsage}) allows several algorithms: give --algorithm ${usage.algorithms.join("|")}`);
  }
  return only;
}

/** A time for people: `2026-12-06 07:31:02 UTC`; "-" when absent. */
export function humanTime(time: number | string | undefined | null): string {
  const date = toDate(time);
  return date === undefined ? "-" : date.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, " UTC");
}

/** A time for scripts: ISO 8601 (`2026-12-06T07:31:02Z`); undefined when absent. */
export function isoTime(time: number | string | undefined | null): string | undefined {
  return toDate(time)?.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Unix seconds (number or digits) or a date string the server gave; 0 means "never". */
function toDate(time: number | string | undefined | null): Date | undefined {
  if (time === undefined || time === null || time === "" || time === 0) return undefined;
  const n = typeof time === "number" ? time : /^\d+$/.test(time) ? Number(time) : Number.NaN;
  // CAM's times ("2026-12-06 07:31:02") are UTC without a zone: read them as UTC, not local time.
  const text = String(time).replace(" ", "T");
  const date = Number.isFinite(n) ? new Date(n * 1000) : new Date(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(text) ? `${text}Z` : text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** An argParser for a time given by a person: unix seconds, or an ISO 8601 date or time (UTC unless it says otherwise). */
export function timeArg(value: string): number {
  if (/^\d{1,10}$/.test(value)) return Number(value);
  const iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$/.test(value) ? `${value.length === 10 ? `${value}T00:00:00` : value}Z` : value;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(iso) : Number.NaN;
  if (Number.isNaN(ms)) throw new InvalidArgumentError("must be unix seconds or an ISO 8601 date such as 2027-01-31 or 2027-01-31T12:00:00Z.");
  return Math.floor(ms / 1000);
}

/** Fields of API answers that hold a time (unix seconds or a date string). */
const TIME_FIELD = /(Time|Date|^Expiration|^ValidTo|^ExpiredTime)$/;

/** `value` with every time field (CreateTime, DeletionDate, …) as ISO 8601, for --json; other fields as they are. */
export function withIsoTimes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withIsoTimes);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const timeLike = TIME_FIELD.test(k) && (typeof v === "number" || (typeof v === "string" && v !== ""));
    out[k] = timeLike ? (isoTime(v as number | string) ?? v) : withIsoTimes(v);
  }
  return out;
}

/** API actions as the CLI command that calls them, so a server's message points at a command. */
const COMMANDS: Readonly<Record<string, string>> = {
  EnableKeyRotation: "tresor key rotation KEY --enable",
  DisableKeyRotation: "tresor key rotation KEY --disable",
  RotateKey: "tresor key rotate",
  EnableKey: "tresor key enable",
  DisableKey: "tresor key disable",
  ArchiveKey: "tresor key archive",
  CancelKeyArchive: "tresor key unarchive",
  ScheduleKeyDeletion: "tresor key schedule-deletion",
  CancelKeyDeletion: "tresor key cancel-deletion",
  Encrypt: "tresor encrypt",
  Decrypt: "tresor decrypt",
  ReEncrypt: "tresor re-encrypt",
  GenerateDataKey: "tresor datakey",
  ImportKeyMaterial: "tresor key import",
  UpdateAlias: "tresor key alias",
  UpdateKeyDescription: "tresor key update-description",
  SignByAsymmetricKey: "tresor sign",
  VerifyByAsymmetricKey: "tresor verify",
};

/** API parameters as the flag that carries them. */
const FLAGS: Readonly<Record<string, string>> = {
  KeyId: "--key-id",
  Plaintext: "the input (--in)",
  EncryptionContext: "--context",
  Alias: "--alias",
  Description: "--description",
  RotateDays: "--days",
  PendingWindowInDays: "--days",
  NumberOfBytes: "--bytes",
  KeySpec: "--key-spec",
  KeyUsage: "--usage",
  Algorithm: "--algorithm",
  CiphertextBlob: "the ciphertext (--in)",
};

/** A hint per situation, keyed by the API's code and a part of its message. */
const HINTS: ReadonlyArray<{ code: RegExp; message: RegExp; hint: string }> = [
  { code: /^InvalidParameterValue/, message: /"Plaintext" must be base64/, hint: "encrypt takes at most 4096 bytes; for larger data use tresor encrypt-file" },
  { code: /^ResourceUnavailable\.CmkShouldBeDisabled/, message: /./, hint: "disable it first: tresor key disable KEY" },
  { code: /^ResourceUnavailable\.CmkStateNotSupport/, message: /is PendingDelete/, hint: "cancel the deletion first: tresor key cancel-deletion KEY" },
  { code: /^ResourceUnavailable\.CmkDisabled/, message: /./, hint: "enable it first: tresor key enable KEY" },
  { code: /^AuthFailure\.SecretIdNotFound/, message: /./, hint: "temporary credentials (tresor admin role assume) need TRESOR_TOKEN beside TRESOR_SECRET_ID and TRESOR_SECRET_KEY" },
  { code: /^UnsupportedRegion/, message: /./, hint: "the server answers for another region: set --region or TRESOR_REGION to it, or leave both unset" },
];

/** A server's error in CLI terms: its message with actions and parameters named as commands and flags, and a hint when one fits. */
export function cliErrorLines(err: KmsClientError): string[] {
  let message = err.message;
  // Not inside a policy action name (kms:Encrypt, name/kms:Encrypt): those are what a policy must say.
  for (const [action, command] of Object.entries(COMMANDS)) message = message.replace(new RegExp(`(?<![\\w:/])(call )?${action}\\b`, "g"), command);
  for (const [param, flag] of Object.entries(FLAGS)) message = message.replaceAll(`"${param}"`, flag);
  const hint = HINTS.find((h) => h.code.test(err.code) && h.message.test(err.message))?.hint;
  return [`error: ${err.code}: ${message}`, ...(hint === undefined ? [] : [`hint: ${hint}`]), ...(err.requestId === undefined ? [] : [`request id: ${err.requestId}`])];
}
