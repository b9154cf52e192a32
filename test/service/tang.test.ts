// Tang servers in the core, on SQLite and on PostgreSQL (TRESOR_TEST_PG_URL): the registry in the
// meta table, names unique across accounts and invisible to other accounts, refusals that change
// nothing, rotation (every version recovers, the newest is advertised), disable and enable, and
// the allowed networks (IPv4, IPv6, IPv4-mapped IPv6). A recovery is checked without the private
// key: for X = k·G, s·X must equal k·(s·G), k times the exchange key's public point.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { p521 } from "@noble/curves/nist.js";
import type { EcPoint } from "../../src/crypto/ecmr.js";
import { p521PointOfSpki } from "../../src/keys/jwk.js";
import { FileRootOfTrust } from "../../src/rootkey/file.js";
import { rootCaller } from "../../src/service/access-control.js";
import { KmsService, type TangServerView } from "../../src/service/kms-service.js";
import { RequestAudit } from "../../src/service/request-audit.js";
import { sourceAllowed } from "../../src/service/tang.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/store.js";
import { ManualClock } from "../api/helpers-inprocess.js";
import { kmsError } from "./fixture.js";
import { seededRandom } from "../helpers/wait.js";
import { postgresSchemaStore } from "../helpers/postgres-schema.js";

interface Backend {
  name: string;
  open(): Promise<{ store: Store; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: "SQLite",
    open: async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "tresor-tang-svc-"));
      const store = await SqliteStore.open(path.join(dir, "tresor.db"));
      return { store, cleanup: async () => (await store.close(), await rm(dir, { recursive: true, force: true })) };
    },
  },
];
const pgUrl = process.env.TRESOR_TEST_PG_URL;
if (pgUrl !== undefined && pgUrl !== "") {
  backends.push({ name: "PostgreSQL", open: () => postgresSchemaStore(pgUrl, "tresor_tang") });
} else if (process.env.CI) {
  it("Tang servers on PostgreSQL need TRESOR_TEST_PG_URL", () => assert.fail("TRESOR_TEST_PG_URL is not set; CI must provide one"));
}

const request = (sourceIp = "127.0.0.1") => ({ sourceIp, audit: new RequestAudit(() => ({ action: "TangRecover" })) });

/** A client point X = k·G with its k, and s·X as the exchange key's public point P = s·G predicts it: k·P. */
function clientPoint(k: bigint): EcPoint {
  const b = p521.Point.BASE.multiply(k).toBytes(false);
  return { x: Buffer.from(b.subarray(1, 67)), y: Buffer.from(b.subarray(67)) };
}
function expected(exchangePublic: EcPoint, k: bigint): EcPoint {
  const p = p521.Point.fromBytes(Buffer.concat([Buffer.of(4), exchangePublic.x, exchangePublic.y]));
  const b = p.multiply(k).toBytes(false);
  return { x: Buffer.from(b.subarray(1, 67)), y: Buffer.from(b.subarray(67)) };
}

