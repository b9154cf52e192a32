// Test helpers for the AWS door: the official AWS SDK's KMS client pointed at an in-process Tresor
// server (its endpoint, its region, Tresor's access key as the AWS access key), and raw requests
// signed by the SDK's own SigV4 signer so a test can break one part of a request.

import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { request } from "node:http";
import { KMS, KMSClient, type KMSClientConfig } from "@aws-sdk/client-kms";
import { SignatureV4 } from "@smithy/signature-v4";
import type { InProcessServer } from "../helpers-inprocess.js";

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytes(data: SourceData): string | Buffer {
  if (typeof data === "string") return data;
  return ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
}

/** SHA-256 (HMAC-SHA-256 with a secret) from node:crypto, in the shape the SDK's signer asks for. */
export class NodeSha256 {
  readonly #hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }
  update(data: SourceData): void {
    this.#hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.#hash.digest();
  }
}

export interface AwsTarget {
  url: string;
  region: string;
  secretId: string;
  secretKey: string;
  token?: string;
}

/** The SDK's client, without retries so an error is the server's first answer. */
export function awsClient(target: AwsTarget, options: { region?: string; secretKey?: string } = {}): KMSClient {
  return new KMSClient(awsConfig(target, options));
}

/** The SDK's aggregated client (methods per operation), as the AWS Encryption SDK's keyrings take it. */
export function awsKms(target: AwsTarget): KMS {
  return new KMS(awsConfig(target));
}

function awsConfig(target: AwsTarget, options: { region?: string; secretKey?: string } = {}): KMSClientConfig {
  return {
    region: options.region ?? target.region,
    endpoint: target.url,
    maxAttempts: 1,
    credentials: {
      accessKeyId: target.secretId,
      secretAccessKey: options.secretKey ?? target.secretKey,
      ...(target.token === undefined ? {} : { sessionToken: target.token }),
    },
  };
}

export interface AwsRawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: Record<string, unknown> | undefined;
  text: string;
}

export interface AwsRawOptions {
  /** Headers replacing the signed ones after signing (lower-case names). */
  headers?: Record<string, string>;
  /** Sign these bytes while sending the body given. */
  signedBody?: string;
  region?: string;
  secretKey?: string;
  contentType?: string;
  /** Leave the Authorization header out. */
  unsigned?: boolean;
}

/** Sends `body` as TrentService.`action` (or a whole X-Amz-Target given as `target`), signed by the SDK's signer. */
export async function awsRaw(server: InProcessServer, target: string, body: string | object, options: AwsRawOptions = {}): Promise<AwsRawResponse> {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const signer = new SignatureV4({
    service: "kms",
    region: options.region ?? server.region,
    credentials: { accessKeyId: server.secretId, secretAccessKey: options.secretKey ?? server.secretKey },
    sha256: NodeSha256,
  });
  const unsignedRequest = {
    method: "POST",
    protocol: "http:",
    hostname: "127.0.0.1",
    port: server.port,
    path: "/",
    headers: {
      host: `127.0.0.1:${server.port}`,
      "content-type": options.contentType ?? "application/x-amz-json-1.1",
      "x-amz-target": target.includes(".") ? target : `TrentService.${target}`,
    } as Record<string, string>,
    body: options.signedBody ?? text,
  };
  const signed = options.unsigned ? unsignedRequest : await signer.sign(unsignedRequest, { signingDate: new Date(server.clock.now()) });
  const headers: Record<string, string> = { ...signed.headers, ...options.headers, "content-length": String(Buffer.byteLength(text)) };
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.port, method: "POST", path: "/", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const out = Buffer.concat(chunks).toString("utf8");
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(out) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text: out });
      });
    });
    req.on("error", reject);
    req.end(text);
  });
}
