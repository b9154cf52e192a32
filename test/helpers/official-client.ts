// The official tencentcloud-sdk-nodejs clients (kms, cam, sts, cloudaudit), pointed at a Tresor
// server as a user would: through a host name whose first label is the product (kms.…, cam.…),
// because the SDKs sign with that label as the credential scope's service and Tresor accepts only
// the product's own name there. The name is resolved to the server's address by the agent.

import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { LookupFunction } from "node:net";
import { SERVICE_INFORMATION_ACTIONS } from "../../src/api/tencent/actions.js";
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

export interface OfficialClientOptions {
  region?: string;
  reqTimeout?: number;
  /** For https: the CA to trust; the server's certificate must name `<product>.tresor.test`. */
  ca?: Buffer;
}

/** The domain under which the test clients name Tresor: kms.tresor.test, cam.tresor.test… */
export const OFFICIAL_CLIENT_DOMAIN = "tresor.test";

export function officialKmsClient(target: ServerTarget, options: OfficialClientOptions = {}): OfficialCall {
  return officialClient("kms", target, options);
}

export function officialClient(product: keyof typeof PRODUCTS, target: ServerTarget, options: OfficialClientOptions = {}): OfficialCall {
  const url = new URL(target.url);
  const address = url.hostname.replace(/^\[|\]$/g, "");
  const family = address.includes(":") ? 6 : 4;
  // Every name resolves to the server's own address.
  const lookup = ((_hostname: string, lookupOptions: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (lookupOptions.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as unknown as LookupFunction;
  const agent = url.protocol === "https:" ? new HttpsAgent({ lookup, ...(options.ca ? { ca: options.ca } : {}) }) : new HttpAgent({ lookup });
  const Client = PRODUCTS[product]();
  const client = new Client({
    credential: { secretId: target.secretId, secretKey: target.secretKey, ...(target.token ? { token: target.token } : {}) },
    region: options.region ?? target.region,
    profile: {
      httpProfile: {
        endpoint: `${product}.${OFFICIAL_CLIENT_DOMAIN}:${url.port}`,
        protocol: `${url.protocol}//`,
        reqTimeout: options.reqTimeout ?? 10,
        agent,
      },
    },
  });
  // Actions the SDK has no method for (Tresor's extensions) go through its generic request().
  const generic = client as unknown as { request(action: string, req: object): Promise<Record<string, any>> };
  const pacing = pacingFor(`${target.secretId}\0${product}`);
  return async (action, params = {}) => {
    await pacing.clear(action, JSON.stringify(params));
    return client[action] ? client[action](params) : generic.request(action, params);
  };
}

/**
 * The SDK signs neither X-TC-Action nor a nonce: two different actions with the same parameters
 * in the same second share one signature, and Tresor serves only the first (a replay guard; see
 * docs/api.md). Test scripts call actions back to back, so, as docs/api.md tells SDK users to,
 * they wait for the next second before sending another action with parameters just sent.
 */
class Pacing {
  /** Per unix second: body → the action sent with it. */
  readonly #sent = new Map<number, Map<string, string>>();

  async clear(action: string, body: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const now = Date.now();
      // The SDK reads the clock again just after this: near a second's end, count the next one too.
      const seconds = [Math.floor(now / 1000), Math.floor((now + 200) / 1000)];
      for (const second of this.#sent.keys()) if (second < seconds[0]! - 1) this.#sent.delete(second);
      const clash = seconds.some((second) => {
        const earlier = this.#sent.get(second)?.get(body);
        return earlier !== undefined && earlier !== action && !(SERVICE_INFORMATION.has(earlier) && SERVICE_INFORMATION.has(action));
      });
      if (!clash) {
        for (const second of seconds) {
          if (!this.#sent.has(second)) this.#sent.set(second, new Map());
          if (!this.#sent.get(second)!.has(body)) this.#sent.get(second)!.set(body, action);
        }
        return;
      }
      if (now > deadline) throw new Error("official-client pacing: the clock did not move on within 5 s");
      await new Promise((resolve) => setTimeout(resolve, 1000 - (now % 1000) + 1));
    }
  }
}

const SERVICE_INFORMATION = new Set(SERVICE_INFORMATION_ACTIONS);
const pacings = new Map<string, Pacing>();
function pacingFor(key: string): Pacing {
  let pacing = pacings.get(key);
  if (pacing === undefined) {
    pacing = new Pacing();
    pacings.set(key, pacing);
  }
  return pacing;
}
