// KMIP end to end with a client Tresor did not write: PyKMIP's ProxyKmipClient (Debian's
// python3-pykmip) over mutual TLS at KMIP 1.2, 1.4 and 2.0, against `tresor serve --kmip-port` and,
// as the reference for what the protocol means, against PyKMIP's own pykmip-server.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { requireOpenssl } from "../../helpers/openssl.js";
import { runCli, startServer, type CliResult, type TestServer } from "../../helpers/server.js";
import { kmipPortOf, kmipServeArgs, makePki, pykmipSkip, runClient, startPykmipServer, type KmipVersion, type Pki, type Step } from "./fixture.js";

const VERSIONS: readonly KmipVersion[] = ["1.2", "1.4", "2.0"];

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r;
}

function stepsByName(steps: Step[]): Map<string, Step> {
  return new Map(steps.map(({ version: _, ...s }) => [s.step, s as Step]));
}

/** What the acceptance walk at `version` must show, whichever server answered. */
function assertFullWalk(all: Step[], version: KmipVersion, prefix: string): void {
  const steps = all.filter((s) => s.version === version);
  const name = `${prefix}-${version}`;
  const failed = steps.find((s) => s.step === "failed");
  assert.equal(failed, undefined, `a step failed: ${JSON.stringify(failed)}`);
  const s = stepsByName(steps);
  const uid = s.get("create")?.uid;
  assert.equal(typeof uid, "string");
  assert.deepEqual(s.get("get"), { step: "get", length: 32, same: true, algorithm: "AES", bits: 256 });
  assert.deepEqual(s.get("locate"), { step: "locate", ids: [uid], exact: true }, `exactly one id for the name ${name}`);
  const attrs = s.get("get_attributes");
  assert.equal(attrs?.uid, uid);
  assert.deepEqual(attrs?.attributes, { Name: name, "Cryptographic Algorithm": "AES", "Cryptographic Length": 256, State: "ACTIVE", "Object Type": "SYMMETRIC_KEY" });
  assert.deepEqual(s.get("get_attribute_list"), { step: "get_attribute_list", has_state: true, has_name: true });
  assert.deepEqual(s.get("encrypt_decrypt"), { step: "encrypt_decrypt", round_trip: true, ciphertext_length: 48, matches_local: true });
  assert.deepEqual(s.get("sign_verify"), { step: "sign_verify", good: "VALID", bad: "INVALID" });
  assert.ok(s.has("revoke") && s.has("destroy"));
  assert.deepEqual(s.get("locate_after_destroy"), { step: "locate_after_destroy", ids: [] });
}

