// `tresor serve`'s KMIP settings: --kmip-port needs all three TLS files (KMIP is mutual TLS only),
// the files need the port, and the environment variables stand in for the flags.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, resolveServeConfig } from "../../src/node/config.js";

const files = { kmipCert: "s.pem", kmipKey: "s.key", kmipClientCa: "ca.pem" };

describe("KMIP serve settings", () => {
  it("has no KMIP listener without --kmip-port", () => {
    assert.equal(resolveServeConfig({}, {}).kmip, undefined);
  });

  it("takes the port, the three files and the message limit", () => {
    assert.deepEqual(resolveServeConfig({ kmipPort: "5696", ...files }, {}).kmip, { port: 5696, cert: "s.pem", key: "s.key", clientCa: "ca.pem", maxMessageBytes: 1024 * 1024 });
    assert.equal(resolveServeConfig({ kmipPort: "0", ...files, kmipMaxMessage: "65536" }, {}).kmip?.maxMessageBytes, 65536);
    const fromEnv = resolveServeConfig({}, { TRESOR_KMIP_PORT: "15696", TRESOR_KMIP_CERT: "a", TRESOR_KMIP_KEY: "b", TRESOR_KMIP_CLIENT_CA: "c" }).kmip;
    assert.deepEqual([fromEnv?.port, fromEnv?.cert, fromEnv?.key, fromEnv?.clientCa], [15696, "a", "b", "c"]);
  });

  it("refuses a port without all three files, files without a port, and bad numbers", () => {
    const refused = (flags: Parameters<typeof resolveServeConfig>[0], pattern: RegExp) =>
      assert.throws(() => resolveServeConfig(flags, {}), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
    refused({ kmipPort: "5696", kmipCert: "s.pem", kmipKey: "s.key" }, /--kmip-port needs --kmip-cert, --kmip-key and --kmip-client-ca/);
    refused({ kmipPort: "5696" }, /mutual TLS only/);
    refused({ kmipClientCa: "ca.pem" }, /need --kmip-port/);
    refused({ kmipPort: "70000", ...files }, /--kmip-port must be an integer from 0 to 65535/);
    refused({ kmipPort: "5696", ...files, kmipMaxMessage: "10" }, /--kmip-max-message must be an integer/);
  });
});
