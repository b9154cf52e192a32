// The KMIP listener: TTLV messages over mutually authenticated TLS (KMIP 1.4 §8, the KMIP Profiles'
// TLS authentication suites). A client certificate issued by the operator's CA is required by the
// handshake itself; the certificate then maps to a principal (tresor admin kmip-client). Each
// message is read whole (bounded), decoded strictly, answered in the request's protocol version,
// one batch item after the other, each with one audit record before its answer leaves.

import { isIP } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import type { Logger } from "pino";
import type { Auditor } from "../../audit/writer.js";
import type { Caller } from "../../service/access-control.js";
import type { Clock } from "../../service/clock.js";
import { KmsError } from "../../service/errors.js";
import type { KmsService } from "../../service/kms-service.js";
import { capField, RequestAudit } from "../../service/request-audit.js";
import { TLS_CIPHERS } from "../server.js";
import { isKmip2, isSupported, KmipFault, parseRequest, requestVersion, responseMessage, type KmipRequest, type ProtocolVersion, type RequestItem, type ResponseItem } from "./messages.js";
import { kmipReasonOf, OPERATIONS } from "./operations.js";
import type { ResultReasonName } from "./tags.js";
import { decodeTtlv, encodeTtlv, TtlvError } from "./ttlv.js";

export interface KmipServerOptions {
  service: KmsService;
  clock: Clock;
  logger: Logger;
  /** Where every operation's audit record goes (default: nowhere, e.g. in unit tests). */
  auditor?: Pick<Auditor, "record">;
  /** The server's certificate chain and key, and the CA that issues client certificates (PEM). */
  tls: { cert: Buffer; key: Buffer; clientCa: Buffer };
  /** Largest request message accepted, bytes (default 1 MiB); a larger one closes the connection. */
  maxMessageBytes?: number;
  /** Open connections at most (default 256). */
  maxConnections?: number;
  /** A connection idle this long is closed (default 5 minutes). */
  idleTimeoutMs?: number;
}

export const DEFAULT_KMIP_MAX_MESSAGE_BYTES = 1024 * 1024;
const HEADER = 8;
/** Tag 0x420078 (Request Message), type 0x01 (Structure): how every request starts. */
const REQUEST_START = Buffer.from([0x42, 0x00, 0x78, 0x01]);
const FALLBACK_VERSION: ProtocolVersion = { major: 1, minor: 0 };

export function createKmipServer(options: KmipServerOptions): Server {
  const server = createServer({
    cert: options.tls.cert,
    key: options.tls.key,
    ca: options.tls.clientCa,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.2",
    // The HTTP server's suites: TLS 1.3, and TLS 1.2 with ECDHE and AEAD only.
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
    handshakeTimeout: 10_000,
  });
  server.maxConnections = options.maxConnections ?? 256;
  server.on("secureConnection", (socket) => serveConnection(socket, options));
  server.on("tlsClientError", (err, socket) => {
    options.logger.warn({ err: { message: err.message }, source: socket.remoteAddress }, "KMIP TLS handshake refused");
  });
  return server;
}

