// The Tang door with the real clients: the same clevis script (encrypt and decrypt a secret; bind a
// LUKS2 image with `clevis luks bind`, recover its passphrase with `clevis luks pass`, open it with
// `cryptsetup open --test-passphrase`) passes against Debian's tangd and against Tresor. Then, on
// Tresor only: disable refuses recovery and enable restores it; rotate keeps old bindings
// recovering while new bindings use the new exchange key; a source outside the allowed networks is
// refused, audited and counted; and hostile requests get tangd's statuses from both servers and
// change nothing.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { p521 } from "@noble/curves/nist.js";
import {
  clevisDecrypt,
  clevisEncrypt,
  haveTangTools,
  jweKid,
  luksBind,
  luksImage,
  luksPassOpens,
  startReferenceTang,
  type ReferenceTang,
} from "../helpers/clevis.js";
import { runCli, startServer, type CliResult, type TestServer } from "../helpers/server.js";

const tools = await haveTangTools();
const skip = tools || process.env.CI ? false : "clevis, clevis-luks, cryptsetup, jose, tang and socat (Debian packages) are not installed";

interface Server {
  url: string;
  thp: string;
}

function ok(result: CliResult): CliResult {
  assert.equal(result.code, 0, `exit ${result.code}; stdout: ${result.stdout}; stderr: ${result.stderr}`);
  return result;
}

/** The clevis script both servers must pass; returns the JWE and the bound image for later checks. */
async function clevisScript(server: Server, work: string): Promise<{ jwe: string; image: string }> {
  const secret = `disk secret ${Math.random()}`;
  const jwe = await clevisEncrypt(server.url, server.thp, secret);
  const decrypted = await clevisDecrypt(jwe);
  assert.equal(decrypted.code, 0, decrypted.stderr);
  assert.equal(decrypted.stdout, secret);
  const image = await luksImage(work, "first passphrase");
  await luksBind(image, "first passphrase", server.url, server.thp);
  assert.deepEqual(await luksPassOpens(image, work), { recovered: true, opens: true });
  return { jwe, image };
}

/** A P-521 JWK as clevis sends it, from a point given by its affine coordinates. */
function requestJwk(x: bigint, y: bigint, extra: Record<string, unknown> = {}): string {
  const b64 = (n: bigint) => Buffer.from(n.toString(16).padStart(132, "0"), "hex").toString("base64url");
  return JSON.stringify({ alg: "ECMR", crv: "P-521", key_ops: ["deriveKey"], kty: "EC", x: b64(x), y: b64(y), ...extra });
}

