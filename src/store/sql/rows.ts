// The rows of the SQL stores and their mapping to records, for SQLite and PostgreSQL alike. The
// two differ only in how a boolean comes back (0/1 or false/true) and how a key's tags do (JSON
// text or parsed JSON); the mapping takes either.

import type { Checkpoint } from "../../audit/checkpoint.js";
import type { AuditRecord, AuditService } from "../../audit/record.js";
import type { ImportTokenRecord, KeyClass, KeyOrigin, KeyRecord, KmipObjectMeta, KeySpec, KeyState, KeyUsage, KeyVersionRecord, ProtectionLevel } from "../../keys/key.js";
import type { AccessKeyRecord, KmipClientRecord, PolicyAttachmentRecord, PolicyRecord, PrincipalKind, PrincipalRecord, RoleSessionRecord } from "../store.js";

/** A boolean column: SQLite has none and answers 0 or 1. */
export type SqlBool = boolean | number;

export interface KeyRow {
  key_id: string;
  alias: string;
  description: string;
  key_usage: string;
  key_spec: string;
  origin: string;
  state: string;
  creator_uin: string;
  owner: string;
  create_time: number;
  deletion_date: number;
  current_version: number;
  rotation_enabled: SqlBool;
  rotate_days: number;
  last_rotate_time: number;
  next_rotate_time: number;
  valid_to: number;
  material_digest: Buffer | null;
  protection_level: string;
  key_class: string;
  /** KMIP objects' metadata as JSON text; null for CMKs. */
  kmip: string | null;
  /** [tag key, tag value] pairs by tag key: JSON text (SQLite) or parsed (PostgreSQL's json). */
  tags: string | [string, string][];
}

export interface KmipClientRow {
  fingerprint: string;
  account_uin: string;
  principal_id: string;
  subject: string;
  create_time: number;
}

export function fromKmipClientRow(row: KmipClientRow): KmipClientRecord {
  return { fingerprint: row.fingerprint, accountUin: row.account_uin, principalId: row.principal_id, subject: row.subject, createTime: row.create_time };
}

export interface ImportTokenRow {
  token_id: string;
  key_id: string;
  wrapping_key_spec: string;
  wrapping_algorithm: string;
  wrapped_private_key: Buffer;
  expires_at: number;
  used: SqlBool;
}

export interface KeyVersionRow {
  key_id: string;
  version: number;
  wrapped_material: Buffer;
  public_key: Buffer | null;
  create_time: number;
}

export interface AccessKeyRow {
  secret_id: string;
  wrapped_secret: Buffer;
  uin: string;
  principal_id: string;
  status: string;
  create_time: number;
  last_used_time: number;
}

export interface PrincipalRow {
  principal_id: string;
  account_uin: string;
  kind: string;
  name: string;
  remark: string;
  trust_policy: string | null;
  max_session_seconds: number;
  create_time: number;
}

export interface PolicyRow {
  policy_id: number;
  account_uin: string;
  name: string;
  description: string;
  document: string;
  create_time: number;
  update_time: number;
}

export interface PolicyAttachmentRow {
  principal_id: string;
  policy_id: number;
  account_uin: string;
  create_time: number;
}

export interface RoleSessionRow {
  tmp_secret_id: string;
  role_id: string;
  account_uin: string;
  session_name: string;
  assumed_by: string;
  create_time: number;
  expires_at: number;
}

export interface AuditRow {
  seq: number;
  time: number;
  request_id: string;
  trace_id: string;
  node_id: string;
  account_uin: string;
  principal_uin: string;
  principal_name: string;
  access_key_id: string;
  source_ip: string;
  user_agent: string;
  region: string;
  service: string;
  action: string;
  resource_type: string;
  resource_name: string;
  read_only: SqlBool;
  result: string;
  latency_ms: number;
  params_digest: string;
  flags: string;
  prev_hash: string;
  hash: string;
}

export interface AccountAuditRow extends AuditRow {
  account_seq: number;
}

export interface CheckpointRow {
  seq: number;
  pruned_through: number;
  time: number;
  head_hash: string;
  pruned_head_hash: string;
  signature: string;
}

/** A row of a LEFT JOIN that may have matched nothing (a page past the end, with its count). */
export type Nullable<R> = { [K in keyof R]: R[K] | null };

/** A count(*) or the changes of a statement. */
export interface CountRow {
  n: number;
}

function bool(value: SqlBool): boolean {
  return value === true || value === 1;
}

/** The first row mapped, or undefined when there is none. */
export function first<R, T>(map: (row: R) => T): (rows: R[]) => T | undefined {
  return (rows) => (rows[0] === undefined ? undefined : map(rows[0]));
}

// The columns hold only what the stores wrote from records, so the casts restore the types they started from.
export function fromKeyRow(row: KeyRow): KeyRecord {
  const tags = typeof row.tags === "string" ? (JSON.parse(row.tags) as [string, string][]) : row.tags;
  return {
    keyId: row.key_id,
    alias: row.alias,
    description: row.description,
    keyUsage: row.key_usage as KeyUsage,
    keySpec: row.key_spec as KeySpec,
    origin: row.origin as KeyOrigin,
    state: row.state as KeyState,
    creatorUin: row.creator_uin,
    owner: row.owner,
    createTime: row.create_time,
    deletionDate: row.deletion_date,
    currentVersion: row.current_version,
    tags: tags.map(([key, value]) => ({ key, value })),
    rotationEnabled: bool(row.rotation_enabled),
    rotateDays: row.rotate_days,
    lastRotateTime: row.last_rotate_time,
    nextRotateTime: row.next_rotate_time,
    validTo: row.valid_to,
    materialDigest: row.material_digest,
    protectionLevel: row.protection_level as ProtectionLevel,
    keyClass: row.key_class as KeyClass,
    kmip: row.kmip === null ? null : (JSON.parse(row.kmip) as KmipObjectMeta),
  };
}