for (const backend of backends) {
  describe(`Tang servers on ${backend.name}`, () => {
    it("create, list, describe; names unique across accounts; refusals change nothing", async () => {
      const { store, cleanup } = await backend.open();
      const service = await serviceOn(store);
      try {
        const alice = rootCaller("100000000001");
        const bob = rootCaller("100000000002");
        const created = await service.tang.createTangServer(alice, { name: "rack1", allowedNetworks: ["10.0.0.0/8"] });
        assert.equal(created.state, "Enabled");
        assert.deepEqual(created.allowedNetworks, ["10.0.0.0/8"]);
        assert.equal(created.signingKey.versions.length, 1);
        assert.match(created.signingKey.versions[0]!.thumbprint, /^[A-Za-z0-9_-]{43}$/);
        assert.match(created.signingKey.versions[0]!.thumbprintSha1, /^[A-Za-z0-9_-]{27}$/);
        assert.deepEqual(await service.tang.listTangServers(alice), [created]);
        assert.deepEqual(await service.tang.listTangServers(bob), []);
        await assert.rejects(service.tang.describeTangServer(bob, "rack1"), kmsError("TangServerNotFound"));
        const keys = await store.countKeys();
        await assert.rejects(service.tang.createTangServer(bob, { name: "rack1", allowedNetworks: [] }), kmsError("TangServerNameInUse"));
        await assert.rejects(service.tang.createTangServer(alice, { name: "bad name", allowedNetworks: [] }), kmsError("InvalidParameterValue"));
        await assert.rejects(service.tang.createTangServer(alice, { name: "rack9", allowedNetworks: ["10.0.0.0/33"] }), kmsError("InvalidParameterValue"));
        await assert.rejects(service.tang.updateTangServer(alice, "rack1", ["not-a-network"]), kmsError("InvalidParameterValue"));
        assert.equal(await store.countKeys(), keys, "no key was made by a refused request");
        assert.deepEqual(await service.tang.describeTangServer(alice, "rack1"), created);
        // Two creations of one name at once: exactly one wins.
        const results = await Promise.allSettled([alice, bob].map((c) => service.tang.createTangServer(c, { name: "raced", allowedNetworks: [] })));
        assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
        // Two names at once: the registry is one entry, rewritten by both; neither is lost.
        await Promise.all(["left", "right"].map((name) => service.tang.createTangServer(alice, { name, allowedNetworks: [] })));
        assert.deepEqual((await service.tang.listTangServers(alice)).map((v) => v.name), ["left", "raced", "rack1", "right"].filter((n) => n !== "raced" || results[0]!.status === "fulfilled"));
      } finally {
        service.close();
        await cleanup();
      }
    });

    it("recovers with every version after rotation, advertises the newest, refuses while disabled and from other networks", async () => {
      const { store, cleanup } = await backend.open();
      const service = await serviceOn(store);
      const random = seededRandom("tang-service");
      try {
        const caller = rootCaller("100000000001");
        await service.tang.createTangServer(caller, { name: "rack1", allowedNetworks: ["10.0.0.0/8", "fd00::/8"] });
        const rotated: TangServerView = await service.tang.rotateTangServer(caller, "rack1");
        assert.deepEqual(rotated.exchangeKey.versions.map((v) => [v.version, v.advertised]), [[1, false], [2, true]]);
        const versions = await store.listKeyVersions(rotated.exchangeKey.keyId);
        for (const [i, v] of rotated.exchangeKey.versions.entries()) {
          const k = BigInt(Math.floor(random.next() * 2 ** 48)) + 2n;
          const got = await service.tang.recover(request("10.1.2.3"), "rack1", v.thumbprint, clientPoint(k));
          assert.deepEqual(got, expected(p521PointOfSpki(versions[i]!.publicKey!), k), `version ${v.version}`);
          // The SHA-1 thumbprint names the same version (older clevis).
          assert.deepEqual(await service.tang.recover(request("::ffff:10.9.9.9"), "rack1", v.thumbprintSha1, clientPoint(k)), got);
        }
        const jws = await service.tang.advertise(request(), "rack1", undefined);
        const keys = JSON.parse(Buffer.from(jws.payload as string, "base64url").toString("utf8")).keys as { x: string }[];
        const signingCurrent = await store.getKeyVersion(rotated.signingKey.keyId, 2);
        const advertisedX = [signingCurrent!.publicKey!, versions[1]!.publicKey!].map((spki) => p521PointOfSpki(spki).x.toString("base64url"));
        assert.deepEqual(keys.map((k) => k.x), advertisedX, "the newest signing and exchange keys");
        // Pinning the old signing key adds its signature, as tangd does.
        const pinned = await service.tang.advertise(request(), "rack1", rotated.signingKey.versions[0]!.thumbprint);
        assert.equal((pinned.signatures as unknown[]).length, 2);

        const kid = rotated.exchangeKey.versions[1]!.thumbprint;
        await assert.rejects(service.tang.recover(request("192.168.1.1"), "rack1", kid, clientPoint(5n)), kmsError("UnauthorizedOperation"));
        await assert.rejects(service.tang.recover(request("fe80::1"), "rack1", kid, clientPoint(5n)), kmsError("UnauthorizedOperation"));
        await service.tang.recover(request("fd00::1"), "rack1", kid, clientPoint(5n));
        await service.tang.setTangServerState(caller, "rack1", "DisableKey");
        assert.equal((await service.tang.describeTangServer(caller, "rack1")).state, "Disabled");
        await assert.rejects(service.tang.recover(request("10.1.2.3"), "rack1", kid, clientPoint(5n)), kmsError("CmkDisabled"));
        await assert.rejects(service.tang.advertise(request(), "rack1", undefined), kmsError("CmkDisabled"));
        await assert.rejects(service.tang.rotateTangServer(caller, "rack1"), kmsError("CmkDisabled"));
        await service.tang.setTangServerState(caller, "rack1", "EnableKey");
        await service.tang.recover(request("10.1.2.3"), "rack1", kid, clientPoint(5n));
        await assert.rejects(service.tang.recover(request("10.1.2.3"), "rack1", "AAAA", clientPoint(5n)), kmsError("TangKeyNotFound"));
        await assert.rejects(service.tang.recover(request("10.1.2.3"), "nope", kid, clientPoint(5n)), kmsError("TangServerNotFound"));
      } finally {
        service.close();
        await cleanup();
      }
    });
  });
}

const rootDirs: string[] = [];
after(async () => {
  for (const dir of rootDirs) await rm(dir, { recursive: true, force: true });
});

async function serviceOn(store: Store): Promise<KmsService> {
  const dir = await mkdtemp(path.join(tmpdir(), "tresor-tang-root-"));
  rootDirs.push(dir);
  const rootOfTrust = await FileRootOfTrust.create(path.join(dir, "root.key"));
  return new KmsService({ store, rootOfTrust, clock: new ManualClock(Date.UTC(2026, 0, 1)), region: "local", defaultKeySpec: "SM4", cmkLimit: 100 });
}

describe("sourceAllowed", () => {
  it("matches IPv4, IPv6 and IPv4-mapped addresses against CIDR blocks; no blocks: any source", () => {
    assert.equal(sourceAllowed([], "203.0.113.9"), true);
    assert.equal(sourceAllowed(["10.0.0.0/8"], "10.255.0.1"), true);
    assert.equal(sourceAllowed(["10.0.0.0/8"], "::ffff:10.0.0.1"), true);
    assert.equal(sourceAllowed(["10.0.0.0/8"], "11.0.0.1"), false);
    assert.equal(sourceAllowed(["fd00::/8"], "fd12::1"), true);
    assert.equal(sourceAllowed(["fd00::/8"], "10.0.0.1"), false);
    assert.equal(sourceAllowed(["127.0.0.1/32"], "not an address"), false);
  });
});