// The four cases use servers of their own, and run side by side: most of their time is spent waiting
// for clevis's shell scripts.
describe("Tang door with clevis, against Debian's tangd and Tresor", { skip, concurrency: 4 }, () => {
  let work: string;
  let reference: ReferenceTang;
  let tresor: TestServer;
  let env: Record<string, string>;

  const tang = async (...args: string[]) => JSON.parse(ok(await runCli(["tang", ...args, "--json"], { env })).stdout);
  const show = (name: string) => tang("show", name);

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "tresor-tang-"));
    [reference, tresor] = await Promise.all([startReferenceTang(), startServer()]);
    env = { TRESOR_ENDPOINT: tresor.url, TRESOR_SECRET_ID: tresor.secretId, TRESOR_SECRET_KEY: tresor.secretKey };
  });

  after(async () => {
    await Promise.all([reference?.stop(), tresor?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  it("the clevis script passes against Debian's tangd (the reference)", async () => {
    await clevisScript(reference, work);
  });

  it("the same script passes against Tresor; disable, enable and rotate do what they say", async () => {
    const created = await tang("create", "rack1");
    assert.equal(created.State, "Enabled");
    const thp1: string = created.SigningKey.Versions[0].Thumbprint;
    const kid1: string = created.ExchangeKey.Versions[0].Thumbprint;
    const server = { url: `${tresor.url}/tang/rack1`, thp: thp1 };
    const { jwe, image } = await clevisScript(server, work);
    assert.equal(jweKid(jwe), kid1, "clevis binds to the advertised exchange key");

    ok(await runCli(["tang", "disable", "rack1"], { env }));
    assert.notEqual((await clevisDecrypt(jwe)).code, 0, "a disabled Tang server does not unlock");
    ok(await runCli(["tang", "enable", "rack1"], { env }));
    assert.equal((await clevisDecrypt(jwe)).code, 0);

    const rotated = await tang("rotate", "rack1");
    const kid2: string = rotated.ExchangeKey.Versions.find((v: { Advertised: boolean }) => v.Advertised).Thumbprint;
    const thp2: string = rotated.SigningKey.Versions.find((v: { Advertised: boolean }) => v.Advertised).Thumbprint;
    assert.notEqual(kid2, kid1);
    assert.equal(rotated.ExchangeKey.Versions.length, 2);
    assert.equal((await clevisDecrypt(jwe)).code, 0, "an old binding still recovers after rotation");
    assert.deepEqual(await luksPassOpens(image, work), { recovered: true, opens: true });
    // New bindings use the new exchange key (clevis 19 wants the pinned key in the advertised set,
    // so it pins the new signing key, as after tangd-rotate-keys).
    const fresh = await clevisEncrypt(server.url, thp2, "after rotation");
    assert.equal(jweKid(fresh), kid2);
    assert.equal((await clevisDecrypt(fresh)).stdout, "after rotation");
  });

  it("refuses, audits and counts a recovery from outside the allowed networks", async () => {
    const created = await tang("create", "rack2", "--allow", "10.0.0.0/8", "fd00::/8");
    assert.deepEqual(created.AllowedNetworks, ["10.0.0.0/8", "fd00::/8"]);
    const url = `${tresor.url}/tang/rack2`;
    const jwe = await clevisEncrypt(url, created.SigningKey.Versions[0].Thumbprint, "rack2 secret");
    assert.notEqual((await clevisDecrypt(jwe)).code, 0, "127.0.0.1 is outside 10.0.0.0/8");

    const search = JSON.parse(ok(await runCli(["audit", "search", "--action", "TangRecover", "--since", "1h", "--json"], { env })).stdout);
    const refused = search.Events.map((e: { CloudAuditEvent: string }) => JSON.parse(e.CloudAuditEvent)).find(
      (e: { resourceName: string }) => e.resourceName.startsWith(`tang/rack2/${jweKid(jwe)}`),
    );
    assert.ok(refused, "the refused recovery has an audit record naming the kid");
    assert.equal(refused.result, "UnauthorizedOperation");
    assert.equal(refused.sourceIPAddress, "127.0.0.1");
    const metrics = await (await fetch(`${tresor.url}/metrics`)).text();
    assert.match(metrics, /tresor_requests_total\{node="[^"]*",action="TangRecover",code="UnauthorizedOperation"\} 1\n/);

    ok(await runCli(["tang", "allow", "rack2", "127.0.0.0/8"], { env }));
    assert.equal((await clevisDecrypt(jwe)).stdout, "rack2 secret");
  });

  it("answers hostile requests with tangd's statuses, on both servers, and changes nothing", async () => {
    const created = await tang("create", "rack3");
    const kid = created.ExchangeKey.Versions[0].Thumbprint;
    const signingKid = created.SigningKey.Versions[0].Thumbprint;
    const g = p521.Point.BASE.toAffine();
    const fieldPrime = p521.Point.CURVE().p;
    const valid = requestJwk(g.x, g.y);
    // `tangd`: where tangd answers otherwise (it reduces a coordinate modulo p; SEC 1 2.3.4 refuses it).
    const cases: { what: string; body: string; status: number; tangd?: number; kid?: "signing" | "unknown" }[] = [
      { what: "not JSON", body: "{", status: 400 },
      { what: "a JSON array", body: "[]", status: 400 },
      { what: "kty RSA", body: JSON.stringify({ ...JSON.parse(valid), kty: "RSA" }), status: 400 },
      { what: "alg ES512", body: JSON.stringify({ ...JSON.parse(valid), alg: "ECDH-ES" }), status: 400 },
      { what: "key_ops without deriveKey", body: JSON.stringify({ ...JSON.parse(valid), key_ops: ["sign"] }), status: 403 },
      { what: "a point off the curve", body: requestJwk(g.x, g.y + 1n), status: 400 },
      { what: "the point at infinity (0, 0)", body: requestJwk(0n, 0n), status: 400 },
      { what: "a coordinate above the field prime", body: requestJwk(g.x + fieldPrime, g.y), status: 400, tangd: 200 },
      { what: "a P-256 point", body: JSON.stringify({ ...JSON.parse(valid), crv: "P-256", x: "AA", y: "AA" }), status: 400 },
      { what: "an unknown kid", body: valid, status: 404, kid: "unknown" },
      { what: "the signing key's kid", body: valid, status: 403, kid: "signing" },
      { what: "an oversized body", body: JSON.stringify({ ...JSON.parse(valid), pad: "a".repeat(100_000) }), status: 413 },
    ];
    const targets = [
      { name: "tangd", base: reference.url, exchangeKid: reference.kid, signingKid: reference.thp },
      { name: "Tresor", base: `${tresor.url}/tang/rack3`, exchangeKid: kid, signingKid },
    ];
    for (const { name, base, exchangeKid, signingKid } of targets) {
      const target = { name, base };
      for (const c of cases) {
        const k = c.kid === "unknown" ? "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" : c.kid === "signing" ? signingKid : exchangeKid;
        const res = await fetch(`${target.base}/rec/${k}`, { method: "POST", headers: { "content-type": "application/jwk+json" }, body: c.body }).catch((e: Error) => e);
        const status = res instanceof Error ? "connection closed" : res.status;
        assert.equal(status, name === "tangd" ? (c.tangd ?? c.status) : c.status, `${target.name}: ${c.what}`);
      }
      const good = await fetch(`${target.base}/rec/${exchangeKid}`, { method: "POST", headers: { "content-type": "application/jwk+json" }, body: valid });
      assert.equal(good.status, 200, `${target.name}: a valid point`);
      assert.equal((await fetch(`${target.base}/adv/${exchangeKid}`)).status, 404, `${target.name}: no advertisement for an exchange key`);
      assert.equal((await fetch(`${target.base}/rec/${exchangeKid}`)).status, 405, `${target.name}: GET /rec`);
      assert.equal((await fetch(`${target.base}/adv`, { method: "POST", body: "{}" })).status, 405, `${target.name}: POST /adv`);
    }
    assert.equal((await fetch(`${tresor.url}/tang/no-such-server/adv`)).status, 404);
    assert.equal((await fetch(`${tresor.url}/tang/bad%20name/adv`)).status, 404);
    assert.deepEqual(await show("rack3"), created, "nothing changed");
  });
});