/** The values of a key's row in KEY_INSERT_COLUMNS order. */
export function keyValues(key: KeyRecord): unknown[] {
  return [
    key.keyId, key.alias, key.description, key.keyUsage, key.keySpec, key.origin, key.state, key.creatorUin, key.owner,
    key.createTime, key.deletionDate, key.currentVersion, key.rotationEnabled, key.rotateDays, key.lastRotateTime,
    key.nextRotateTime, key.validTo, key.materialDigest, key.protectionLevel, key.keyClass, kmipJson(key),
  ];
}

/** The values of KEY_UPDATE_SET: $1 the key id, then the mutable columns in order. */
export function keyUpdateValues(key: KeyRecord): unknown[] {
  return [
    key.keyId, key.alias, key.description, key.state, key.deletionDate, key.currentVersion,
    key.rotationEnabled, key.rotateDays, key.lastRotateTime, key.nextRotateTime, key.validTo, key.materialDigest, kmipJson(key),
  ];
}

function kmipJson(key: KeyRecord): string | null {
  return key.kmip === null ? null : JSON.stringify(key.kmip);
}

export function fromKeyVersionRow(row: KeyVersionRow): KeyVersionRecord {
  return { keyId: row.key_id, version: row.version, wrappedMaterial: row.wrapped_material, publicKey: row.public_key, createTime: row.create_time };
}

export function keyVersionValues(v: KeyVersionRecord): unknown[] {
  return [v.keyId, v.version, v.wrappedMaterial, v.publicKey, v.createTime];
}

export function fromImportTokenRow(row: ImportTokenRow): ImportTokenRecord {
  return {
    tokenId: row.token_id,
    keyId: row.key_id,
    wrappingKeySpec: row.wrapping_key_spec as ImportTokenRecord["wrappingKeySpec"],
    wrappingAlgorithm: row.wrapping_algorithm as ImportTokenRecord["wrappingAlgorithm"],
    wrappedPrivateKey: row.wrapped_private_key,
    expiresAt: row.expires_at,
    used: bool(row.used),
  };
}

export function fromAccessKeyRow(row: AccessKeyRow): AccessKeyRecord {
  return {
    secretId: row.secret_id,
    wrappedSecret: row.wrapped_secret,
    uin: row.uin,
    principalId: row.principal_id,
    status: row.status as AccessKeyRecord["status"],
    createTime: row.create_time,
    lastUsedTime: row.last_used_time,
  };
}

export function fromPrincipalRow(row: PrincipalRow): PrincipalRecord {
  return {
    principalId: row.principal_id,
    accountUin: row.account_uin,
    kind: row.kind as PrincipalKind,
    name: row.name,
    remark: row.remark,
    trustPolicy: row.trust_policy,
    maxSessionSeconds: row.max_session_seconds,
    createTime: row.create_time,
  };
}

export function fromPolicyRow(row: PolicyRow): PolicyRecord {
  return {
    policyId: row.policy_id,
    accountUin: row.account_uin,
    name: row.name,
    description: row.description,
    document: row.document,
    createTime: row.create_time,
    updateTime: row.update_time,
  };
}

export function fromPolicyAttachmentRow(row: PolicyAttachmentRow): PolicyAttachmentRecord {
  return { principalId: row.principal_id, policyId: row.policy_id, accountUin: row.account_uin, createTime: row.create_time };
}

export function fromRoleSessionRow(row: RoleSessionRow): RoleSessionRecord {
  return {
    tmpSecretId: row.tmp_secret_id,
    roleId: row.role_id,
    accountUin: row.account_uin,
    sessionName: row.session_name,
    assumedBy: row.assumed_by,
    createTime: row.create_time,
    expiresAt: row.expires_at,
  };
}

export function fromAuditRow(row: AuditRow): AuditRecord {
  return {
    seq: row.seq,
    time: row.time,
    requestId: row.request_id,
    traceId: row.trace_id,
    nodeId: row.node_id,
    accountUin: row.account_uin,
    principalUin: row.principal_uin,
    principalName: row.principal_name,
    accessKeyId: row.access_key_id,
    sourceIp: row.source_ip,
    userAgent: row.user_agent,
    region: row.region,
    service: row.service as AuditService,
    action: row.action,
    resourceType: row.resource_type,
    resourceName: row.resource_name,
    readOnly: bool(row.read_only),
    result: row.result,
    latencyMs: row.latency_ms,
    paramsDigest: row.params_digest,
    flags: JSON.parse(row.flags) as string[],
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/** A record's values in AUDIT_COLUMNS order. */
export function auditValues(r: AuditRecord): unknown[] {
  return [
    r.seq, r.time, r.requestId, r.traceId, r.nodeId, r.accountUin, r.principalUin, r.principalName, r.accessKeyId,
    r.sourceIp, r.userAgent, r.region, r.service, r.action, r.resourceType, r.resourceName, r.readOnly, r.result,
    r.latencyMs, r.paramsDigest, JSON.stringify(r.flags), r.prevHash, r.hash,
  ];
}

export function fromCheckpointRow(row: CheckpointRow): Checkpoint {
  return {
    seq: row.seq,
    time: row.time,
    headHash: row.head_hash,
    prunedThrough: row.pruned_through,
    prunedHeadHash: row.pruned_head_hash,
    signature: row.signature,
  };
}

export function checkpointValues(c: Checkpoint): unknown[] {
  return [c.seq, c.prunedThrough, c.time, c.headHash, c.prunedHeadHash, c.signature];
}
