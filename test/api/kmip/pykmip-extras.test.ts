// More of KMIP with PyKMIP's ProxyKmipClient, against Tresor and against pykmip-server as the
// reference: Register and Get of an X.509 certificate, and a wrapped Get (Key Wrapping
// Specification, KMIP 1.4 §2.1.6) with NIST Key Wrap under another Active key whose usage mask has
// Wrap Key, which the client unwraps with python3-cryptography; a wrapping key without Wrap Key is
// refused with Permission Denied, as the reference refuses it. And, against Tresor only (the
// reference has no ReKey), ReKey with an Offset, and KMIP 2.0's Set Attribute as PyKMIP sends it.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { requireOpenssl } from "../../helpers/openssl.js";
import { runCli, startServer, type TestServer } from "../../helpers/server.js";
import { grantKmip, kmipPortOf, kmipServeArgs, makePki, pykmipSkip, runClient, startPykmipServer, type KmipVersion, type Step } from "./fixture.js";

const VERSIONS: readonly KmipVersion[] = ["1.2", "1.4", "2.0"];

function stepOf(all: Step[], version: KmipVersion, step: string): Record<string, unknown> | undefined {
  const failed = all.find((s) => s.version === version && s.step === "failed");
  assert.equal(failed, undefined, `a step failed at ${version}: ${JSON.stringify(failed)}`);
  const found = all.find((s) => s.version === version && s.step === step);
  if (!found) return undefined;
  const { version: _v, step: _s, ...fields } = found;
  return fields;
}

describe("KMIP certificates and wrapped Get with PyKMIP", { skip: pykmipSkip }, () => {
  let work: string;
  let server: TestServer;
  let reference: Awaited<ReturnType<typeof startPykmipServer>> | undefined;
  const walks: Record<"Tresor" | "pykmip-server", Step[]> = { Tresor: [], "pykmip-server": [] };
  let rekeyWalk: Step[] = [];

  before(async () => {
    requireOpenssl();
    work = await mkdtemp(path.join(tmpdir(), "tresor-kmip-extras-"));
    const pki = makePki(work);
    const client = await pki.client("extras");
    server = await startServer({ serveArgs: kmipServeArgs(pki) });
    await grantKmip((args) => runCli(args, { env: { TRESOR_ENDPOINT: server.url, TRESOR_SECRET_ID: server.secretId, TRESOR_SECRET_KEY: server.secretKey } }), work, "extras", client.cert);
    reference = await startPykmipServer(pki);
    const port = await kmipPortOf(server);
    // pykmip-server has no ReKey, and keeps the usage mask from clients' Set Attribute: Tresor only.
    [walks.Tresor, walks["pykmip-server"], rekeyWalk] = await Promise.all([
      runClient(port, client, pki.ca, VERSIONS, "extras", "extras"),
      runClient(reference.port, client, pki.ca, VERSIONS, "extras", "extras"),
      runClient(port, client, pki.ca, VERSIONS, "rekey", "rekeyed"),
    ]);
  });

  after(async () => {
    await reference?.stop();
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const version of VERSIONS) {
    it(`re-keys with an Offset: a Pre-Active replacement an hour ahead, with the Name, at KMIP ${version} (Tresor)`, () => {
      assert.deepEqual(stepOf(rekeyWalk, version, "rekey"), {
        differs: true,
        state: "PRE_ACTIVE",
        name: `rekeyed-${version}`,
        offset: 3600,
      });
      assert.deepEqual(stepOf(rekeyWalk, version, "set_attribute"), version === "2.0" ? { mask: 4 } : undefined);
    });

    for (const against of ["Tresor", "pykmip-server"] as const) {
      it(`registers an X.509 certificate and gets the same DER back, at KMIP ${version}, against ${against}`, () => {
        assert.deepEqual(stepOf(walks[against], version, "certificate"), { kind: "X509Certificate", same: true });
      });

      it(`gets a key wrapped with NIST Key Wrap that unwraps to the key, at KMIP ${version}, against ${against}`, () => {
        // RFC 3394: 32 bytes of key wrap to 40.
        assert.deepEqual(stepOf(walks[against], version, "wrapped_get"), { length: 40, differs: true, unwraps: true, method: "ENCRYPT", encoding: "NO_ENCODING", wrapping_uid: true });
      });

      it(`refuses a wrapping key without Wrap Key in its usage mask, at KMIP ${version}, against ${against}`, () => {
        assert.deepEqual(stepOf(walks[against], version, "wrap_without_mask"), { refused: true, reason: "PERMISSION_DENIED" });
      });
    }
  }
});