/** Listens and resolves with the port (the given one, or the one the system chose for 0). */
export function listenKmip(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

export function closeKmip(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function serveConnection(socket: TLSSocket, options: KmipServerOptions): void {
  const max = options.maxMessageBytes ?? DEFAULT_KMIP_MAX_MESSAGE_BYTES;
  const peer = socket.getPeerCertificate(false);
  const certificate = peer && "raw" in peer ? peer.raw : undefined;
  let buffered = Buffer.alloc(0);
  let busy = false;
  socket.setTimeout(options.idleTimeoutMs ?? 5 * 60_000, () => socket.destroy());
  socket.on("error", () => socket.destroy());

  const refuse = (message: string) => {
    // A framing fault leaves no way to find the next message: answer once, then close.
    socket.end(encodeTtlv(responseMessage(FALLBACK_VERSION, nowSeconds(options.clock), [{ operation: undefined, batchItemId: undefined, reason: "InvalidMessage", message }])));
  };

  const pump = async () => {
    if (busy) return;
    busy = true;
    try {
      while (buffered.length >= HEADER && !socket.destroyed) {
        if (!buffered.subarray(0, 4).equals(REQUEST_START)) return refuse("a KMIP request starts with a Request Message structure (tag 0x420078, type 0x01)");
        const length = HEADER + buffered.readUInt32BE(4);
        if (length > max) return refuse(`the message of ${length} bytes exceeds the ${max} bytes this server accepts`);
        if (buffered.length < length) break;
        const message = buffered.subarray(0, length);
        buffered = buffered.subarray(length);
        socket.pause();
        const answer = await handleMessage(message, certificate, socket.remoteAddress, options);
        if (!socket.destroyed) socket.write(answer);
        socket.resume();
      }
    } catch (e) {
      options.logger.error({ err: { message: (e as Error).message } }, "KMIP connection failed");
      socket.destroy();
    } finally {
      busy = false;
    }
  };

  socket.on("data", (chunk: Buffer) => {
    // Never hold more than one message and a header: a larger claim is refused above.
    if (buffered.length + chunk.length > max + HEADER) {
      buffered = Buffer.concat([buffered, chunk.subarray(0, max + HEADER - buffered.length)]);
    } else {
      buffered = Buffer.concat([buffered, chunk]);
    }
    void pump();
  });
}

function nowSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}

/** One request message in, one response message out (encoded). Never throws for the client's faults. */
async function handleMessage(bytes: Buffer, certificate: Buffer | undefined, source: string | undefined, options: KmipServerOptions): Promise<Buffer> {
  const now = nowSeconds(options.clock);
  const failAll = (version: ProtocolVersion, reason: ResultReasonName, message: string, items: readonly Pick<RequestItem, "operation" | "batchItemId">[] = [{ operation: 0, batchItemId: undefined }]) =>
    encodeTtlv(responseMessage(version, now, items.map((i) => ({ operation: i.operation || undefined, batchItemId: i.batchItemId, reason, message }))));

  let decoded: ReturnType<typeof decodeTtlv>;
  try {
    decoded = decodeTtlv(bytes);
  } catch (e) {
    if (e instanceof TtlvError) return failAll(FALLBACK_VERSION, "InvalidMessage", `the message does not decode: ${e.message}`);
    throw e;
  }
  let request: KmipRequest;
  try {
    request = parseRequest(decoded);
  } catch (e) {
    if (e instanceof KmipFault) return failAll(answerVersion(requestVersion(decoded)), e.reason, e.message);
    throw e;
  }
  const version = answerVersion(request.version);
  if (!isSupported(request.version)) return failAll(version, "InvalidMessage", `protocol version ${request.version.major}.${request.version.minor} is not supported: Discover Versions lists the ones that are`, request.items);
  if (request.asynchronous) return failAll(version, "FeatureNotSupported", "asynchronous operations are not supported: send the request without the Asynchronous Indicator", request.items);
  if (request.batchErrorContinuation === 3) return failAll(version, "FeatureNotSupported", `"Batch Error Continuation Option" Undo is not supported: Continue or Stop`, request.items);

  const credential = certificate ? await options.service.access.resolveKmipClient(certificate) : undefined;
  const caller = credential ? await options.service.access.callerFor(credential, source) : undefined;
  const answered: ResponseItem[] = [];
  let placeholder: string | undefined;
  for (const item of request.items) {
    const outcome = await runItem(item, { request, version, caller, source, placeholder }, options);
    answered.push(outcome.response);
    placeholder = outcome.id ?? placeholder;
    if (outcome.response.reason && request.batchErrorContinuation !== 1) break;
  }
  return encodeTtlv(responseMessage(version, now, limitSize(answered, request.maxResponseSize, version, now)));
}

/** The request's version when it is one Tresor speaks or at least a KMIP major it knows; else 1.0. */
function answerVersion(v: ProtocolVersion | undefined): ProtocolVersion {
  return v && (v.major === 1 || v.major === 2) ? v : FALLBACK_VERSION;
}

interface ItemContext {
  request: KmipRequest;
  version: ProtocolVersion;
  caller: Caller | undefined;
  source: string | undefined;
  placeholder: string | undefined;
}

async function runItem(item: RequestItem, ctx: ItemContext, options: KmipServerOptions): Promise<{ response: ResponseItem; id?: string }> {
  const started = process.hrtime.bigint();
  const name = item.operationName ?? `Operation${item.operation}`;
  const operation = item.operationName ? OPERATIONS[item.operationName] : undefined;
  const audit = new RequestAudit(() => ({
    time: options.clock.now(),
    accountUin: ctx.caller?.uin ?? "",
    principalUin: ctx.caller?.principal.id ?? "",
    principalName: ctx.caller?.principal.name ?? "",
    accessKeyId: ctx.caller?.secretId ?? "",
    sourceIp: capField(ctx.source && isIP(ctx.source) ? ctx.source : ""),
    userAgent: `KMIP ${ctx.request.version.major}.${ctx.request.version.minor}`,
    action: `Kmip${name}`,
    resourceType: "kmip",
    readOnly: !operation?.writes,
    latencyMs: Math.round(Number(process.hrtime.bigint() - started) / 1e6),
  }));
  const base = { operation: item.operation, batchItemId: item.batchItemId };
  let response: ResponseItem;
  let id: string | undefined;
  try {
    if (!ctx.caller) throw new KmipFault("AuthenticationNotSuccessful", "this client certificate is mapped to no Tresor user: tresor admin kmip-client add --user NAME --cert FILE");
    if (!operation) throw new KmipFault("OperationNotSupported", `operation ${item.operation} is not supported: Query lists the ones that are`);
    if (operation.since2 && !isKmip2(ctx.version)) throw new KmipFault("OperationNotSupported", `${name} is a KMIP 2.0 operation, not one of KMIP ${ctx.version.major}.${ctx.version.minor}`);
    const result = await operation.run(item.payload, { service: options.service, caller: { ...ctx.caller, audit }, version: ctx.version, placeholder: ctx.placeholder });
    response = { ...base, payload: result.payload };
    id = result.id;
  } catch (e) {
    response = { ...base, ...failure(e, name, options) };
  }
  if (!audit.recorded && options.auditor) {
    try {
      await options.auditor.record(audit.event(response.reason ?? "Success"));
    } catch (e) {
      options.logger.error({ operation: name, err: { message: (e as Error).message } }, "audit record could not be written: KMIP operation refused");
      return { response: { ...base, reason: "GeneralFailure", message: "the audit record could not be written: nothing was returned" } };
    }
  }
  return { response, ...(id === undefined ? {} : { id }) };
}

function failure(e: unknown, name: string, options: KmipServerOptions): { reason: ResultReasonName; message: string } {
  if (e instanceof KmipFault) return { reason: e.reason, message: e.message };
  if (e instanceof KmsError) {
    const reason = kmipReasonOf(e);
    if (reason !== "GeneralFailure") return { reason, message: e.message };
  }
  options.logger.error({ operation: name, err: { message: (e as Error).message } }, "KMIP operation failed");
  return { reason: "GeneralFailure", message: "internal error" };
}

/**
 * The Maximum Response Size (KMIP 1.4 §6.3): the items that would make the response larger are
 * answered Response Too Large instead (what they did is done; their payload is dropped).
 */
function limitSize(items: ResponseItem[], max: number | undefined, version: ProtocolVersion, now: number): ResponseItem[] {
  if (max === undefined) return items;
  const out: ResponseItem[] = [];
  for (const item of items) {
    const candidate = [...out, item];
    if (encodeTtlv(responseMessage(version, now, candidate)).length <= max) out.push(item);
    else out.push({ operation: item.operation, batchItemId: item.batchItemId, reason: "ResponseTooLarge", message: `the response exceeds the Maximum Response Size of ${max} bytes` });
  }
  return out;
}

