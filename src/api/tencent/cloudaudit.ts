// The CloudAudit (version 2019-03-19) actions Tresor serves: LookUpEvents and DescribeEvents over
// the audit log of the caller's account, with the field names of the official SDK's cloudaudit
// models. Records hold no parameters, plaintext or secrets, so neither do the events. Nor do
// events show the chain (seq, prevHash, hash): those span every account, and would tell one
// account of the others' volume and timing; the operator verifies the chain offline.
// VerifyAuditChain (a Tresor extension) reports the whole chain's state, counts and seqs included,
// to a caller granted it explicitly (no preset does): it tells of every account's volume.

import { AUDIT_QUERY_LIMITS, type AuditEventFilters, type AuditEventRecord, type AuditEventPage, type AuditEventQuery } from "../../service/audit-query.js";
import { KmsError } from "../../service/errors.js";
import { action, type ActionContext, type ActionTable } from "./actions.js";
import { array, integer, integerOneOf, object, oneOf, optional, string } from "./params.js";

export const CLOUDAUDIT_VERSION = "2019-03-19";

/** The LookupAttributes keys served, and which filter each sets. Tencent's ActionType and ResourceId are accepted as aliases. */
export const LOOKUP_ATTRIBUTE_KEYS = [
  "RequestId",
  "EventName",
  "ReadOnly",
  "ActionType",
  "Username",
  "ResourceType",
  "ResourceName",
  "ResourceId",
  "AccessKeyId",
  "EventId",
  "Flag",
] as const;
type LookupAttributeKey = (typeof LOOKUP_ATTRIBUTE_KEYS)[number];

const MAX_ATTRIBUTES = 10;
const MAX_ATTRIBUTE_VALUE = 256;

const unixSeconds = () => integer(0, AUDIT_QUERY_LIMITS.maxSeconds);
const maxResults = () => integer(1, AUDIT_QUERY_LIMITS.maxMaxResults);
const lookupAttributes = () =>
  array(
    object({
      AttributeKey: string({ min: 1, max: 64 }),
      AttributeValue: optional(string({ max: MAX_ATTRIBUTE_VALUE })),
    }),
    { max: MAX_ATTRIBUTES },
  );

/** The filters LookupAttributes ask for; refuses an unknown key, a repeated one and an empty or malformed value, naming it. */
export function lookupFilters(attributes: readonly { AttributeKey: string; AttributeValue?: string | undefined }[] | undefined): AuditEventFilters {
  const filters: AuditEventFilters = {};
  const seen = new Set<LookupAttributeKey>();
  for (const [i, { AttributeKey: key, AttributeValue: value }] of (attributes ?? []).entries()) {
    const where = `LookupAttributes.${i}`;
    if (!(LOOKUP_ATTRIBUTE_KEYS as readonly string[]).includes(key)) {
      throw new KmsError("InvalidParameterValue", `"${where}.AttributeKey": ${JSON.stringify(key)} is not supported; use one of ${LOOKUP_ATTRIBUTE_KEYS.join(", ")}`);
    }
    const k = key as LookupAttributeKey;
    const same = k === "ActionType" ? "ReadOnly" : k === "ResourceId" ? "ResourceName" : k === "ReadOnly" ? "ActionType" : k === "ResourceName" ? "ResourceId" : k;
    if (seen.has(k) || seen.has(same)) throw new KmsError("InvalidParameterValue", `"${where}.AttributeKey": ${key} is given more than once`);
    seen.add(k);
    if (value === undefined || value === "") throw new KmsError("InvalidParameterValue", `"${where}.AttributeValue" is required for ${key}`);
    const invalid = (expected: string) => new KmsError("InvalidParameterValue", `"${where}.AttributeValue" must be ${expected} for ${key}`);
    switch (k) {
      case "RequestId":
        filters.requestId = value;
        break;
      case "EventName":
        filters.eventName = value;
        break;
      case "ReadOnly":
        if (value !== "true" && value !== "false") throw invalid(`"true" or "false"`);
        filters.readOnly = value === "true";
        break;
      case "ActionType":
        if (value !== "Read" && value !== "Write") throw invalid(`"Read" or "Write"`);
        filters.readOnly = value === "Read";
        break;
      case "Username":
        filters.username = value;
        break;
      case "ResourceType":
        filters.resourceType = value;
        break;
      case "ResourceName":
      case "ResourceId":
        filters.resourceName = value;
        break;
      case "AccessKeyId":
        filters.accessKeyId = value;
        break;
      case "EventId":
        if (!/^[1-9][0-9]{0,15}$/.test(value) || !Number.isSafeInteger(Number(value))) throw invalid("an EventId (digits)");
        filters.eventId = Number(value);
        break;
      case "Flag":
        filters.flag = value;
        break;
    }
  }
  return filters;
}

/** The service as CloudAudit's EventSource names it. */
function eventSource(record: AuditEventRecord): string {
  return record.service === "" ? "" : `${record.service}.tencentcloudapi.com`;
}

