// The official tencentcloud-sdk-nodejs clients (kms, cam, sts, cloudaudit), pointed at a Tresor
// server as a user would.

import type { Agent } from "node:https";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
type OfficialClient = new (config: unknown) => Record<string, (req: object) => Promise<Record<string, any>>>;
const tencentcloud = require("tencentcloud-sdk-nodejs") as {
  kms: { v20190118: { Client: OfficialClient } };
  cam: { v20190116: { Client: OfficialClient } };
  sts: { v20180813: { Client: OfficialClient } };
  cloudaudit: { v20190319: { Client: OfficialClient } };
};

const PRODUCTS = {
  kms: () => tencentcloud.kms.v20190118.Client,
  cam: () => tencentcloud.cam.v20190116.Client,
  sts: () => tencentcloud.sts.v20180813.Client,
  cloudaudit: () => tencentcloud.cloudaudit.v20190319.Client,
} as const;

/** Calls one action by name, as `client.Encrypt(params)` would. */
export type OfficialCall = (action: string, params?: object) => Promise<Record<string, any>>;

export interface ServerTarget {
  url: string;
  secretId: string;
  secretKey: string;
  region: string;
  /** Temporary credentials' token (X-TC-Token). */
  token?: string;
}

export function officialKmsClient(target: ServerTarget, options: { region?: string; reqTimeout?: number; agent?: Agent } = {}): OfficialCall {
  return officialClient("kms", target, options);
}

export function officialClient(product: keyof typeof PRODUCTS, target: ServerTarget, options: { region?: string; reqTimeout?: number; agent?: Agent } = {}): OfficialCall {
  const url = new URL(target.url);
  const Client = PRODUCTS[product]();
  const client = new Client({
    credential: { secretId: target.secretId, secretKey: target.secretKey, ...(target.token ? { token: target.token } : {}) },
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
  // Actions the SDK has no method for (Tresor's extensions) go through its generic request().
  const generic = client as unknown as { request(action: string, req: object): Promise<Record<string, any>> };
  return (action, params = {}) => (client[action] ? client[action](params) : generic.request(action, params));
}
