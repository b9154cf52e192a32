// A request's audit record, as the service sees it: the server describes the request, the service
// adds what it learns (the keys acted on, flags), and a state change commits its record in the same
// store transaction as the change. The server writes the record of every other request.

import { randomBytes } from "../crypto/random.js";
import { uuidFromBytes } from "../crypto/uuid.js";
import type { AuditRecord } from "../audit/record.js";
import type { AuditEvent, Auditor } from "../audit/writer.js";
import type { Store, StoreOperations } from "../store/store.js";

/** Flags a search can find (AuditRecord.flags). */
export const AUDIT_FLAGS = {
  /** A PendingDelete key was named: someone still uses a key about to be destroyed. */
  pendingDeleteKeyUse: "pending-delete-key-use",
  /** The request was refused by policy (UnauthorizedOperation). */
  policyDenied: "policy-denied",
  /** One of several recent signature failures from the same SecretId. */
  signatureFailures: "signature-failures",
  /** A signature already accepted for one action came back with another (a replayed request). */
  signatureReused: "signature-reused",
  /** A summary of one source's unauthenticated failures that got no record of their own. */
  failedAuthSummary: "failed-auth-summary",
  /** The request came through the AWS KMS door (its action is the AWS action's name). */
  awsProtocol: "aws-protocol",
  /** On a summary: of the sources beyond the tracking cap, counted together. */
  untrackedSources: "untracked-sources",
} as const;

/**
 * A new request id: an RFC 9562 version 7 UUID, the milliseconds since 1970 in its first 48 bits
 * and 74 random bits after. Time-ordered ids make every insert into the audit log's index by
 * request id land at its end rather than on a random page, which halved the cost of writing a
 * record on a 160,000-record log (docs/performance.md).
 */
export function newRequestId(now: number = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return uuidFromBytes(bytes);
}

/** Longest string a request may put into one field of a log line or an audit record. */
export const MAX_FIELD_LENGTH = 256;

/** `value` cut to `max` UTF-16 units (never inside a surrogate pair), marked with "…" when cut. */
export function capField(value: string, max: number = MAX_FIELD_LENGTH): string {
  if (value.length <= max) return value;
  const end = /[\uD800-\uDBFF]/.test(value[max - 2] ?? "") ? max - 2 : max - 1;
  return `${value.slice(0, end)}…`;
}

export class RequestAudit {
  /** Key ids (or other resource names) the request acted on, in order. */
  readonly resources: string[] = [];
  readonly flags = new Set<string>();
  /** True once the record committed together with the request's state change. */
  recorded = false;

  /** `describe` gives the request's record as the server knows it, without result, resources and flags. */
  constructor(readonly describe: () => Omit<AuditEvent, "result" | "resourceName" | "flags">) {}

  addResource(name: string): void {
    if (!this.resources.includes(name)) this.resources.push(name);
  }

  event(result: string): AuditEvent {
    return { ...this.describe(), result, resourceName: this.resources.join(","), flags: [...this.flags] };
  }
}

/**
 * Runs a state change in one store transaction that also appends the request's Success record, so
 * both commit or neither does. Without a request (the scheduler, the account's own tools) or
 * without an auditor (unit tests) it is a plain transaction, and the request stays unrecorded.
 */
export async function auditedTransaction<T>(store: Store, auditor: Auditor<StoreOperations> | undefined, audit: RequestAudit | undefined, fn: (tx: StoreOperations) => Promise<T>): Promise<T> {
  if (!auditor || !audit) return store.transaction(fn);
  const result = await auditor.transaction(async (tx, record) => {
    const value = await fn(tx);
    await record(audit.event("Success"));
    return value;
  });
  audit.recorded = true;
  return result;
}

/**
 * A store operation that runs its own transaction and takes `also` to run inside it (such as
 * Store.insertKeyWithinLimit): `also` appends the request's Success record there.
 */
export async function auditedInsert<T>(
  auditor: Auditor<StoreOperations> | undefined,
  audit: RequestAudit | undefined,
  run: (also: ((tx: StoreOperations) => Promise<void>) | undefined) => Promise<T>,
): Promise<T> {
  if (!auditor || !audit) return run(undefined);
  const appended: AuditRecord[] = [];
  const result = await run(async (tx) => {
    appended.length = 0; // the store may run the transaction again
    appended.push(await auditor.inTransaction(tx, audit.event("Success")));
  });
  if (appended.length > 0) {
    auditor.committed(appended);
    audit.recorded = true;
  }
  return result;
}