function numericUin(uin: string): number {
  return /^[0-9]{1,15}$/.test(uin) ? Number(uin) : 0;
}

/** An audit record as CloudAudit's Event; CloudAuditEvent holds the whole record as JSON. */
export function toEvent(record: AuditEventRecord) {
  const seconds = Math.floor(record.time / 1000);
  const details = {
    eventVersion: 1,
    eventId: String(record.accountSeq),
    eventTime: seconds,
    eventTimeMs: record.time,
    eventType: "ApiCall",
    eventSource: eventSource(record),
    eventName: record.action,
    eventRegion: record.region,
    userIdentity: {
      accountId: record.accountUin,
      principalId: record.principalUin,
      userName: record.principalName,
      secretId: record.accessKeyId,
    },
    sourceIPAddress: record.sourceIp,
    userAgent: record.userAgent,
    requestID: record.requestId,
    traceId: record.traceId,
    nodeId: record.nodeId,
    resourceType: record.resourceType,
    resourceName: record.resourceName,
    readOnly: record.readOnly,
    errorCode: record.result === "Success" ? "" : record.result,
    result: record.result,
    latencyMs: record.latencyMs,
    paramsDigest: record.paramsDigest,
    flags: record.flags,
  };
  return {
    EventId: String(record.accountSeq),
    Username: record.principalName,
    EventTime: String(seconds),
    CloudAuditEvent: JSON.stringify(details),
    ResourceTypeCn: "",
    ErrorCode: record.result === "Success" ? 0 : 1,
    EventName: record.action,
    SecretId: record.accessKeyId,
    EventSource: eventSource(record),
    RequestID: record.requestId,
    ResourceRegion: record.region,
    AccountID: numericUin(record.accountUin),
    SourceIPAddress: record.sourceIp,
    EventNameCn: "",
    Resources: { ResourceType: record.resourceType, ResourceName: record.resourceName },
    EventRegion: record.region,
    Location: "",
  };
}

function search(ctx: ActionContext, permission: string, query: AuditEventQuery): Promise<AuditEventPage> {
  return ctx.service.auditQueries.lookUpEvents(ctx.caller, query, permission);
}

export const CLOUDAUDIT_ACTIONS: ActionTable<"cloudaudit"> = {
  LookUpEvents: action(
    {
      StartTime: unixSeconds(),
      EndTime: unixSeconds(),
      LookupAttributes: optional(lookupAttributes()),
      NextToken: optional(string({ max: 64 })),
      MaxResults: optional(maxResults()),
      Mode: optional(oneOf(["standard", "quick"])),
    },
    async (p, ctx) => {
      const page = await search(ctx, "cloudaudit:LookUpEvents", {
        startTime: p.StartTime,
        endTime: p.EndTime,
        filters: lookupFilters(p.LookupAttributes),
        ...(p.MaxResults === undefined ? {} : { maxResults: p.MaxResults }),
        ...(p.NextToken === undefined ? {} : { nextToken: p.NextToken }),
      });
      return { Events: page.events.map(toEvent), ListOver: page.listOver, ...(page.nextToken === undefined ? {} : { NextToken: page.nextToken }) };
    },
  ),

  DescribeEvents: action(
    {
      StartTime: unixSeconds(),
      EndTime: unixSeconds(),
      NextToken: optional(integer(1, Number.MAX_SAFE_INTEGER)),
      MaxResults: optional(maxResults()),
      LookupAttributes: optional(lookupAttributes()),
      IsReturnLocation: optional(integerOneOf([0, 1])),
    },
    async (p, ctx) => {
      const page = await search(ctx, "cloudaudit:DescribeEvents", {
        startTime: p.StartTime,
        endTime: p.EndTime,
        filters: lookupFilters(p.LookupAttributes),
        ...(p.MaxResults === undefined ? {} : { maxResults: p.MaxResults }),
        ...(p.NextToken === undefined ? {} : { afterSeq: p.NextToken }),
      });
      return { Events: page.events.map(toEvent), ListOver: page.listOver, ...(page.nextSeq === undefined ? {} : { NextToken: page.nextSeq }) };
    },
  ),
  /** Tresor extension: the audit chain's verification status (`tresor audit verify`'s check, on the server's store). */
  VerifyAuditChain: action({}, async (_p, ctx) => {
    const status = await ctx.service.auditQueries.verifyChain(ctx.caller);
    return {
      Verified: status.ok,
      Records: status.records,
      Checkpoints: status.checkpoints,
      FirstSeq: status.firstSeq ?? null,
      LastSeq: status.lastSeq ?? null,
      Failure: status.firstBad === undefined ? null : { Seq: status.firstBad.seq, Reason: status.firstBad.reason, Detail: status.firstBad.detail },
      CheckedAt: Math.floor(status.checkedAt / 1000),
      PublicKey: status.publicKey,
    };
  }),
};
