// Tang servers of ProtectionLevel HSM over a real SoftHSM2 token: both keys are token objects (the
// store keeps references), the advertisement's ES512 signature verifies, and recoveries, made from
// two ECDH derivations in the token (PKCS#11 gives only x), equal k·P for X = k·G, for every
// version after rotation.

import assert from "node:assert/strict";
import { createPublicKey, verify } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { p521 } from "@noble/curves/nist.js";
import type { EcPoint } from "../../src/crypto/ecmr.js";
import { p521PointOfSpki } from "../../src/keys/jwk.js";
import { Pkcs11RootOfTrust } from "../../src/rootkey/pkcs11.js";
import { rootCaller } from "../../src/service/access-control.js";
import { KmsService } from "../../src/service/kms-service.js";
import { RequestAudit } from "../../src/service/request-audit.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { ManualClock } from "../api/helpers-inprocess.js";
import { SoftHsm, softhsmSkip, type TestToken } from "../helpers/softhsm.js";

const caller = rootCaller("100000000001");
const request = () => ({ sourceIp: "127.0.0.1", audit: new RequestAudit(() => ({ action: "TangRecover" })) });
const affine = (bytes: Uint8Array): EcPoint => ({ x: Buffer.from(bytes.subarray(1, 67)), y: Buffer.from(bytes.subarray(67)) });

describe("Tang servers in an HSM (SoftHSM2)", { skip: softhsmSkip }, () => {
  let hsm: SoftHsm;
  let token: TestToken;
  let dir: string;
  let root: Pkcs11RootOfTrust;
  let store: SqliteStore;
  let service: KmsService;

  before(async () => {
    hsm = await SoftHsm.create();
    token = await hsm.initToken("tresor-tang-hsm");
    dir = await mkdtemp(path.join(tmpdir(), "tresor-tang-hsm-"));
    root = await Pkcs11RootOfTrust.create({ module: hsm.module, tokenLabel: token.label, pin: token.pin, keyLabel: "tresor-root" });
    store = await SqliteStore.open(path.join(dir, "tresor.db"));
    service = new KmsService({ store, rootOfTrust: root, clock: new ManualClock(Date.UTC(2026, 0, 15)), region: "local", defaultKeySpec: "SM4", cmkLimit: 100 });
  });
  after(async () => {
    service?.close();
    await store?.close();
    await root?.close();
    await rm(dir, { recursive: true, force: true });
    await hsm?.remove();
  });

  it("keeps both keys in the token, signs the advertisement there and recovers with every version", async () => {
    const created = await service.tang.createTangServer(caller, { name: "vault", allowedNetworks: [], protectionLevel: "HSM" });
    assert.equal(created.protectionLevel, "HSM");
    const rotated = await service.tang.rotateTangServer(caller, "vault");
    for (const key of [rotated.signingKey, rotated.exchangeKey]) {
      for (const v of await store.listKeyVersions(key.keyId)) assert.equal(v.wrappedMaterial[0], 0x48, "a token object reference, not material");
    }

    const jws = await service.tang.advertise(request(), "vault", undefined);
    const signingPublic = (await store.getKeyVersion(rotated.signingKey.keyId, 2))!.publicKey!;
    const signature = Buffer.from(jws.signature as string, "base64url");
    const signingInput = Buffer.from(`${jws.protected as string}.${jws.payload as string}`);
    assert.ok(verify("sha512", signingInput, { key: createPublicKey({ key: signingPublic, format: "der", type: "spki" }), dsaEncoding: "ieee-p1363" }, signature));

    const exchangeVersions = await store.listKeyVersions(rotated.exchangeKey.keyId);
    for (const [i, v] of rotated.exchangeKey.versions.entries()) {
      for (const k of [7n, 123456789n]) {
        const got = await service.tang.recover(request(), "vault", v.thumbprint, affine(p521.Point.BASE.multiply(k).toBytes(false)));
        const publicPoint = p521PointOfSpki(exchangeVersions[i]!.publicKey!);
        const expected = affine(p521.Point.fromBytes(Buffer.concat([Buffer.of(4), publicPoint.x, publicPoint.y])).multiply(k).toBytes(false));
        assert.deepEqual(got, expected, `version ${v.version}, k = ${k}`);
      }
    }
  });
});