describe("KMIP with PyKMIP's ProxyKmipClient", { skip: pykmipSkip }, () => {
  let work: string;
  let pki: Pki;
  let server: TestServer;
  let kmipPort: number;
  let admin: Record<string, string>;
  let db: { cert: string; key: string };
  let limited: { cert: string; key: string };
  let unmapped: { cert: string; key: string };
  let reference: Awaited<ReturnType<typeof startPykmipServer>> | undefined;
  let tresorWalk: Step[];
  let referenceWalk: Step[];
  let unmappedSteps: Step[];
  let foreignSteps: Step[];
  let limitedSteps: Step[];

  const cli = (args: string[]) => runCli(args, { cwd: work, env: admin });

  before(async () => {
    requireOpenssl();
    work = await mkdtemp(path.join(tmpdir(), "tresor-kmip-"));
    pki = makePki(work);
    [db, limited, unmapped] = await Promise.all([pki.client("db"), pki.client("limited"), pki.client("unmapped")]);
    server = await startServer({ serveArgs: kmipServeArgs(pki) });
    kmipPort = await kmipPortOf(server);
    admin = { TRESOR_ENDPOINT: server.url, TRESOR_SECRET_ID: server.secretId, TRESOR_SECRET_KEY: server.secretKey };
    // The database's user: every KMIP family, exportable-key Get included; "limited" gets none.
    const policy = path.join(work, "kmip-db.json");
    const actions = ["CreateKey", "RegisterKey", "GetKeyMaterial", "GetPublicKey", "DescribeKey", "ListKeys", "ActivateKey", "RevokeKey", "DestroyKey", "Encrypt", "Decrypt", "SignByAsymmetricKey", "VerifyByAsymmetricKey"];
    await writeFile(policy, JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: actions.map((a) => `name/kms:${a}`), resource: "*" }] }));
    const dbUser = JSON.parse(ok(await cli(["admin", "user", "add", "db", "--no-access-key", "--json"])).stdout) as { Uin: number };
    ok(await cli(["admin", "user", "add", "limited", "--no-access-key"]));
    const { PolicyId } = JSON.parse(ok(await cli(["admin", "policy", "create", "kmip-db", "--file", policy, "--json"])).stdout) as { PolicyId: number };
    ok(await cli(["admin", "policy", "attach", String(PolicyId), "--user", String(dbUser.Uin)]));
    ok(await cli(["admin", "kmip-client", "add", "--user", "db", "--cert", db.cert]));
    ok(await cli(["admin", "kmip-client", "add", "--user", "limited", "--cert", limited.cert]));
    // Both servers walk at once: each walk is a python process that mostly waits.
    reference = await startPykmipServer(pki);
    [tresorWalk, referenceWalk, unmappedSteps, foreignSteps, limitedSteps] = await Promise.all([
      runClient(kmipPort, db, pki.ca, VERSIONS, "full", "tresor-kmip"),
      runClient(reference.port, db, pki.ca, VERSIONS, "full", "reference"),
      runClient(kmipPort, unmapped, pki.ca, ["1.4"], "create", "from-unmapped"),
      pki.foreign().then((foreign) => runClient(kmipPort, foreign, pki.ca, ["1.4"], "create", "from-foreign")),
      runClient(kmipPort, limited, pki.ca, ["2.0"], "create", "from-limited"),
    ]);
  });

  after(async () => {
    await reference?.stop();
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("lists and refuses to map a certificate twice (tresor admin kmip-client)", async () => {
    const list = JSON.parse(ok(await cli(["admin", "kmip-client", "list", "--json"])).stdout) as { KmipClients: { UserName: string; Subject: string; Fingerprint: string }[] };
    // Listed by mapping time, then fingerprint: both were mapped in the same second here, so their order is the fingerprints'.
    assert.deepEqual(list.KmipClients.map((c) => [c.UserName, c.Subject]).sort(), [["db", "CN=db"], ["limited", "CN=limited"]]);
    assert.match(list.KmipClients[0]!.Fingerprint, /^[0-9a-f]{64}$/);
    const again = await cli(["admin", "kmip-client", "add", "--user", "db", "--cert", db.cert]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /mapped already/);
    const notCert = await cli(["admin", "kmip-client", "add", "--user", "db", "--cert", db.key]);
    assert.equal(notCert.code, 2);
  });

  for (const version of VERSIONS) {
    it(`walks the acceptance list at KMIP ${version} against Tresor`, () => assertFullWalk(tresorWalk, version, "tresor-kmip"));
    it(`walks the acceptance list at KMIP ${version} against pykmip-server, the reference`, () => assertFullWalk(referenceWalk, version, "reference"));
  }

  it("answers a certificate mapped to no user with Authentication Not Successful, and changes nothing", async () => {
    assert.deepEqual(unmappedSteps.at(-1)?.error?.reason, "AUTHENTICATION_NOT_SUCCESSFUL", JSON.stringify(unmappedSteps));
    const listed = JSON.parse(ok(await cli(["key", "list", "--json"])).stdout) as { Keys?: unknown[]; TotalCount: number };
    assert.ok(!JSON.stringify(listed).includes("from-unmapped"));
  });

  it("refuses a certificate from another CA in the TLS handshake", async () => {
    const last = foreignSteps.at(-1);
    assert.equal(last?.step, "failed");
    assert.equal(last?.error?.status, "Exception", JSON.stringify(last));
  });

  it("answers a mapped user without the CAM action with Permission Denied", async () => {
    assert.equal(limitedSteps.at(-1)?.error?.reason, "PERMISSION_DENIED", JSON.stringify(limitedSteps.at(-1)));
  });

  it("leaves one audit record for every KMIP operation", async () => {
    const [dbSearch, limitedSearch] = await Promise.all([
      cli(["audit", "search", "--user", "db", "--since", "1h", "--limit", "1000", "--json"]),
      cli(["audit", "search", "--user", "limited", "--since", "1h", "--json"]),
    ]);
    const events = (r: CliResult) => (JSON.parse(ok(r).stdout) as { Events: { EventName: string; ErrorCode: number | string; ResourceTypeCn?: string }[] }).Events;
    const count = new Map<string, number>();
    for (const e of events(dbSearch)) count.set(e.EventName, (count.get(e.EventName) ?? 0) + 1);
    // Each walk at each of the three versions: Get three times (key twice, secret once), Activate three, the rest as the script calls them.
    const expected: Record<string, number> = { KmipCreate: 3, KmipActivate: 9, KmipGet: 9, KmipLocate: 6, KmipGetAttributes: 3, KmipGetAttributeList: 3, KmipEncrypt: 3, KmipDecrypt: 3, KmipRegister: 3, KmipCreateKeyPair: 3, KmipSign: 3, KmipSignatureVerify: 6, KmipRevoke: 3, KmipDestroy: 3 };
    for (const [op, n] of Object.entries(expected)) assert.equal(count.get(op), n, `audit records of ${op}: ${JSON.stringify([...count])}`);
    assert.deepEqual(events(limitedSearch).map((e) => e.EventName), ["KmipCreate"]);
  });
});
