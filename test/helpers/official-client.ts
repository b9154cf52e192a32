// The official tencentcloud-sdk-nodejs KMS client, pointed at a Tresor server as a user would.

import type { Agent } from "node:https";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const tencentcloud = require("tencentcloud-sdk-nodejs") as {
  kms: { v20190118: { Client: new (config: unknown) => Record<string, (req: object) => Promise<Record<string, any>>> } };
};

/** Calls one action by name, as `client.Encrypt(params)` would. */
export type OfficialCall = (action: string, params?: object) => Promise<Record<string, any>>;

export interface ServerTarget {
  url: string;
  secretId: string;
  secretKey: string;
  region: string;
}

export function officialKmsClient(target: ServerTarget, options: { region?: string; reqTimeout?: number; agent?: Agent } = {}): OfficialCall {
  const url = new URL(target.url);
  const client = new tencentcloud.kms.v20190118.Client({
    credential: { secretId: target.secretId, secretKey: target.secretKey },
    region: options.region ?? target.region,
    profile: {
      httpProfile: {
        endpoint: url.host,
        protocol: `${url.protocol}//`,
        reqTimeout: options.reqTimeout ?? 10,
        ...(options.agent ? { agent: options.agent } : {}),
      },
    },
  });
  return (action, params = {}) => client[action]!(params);
}
