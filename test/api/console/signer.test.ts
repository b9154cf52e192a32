// The console's TC3-HMAC-SHA256 signer (console/src/api.ts, WebCrypto) against Tresor's own
// (src/crypto/tc3.ts, node:crypto; itself checked against tencentcloud-sdk-nodejs's known answers
// and signer in test/crypto/tc3.test.ts), on seeded random requests; and the credential it keeps:
// a non-extractable key, never the SecretKey's text. The console module is bundled for the test
// with the same esbuild the build uses, and run on Node's WebCrypto (the browser's API).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { tc3Authorization } from "../../../src/crypto/tc3.js";
import { seededRandom } from "../../helpers/wait.js";

interface ConsoleApi {
  openSession(secretId: string, secretKey: string, token: string | undefined): Promise<{ secretId: string; rootKey: CryptoKey; token: string | undefined }>;
  authorization(session: unknown, product: string, timestamp: number, headers: Record<string, string>, payload: string): Promise<string>;
  textToBase64(text: string): string;
  base64ToText(b64: string): string | undefined;
}

const API_SOURCE = fileURLToPath(new URL("../../../../console/src/api.ts", import.meta.url));

async function loadConsoleApi(): Promise<ConsoleApi> {
  const out = await build({ entryPoints: [API_SOURCE], bundle: true, format: "esm", platform: "neutral", write: false, logLevel: "silent" });
  const code = out.outputFiles[0]!.text;
  return (await import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`)) as ConsoleApi;
}

describe("the console's request signer", () => {
  it("signs as src/crypto/tc3.ts does, over content-type, host and x-tc-action", async () => {
    const api = await loadConsoleApi();
    const random = seededRandom("console signer");
    const pick = (chars: string, min: number, max: number) =>
      Array.from({ length: min + Math.floor(random.next() * (max - min + 1)) }, () => chars[Math.floor(random.next() * chars.length)]).join("");
    const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (let i = 0; i < 50; i++) {
      const secretId = `AKID${pick(alnum, 20, 32)}`;
      const secretKey = pick(`${alnum}+/=-_`, 16, 48);
      const product = ["kms", "cam", "sts", "cloudaudit"][i % 4]!;
      const timestamp = 1_600_000_000 + Math.floor(random.next() * 400_000_000);
      const headers = { "content-type": "application/json", host: ["127.0.0.1", "kms.example.com", "[::1]"][i % 3]!, "x-tc-action": pick(alnum, 1, 30) };
      const payload = JSON.stringify({ Plaintext: pick(`${alnum} 密钥é\u2028"\\`, 0, 80) });
      const session = await api.openSession(secretId, secretKey, undefined);
      const ours = await api.authorization(session, product, timestamp, headers, payload);
      const reference = tc3Authorization({
        secretId,
        secretKey,
        service: product,
        timestamp,
        request: { method: "POST", path: "/", query: "", headers, signedHeaders: ["content-type", "host", "x-tc-action"], payload },
      });
      assert.equal(ours, reference, `request ${i} (seed ${random.seed})`);
    }
  });

  it("keeps a non-extractable key, never the SecretKey's text", async () => {
    const api = await loadConsoleApi();
    const secretKey = "the-secret-key-must-not-be-kept-0123";
    const session = await api.openSession("AKIDconsole", secretKey, "");
    assert.equal(session.rootKey.extractable, false);
    await assert.rejects(crypto.subtle.exportKey("raw", session.rootKey));
    assert.equal(session.token, undefined, "an empty token is no token");
    const kept = JSON.stringify(session) + Object.values(session).map(String).join(" ");
    assert.ok(!kept.includes(secretKey));
  });

  it("moves text to and from base64 as UTF-8", async () => {
    const api = await loadConsoleApi();
    for (const text of ["", "hello", "密钥 é \u{1F511}"]) {
      assert.equal(api.textToBase64(text), Buffer.from(text, "utf8").toString("base64"));
      assert.equal(api.base64ToText(api.textToBase64(text)), text);
    }
    assert.equal(api.base64ToText(Buffer.from([0xff, 0xfe]).toString("base64")), undefined, "not UTF-8: shown as base64 instead");
  });
});
