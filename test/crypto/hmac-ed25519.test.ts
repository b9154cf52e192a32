// HMAC keys against RFC 4231 (SHA-2) and, for SM3, against the vetted hmacSm3 and the openssl
// command line; Ed25519 against RFC 8032 section 7.1 and `openssl pkeyutl` both ways.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { ed25519GenerateKeyPairAsync, ed25519PrivateKey, ed25519PublicKeyFromSpki, ed25519Sign, ed25519Verify } from "../../src/crypto/ed25519.js";
import { HmacKey, type HmacHash } from "../../src/crypto/hmac.js";
import { hmacSm3 } from "../../src/crypto/sm3.js";
import { publicKeyPem } from "../../src/keys/asymmetric.js";
import { opensslSkip, requireOpenssl } from "../helpers/openssl.js";

const vectors = (name: string) => JSON.parse(readFileSync(new URL(`../../../test/vectors/${name}`, import.meta.url), "utf8"));
const rfc4231 = vectors("rfc4231-hmac-sha2.json") as { vectors: Record<string, string>[] };
const rfc8032 = vectors("rfc8032-ed25519.json") as { vectors: { name: string; secretKey: string; publicKey: string; message: string; signature: string }[] };
const hex = (s: string) => Buffer.from(s, "hex");
/** PKCS#8 and SPKI prefixes of an Ed25519 key (RFC 8410 section 7), before the 32 raw bytes. */
const PKCS8_PREFIX = hex("302e020100300506032b657004220420");
const SPKI_PREFIX = hex("302a300506032b6570032100");

const dir = mkdtempSync(path.join(tmpdir(), "tresor-ed25519-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("HmacKey", () => {
  for (const v of rfc4231.vectors) {
    for (const hash of ["sha256", "sha384", "sha512"] as const) {
      it(`reproduces RFC 4231 test case ${v.case} with ${hash}`, () => {
        const key = new HmacKey(hash, hex(v.key!));
        assert.equal(key.mac(hex(v.data!)).toString("hex"), v[hash]);
        assert.equal(key.verify(hex(v.data!), hex(v[hash]!)), true);
      });
    }
  }

  it("computes HMAC-SM3 as hmacSm3 (vetted against GB/T 32905, sm-crypto and openssl) does", () => {
    for (const length of [32, 64, 100]) {
      const secret = randomBytes(32);
      const data = randomBytes(length);
      assert.deepEqual(new HmacKey("sm3", secret).mac(data), hmacSm3(secret, data));
    }
  });

  it("agrees with `openssl mac` for every hash", { skip: opensslSkip }, () => {
    requireOpenssl();
    for (const [hash, name] of [["sha256", "SHA256"], ["sha384", "SHA384"], ["sha512", "SHA512"], ["sm3", "SM3"]] as [HmacHash, string][]) {
      const secret = randomBytes(32);
      const data = randomBytes(200);
      const file = path.join(dir, `mac-${hash}`);
      writeFileSync(file, data);
      const out = execFileSync("openssl", ["mac", "-digest", name, "-macopt", `hexkey:${secret.toString("hex")}`, "-in", file, "HMAC"], { encoding: "utf8" });
      assert.equal(new HmacKey(hash, secret).mac(data).toString("hex"), out.trim().toLowerCase(), hash);
    }
  });

  it("refuses every altered or truncated MAC, and any after destroy()", () => {
    const key = new HmacKey("sha256", randomBytes(32));
    const data = Buffer.from("message");
    const mac = key.mac(data);
    for (let i = 0; i < mac.length; i++) {
      const bad = Buffer.from(mac);
      bad[i]! ^= 0x01;
      assert.equal(key.verify(data, bad), false, `byte ${i}`);
    }
    assert.equal(key.verify(data, mac.subarray(0, 31)), false);
    assert.equal(key.verify(Buffer.from("messagf"), mac), false);
    key.destroy();
    assert.throws(() => key.mac(data), /after destroy/);
  });
});

describe("Ed25519", () => {
  for (const v of rfc8032.vectors) {
    it(`reproduces RFC 8032 ${v.name}`, () => {
      const privateKey = ed25519PrivateKey(Buffer.concat([PKCS8_PREFIX, hex(v.secretKey)]));
      assert.equal(ed25519Sign(privateKey, hex(v.message)).toString("hex"), v.signature);
      const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
      assert.deepEqual(spki, Buffer.concat([SPKI_PREFIX, hex(v.publicKey)]));
      assert.equal(ed25519Verify(ed25519PublicKeyFromSpki(spki), hex(v.message), hex(v.signature)), true);
    });
  }

  it("refuses every altered signature byte, a short one and another message", () => {
    const v = rfc8032.vectors[1]!;
    const publicKey = ed25519PublicKeyFromSpki(Buffer.concat([SPKI_PREFIX, hex(v.publicKey)]));
    for (let i = 0; i < 64; i++) {
      const bad = hex(v.signature);
      bad[i]! ^= 0x80;
      assert.equal(ed25519Verify(publicKey, hex(v.message), bad), false, `byte ${i}`);
    }
    assert.equal(ed25519Verify(publicKey, hex(v.message), hex(v.signature).subarray(0, 63)), false);
    assert.equal(ed25519Verify(publicKey, hex("73"), hex(v.signature)), false);
  });

  it("signs what `openssl pkeyutl -verify -rawin` accepts, and verifies what openssl signed", { skip: opensslSkip }, async () => {
    requireOpenssl();
    const pair = await ed25519GenerateKeyPairAsync();
    const message = randomBytes(300);
    writeFileSync(path.join(dir, "msg"), message);
    writeFileSync(path.join(dir, "pub.pem"), publicKeyPem(pair.publicKey));
    writeFileSync(path.join(dir, "sig"), ed25519Sign(ed25519PrivateKey(pair.privateKey), message));
    const ok = execFileSync("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", path.join(dir, "pub.pem"), "-rawin", "-in", path.join(dir, "msg"), "-sigfile", path.join(dir, "sig")], {
      encoding: "utf8",
    });
    assert.match(ok, /Signature Verified Successfully/);
    execFileSync("openssl", ["genpkey", "-algorithm", "ed25519", "-out", path.join(dir, "key.pem")]);
    const theirs = execFileSync("openssl", ["pkeyutl", "-sign", "-inkey", path.join(dir, "key.pem"), "-rawin", "-in", path.join(dir, "msg")]);
    const theirPublic = createPublicKey(createPrivateKey(readFileSync(path.join(dir, "key.pem")))).export({ format: "der", type: "spki" });
    assert.equal(ed25519Verify(ed25519PublicKeyFromSpki(theirPublic), message, theirs), true);
  });
});
