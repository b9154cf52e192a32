// Pkcs11RootOfTrust against a real SoftHSM2: the shared contract, plus what is particular to a key
// inside a token (non-extractability, login, labels, a token that goes away and comes back).

import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { inspect } from "node:util";
import { Pkcs11Error, Pkcs11RootOfTrust, readPin, type Pkcs11Config } from "../../src/rootkey/pkcs11.js";
import { keyMaterialAad, RootOfTrustError, RootOfTrustUnavailableError } from "../../src/rootkey/root-of-trust.js";
import { SoftHsm, softhsmSkip, type TestToken } from "../helpers/softhsm.js";
import { rootOfTrustContract } from "./root-of-trust-contract.js";

// The module is re-initialised at most once a second while a token is missing.
const REINITIALIZE_WAIT_MS = 1100;

let shared: Promise<{ hsm: SoftHsm; token: TestToken }> | undefined;
function softhsm(): Promise<{ hsm: SoftHsm; token: TestToken }> {
  shared ??= (async () => {
    const hsm = await SoftHsm.create();
    return { hsm, token: await hsm.initToken("tresor-contract") };
  })();
  return shared;
}
after(async () => {
  const created = await shared?.catch(() => undefined);
  await created?.hsm.remove();
});

let labels = 0;
function keyLabel(prefix = "root"): string {
  return `${prefix}-${process.pid}-${labels++}`;
}

function configFor(hsm: SoftHsm, token: TestToken, label: string): Pkcs11Config {
  return { module: hsm.module, tokenLabel: token.label, pin: token.pin, keyLabel: label };
}

const aad = keyMaterialAad("0b8f2a1e-6c3d-4e5f-9a7b-1c2d3e4f5a6b", 3);
const secret = Buffer.from("a 32-byte data key, for example!");

if (softhsmSkip === false) {
  rootOfTrustContract("Pkcs11RootOfTrust (SoftHSM2)", async () => {
    const { hsm, token } = await softhsm();
    const config = configFor(hsm, token, keyLabel());
    let rot = await Pkcs11RootOfTrust.create(config);
    return {
      rot,
      reopen: async () => {
        await rot.close();
        rot = await Pkcs11RootOfTrust.open(config);
        return rot;
      },
      cleanup: () => rot.close(),
    };
  });
} else {
  it("RootOfTrust contract: Pkcs11RootOfTrust (SoftHSM2)", { skip: softhsmSkip }, () => undefined);
}

describe("Pkcs11RootOfTrust", { skip: softhsmSkip }, () => {
  it("creates a sensitive, never-extractable AES-256 key whose value the token refuses to reveal", async () => {
    const { hsm, token } = await softhsm();
    const label = keyLabel();
    const rot = await Pkcs11RootOfTrust.create(configFor(hsm, token, label));
    try {
      const report = await hsm.inspectKey(token, label);
      assert.equal(report.found, 1);
      assert.equal(report.value, "CKR_ATTRIBUTE_SENSITIVE", "reading CKA_VALUE must fail");
      assert.equal(report.sensitive, true);
      assert.equal(report.extractable, false);
      assert.equal(report.alwaysSensitive, true);
      assert.equal(report.neverExtractable, true);
      assert.equal(report.id?.length, 32, "a 16-byte CKA_ID");
      // A second key gets another CKA_ID.
      const other = keyLabel();
      const second = await Pkcs11RootOfTrust.create(configFor(hsm, token, other));
      assert.notEqual((await hsm.inspectKey(token, other)).id, report.id);
      await assert.rejects(second.unwrap(await rot.wrap(secret, aad), aad), RootOfTrustError, "another key cannot unwrap");
      await second.close();
    } finally {
      await rot.close();
    }
  });

  it("lays out a wrapped value as 0x02 || iv(12) || ciphertext || tag(16) and never shows the plaintext", async () => {
    const { hsm, token } = await softhsm();
    const rot = await Pkcs11RootOfTrust.create(configFor(hsm, token, keyLabel()));
    try {
      for (let i = 0; i < 64; i++) {
        const wrapped = await rot.wrap(secret, aad);
        assert.equal(wrapped[0], 0x02);
        assert.equal(wrapped.length, 1 + 12 + secret.length + 16);
        assert.equal(wrapped.includes(secret), false);
        assert.equal(wrapped.includes(secret.subarray(0, 8)), false);
      }
      assert.equal((await rot.wrap(Buffer.alloc(0), aad)).length, 29);
      // A file root of trust's value (0x01) is refused before it reaches the token.
      const wrapped = await rot.wrap(secret, aad);
      wrapped[0] = 0x01;
      await assert.rejects(rot.unwrap(wrapped, aad), RootOfTrustError);
    } finally {
      await rot.close();
    }
  });

  it("describes itself as pkcs11:<token>/<key> and never shows the PIN", async () => {
    const { hsm, token } = await softhsm();
    const label = keyLabel();
    const rot = await Pkcs11RootOfTrust.create(configFor(hsm, token, label));
    try {
      assert.equal(rot.description, `pkcs11:${token.label}/${label}`);
      const shown = [rot.description, inspect(rot, { showHidden: true, depth: Infinity }), JSON.stringify({ rot }), String(rot), Object.keys(rot).join()];
      for (const text of shown) assert.equal(text.includes(token.pin), false, text);
      assert.deepEqual(JSON.parse(JSON.stringify({ rot })), { rot: { description: rot.description } });
    } finally {
      await rot.close();
    }
  });

  it("opens by slot number too, and refuses a slot whose token has another label", async () => {
    const { hsm, token } = await softhsm();
    const label = keyLabel();
    const created = await Pkcs11RootOfTrust.create(configFor(hsm, token, label));
    const wrapped = await created.wrap(secret, aad);
    await created.close();
    const bySlot = await Pkcs11RootOfTrust.open({ module: hsm.module, slot: token.slot, pin: token.pin, keyLabel: label });
    assert.deepEqual(await bySlot.unwrap(wrapped, aad), secret);
    assert.equal(bySlot.description, `pkcs11:${token.label}/${label}`);
    await bySlot.close();
    await assert.rejects(
      Pkcs11RootOfTrust.open({ module: hsm.module, slot: token.slot, tokenLabel: "another", pin: token.pin, keyLabel: label }),
      /labelled "tresor-contract", not "another"/,
    );
    await assert.rejects(Pkcs11RootOfTrust.open({ module: hsm.module, slot: 424242, pin: token.pin, keyLabel: label }), /no token present in slot 424242/);
  });

  it("refuses a wrong PIN with the CKR code and the function, never the PIN", async () => {
    const { hsm, token } = await softhsm();
    const label = keyLabel();
    await (await Pkcs11RootOfTrust.create(configFor(hsm, token, label))).close();
    const wrongPin = "wrong-pin-97531";
    for (const attempt of [Pkcs11RootOfTrust.open, Pkcs11RootOfTrust.create]) {
      await assert.rejects(attempt({ ...configFor(hsm, token, label), pin: wrongPin }), (err: unknown) => {
        assert.ok(err instanceof Pkcs11Error);
        assert.equal(err.ckr, "CKR_PIN_INCORRECT");
        assert.equal(err.fn, "C_Login");
        assert.equal(err.code, 0xa0);
        assert.match(err.message, /cannot log in to token "tresor-contract": C_Login returned CKR_PIN_INCORRECT/);
        for (const text of [err.message, String(err.stack), inspect(err, { showHidden: true, depth: Infinity }), JSON.stringify(err)]) {
          assert.equal(text.includes(wrongPin), false, text);
          assert.equal(text.includes(token.pin), false, text);
        }
        return true;
      });
    }
  });

  it("refuses a missing token label, naming it and the tokens present", async () => {
    const { hsm, token } = await softhsm();
    await assert.rejects(Pkcs11RootOfTrust.open({ ...configFor(hsm, token, "root"), tokenLabel: "no-such-token" }), (err: Error) => {
      assert.match(err.message, /no token labelled "no-such-token"/);
      assert.ok(err.message.includes('"tresor-contract"'), err.message);
      assert.equal(err.message.includes(token.pin), false);
      return true;
    });
  });

  it("refuses to open a label with no key, and to create over an existing one", async () => {
    const { hsm, token } = await softhsm();
    const label = keyLabel();
    await assert.rejects(Pkcs11RootOfTrust.open(configFor(hsm, token, label)), new RegExp(`no secret key labelled "${label}" on token "tresor-contract"`));
    const first = await Pkcs11RootOfTrust.create(configFor(hsm, token, label));
    const wrapped = await first.wrap(secret, aad);
    await assert.rejects(Pkcs11RootOfTrust.create(configFor(hsm, token, label)), /already holds a secret key labelled/);
    assert.equal((await hsm.inspectKey(token, label)).found, 1, "no second key was made");
    assert.deepEqual(await first.unwrap(wrapped, aad), secret, "the existing key still works");
    await first.close();
  });

  it("refuses a key that is extractable or not sensitive, and a label held by several keys", async () => {
    const { hsm, token } = await softhsm();
    const extractable = keyLabel("extractable");
    await hsm.createKeyByHand(token, extractable, { sensitive: true, extractable: true });
    await assert.rejects(Pkcs11RootOfTrust.open(configFor(hsm, token, extractable)), /refusing key ".*" on token "tresor-contract" as the root key: it is extractable/);

    const plain = keyLabel("not-sensitive");
    await hsm.createKeyByHand(token, plain, { sensitive: false, extractable: false });
    await assert.rejects(Pkcs11RootOfTrust.open(configFor(hsm, token, plain)), /is not sensitive/);

    const twice = keyLabel("twice");
    await hsm.createKeyByHand(token, twice, { sensitive: true, extractable: false });
    await hsm.createKeyByHand(token, twice, { sensitive: true, extractable: false });
    await assert.rejects(Pkcs11RootOfTrust.open(configFor(hsm, token, twice)), /2 secret keys are labelled .* refusing to guess/);
  });

  it("refuses a bad config, naming the parameter", async () => {
    const { hsm, token } = await softhsm();
    const good = configFor(hsm, token, "root");
    const { tokenLabel: _ignored, ...noToken } = good;
    await assert.rejects(Pkcs11RootOfTrust.open(noToken), /one of "tokenLabel" and "slot" is required/);
    await assert.rejects(Pkcs11RootOfTrust.open({ ...good, pin: "" }), /"pin" must be a non-empty string/);
    await assert.rejects(Pkcs11RootOfTrust.open({ ...good, keyLabel: "" }), /"keyLabel"/);
    await assert.rejects(Pkcs11RootOfTrust.open({ ...good, tokenLabel: "x".repeat(33) }), /"tokenLabel" must be at most 32 bytes/);
    await assert.rejects(Pkcs11RootOfTrust.open({ ...good, slot: -1 }), /"slot"/);
    await assert.rejects(Pkcs11RootOfTrust.open({ ...good, module: join(tmpdir(), "no-such-module.so") }), /cannot load the PKCS#11 module/);
  });

  it("serves many concurrent wraps and unwraps correctly", async () => {
    const { hsm, token } = await softhsm();
    const rot = await Pkcs11RootOfTrust.create(configFor(hsm, token, keyLabel()));
    try {
      const inputs = Array.from({ length: 200 }, (_, i) => Buffer.from(`secret number ${i}`));
      const wrapped = await Promise.all(inputs.map((input, i) => rot.wrap(input, keyMaterialAad("k", i))));
      const unwrapped = await Promise.all(wrapped.map((w, i) => rot.unwrap(w, keyMaterialAad("k", i))));
      assert.deepEqual(unwrapped, inputs);
    } finally {
      await rot.close();
    }
  });

  it("fails fast with RootOfTrustUnavailableError while its token is gone, and recovers when it returns", async (t) => {
    const { hsm, token: bystanderToken } = await softhsm();
    const token = await hsm.initToken("tresor-removable");
    const rot = await Pkcs11RootOfTrust.create(configFor(hsm, token, "root"));
    // Another root of trust on the same module, whose token stays: it must ride through the module
    // re-initialisations the first one triggers.
    const bystander = await Pkcs11RootOfTrust.create(configFor(hsm, bystanderToken, keyLabel("bystander")));
    const before = await rot.wrap(secret, aad);
    const bystanderWrapped = await bystander.wrap(secret, aad);

    async function assertUnavailable(what: string, attempt: () => Promise<unknown>): Promise<void> {
      const started = performance.now();
      await assert.rejects(attempt(), (err: unknown) => {
        assert.ok(err instanceof RootOfTrustUnavailableError, `${what}: ${String(err)}`);
        assert.ok(!(err instanceof RootOfTrustError), "unavailability says nothing about the wrapped value");
        assert.ok(err.message.includes(rot.description), err.message);
        assert.equal(err.message.includes(token.pin), false);
        return true;
      });
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 250, `${what} took ${elapsed.toFixed(1)} ms`);
    }

    try {
      // 1. The token's storage disappears: SoftHSM2 invalidates the key handle.
      let restore = await hsm.removeToken(token);
      await assertUnavailable("wrap after removal", () => rot.wrap(secret, aad));
      await assertUnavailable("unwrap after removal", () => rot.unwrap(before, aad));
      for (let i = 0; i < 20; i++) await assertUnavailable(`call ${i} while removed`, () => rot.wrap(secret, aad));
      assert.deepEqual(await bystander.unwrap(bystanderWrapped, aad), secret, "the other token still works");
      await sleep(REINITIALIZE_WAIT_MS);
      await assertUnavailable("after a module re-initialisation without the token", () => rot.wrap(secret, aad));
      assert.deepEqual(await bystander.unwrap(bystanderWrapped, aad), secret, "the other token works after the re-initialisation");

      // 2. It returns: SoftHSM2 sees it again only after C_Finalize/C_Initialize, which the next call
      // past the re-initialisation interval does.
      await restore();
      await sleep(REINITIALIZE_WAIT_MS);
      assert.deepEqual(await rot.unwrap(before, aad), secret, "recovered: the old value unwraps");
      assert.deepEqual(await rot.unwrap(await rot.wrap(secret, aad), aad), secret);
      assert.deepEqual(await bystander.unwrap(bystanderWrapped, aad), secret);

      // 3. The module itself fails to initialise (its configuration is gone) while the token is away.
      restore = await hsm.removeToken(token);
      await assertUnavailable("wrap after the second removal", () => rot.wrap(secret, aad));
      process.env.SOFTHSM2_CONF = join(hsm.dir, "missing.conf");
      await sleep(REINITIALIZE_WAIT_MS);
      await assertUnavailable("with the module failing C_Initialize", () => rot.wrap(secret, aad));
      await assertUnavailable("again within the interval", () => rot.unwrap(before, aad));
      await assert.rejects(bystander.wrap(secret, aad), RootOfTrustUnavailableError, "an uninitialised module is unavailable for everyone");
      process.env.SOFTHSM2_CONF = hsm.conf;
      await restore();
      await sleep(REINITIALIZE_WAIT_MS);
      assert.deepEqual(await rot.unwrap(before, aad), secret, "recovered from a failing module");
      assert.deepEqual(await bystander.unwrap(bystanderWrapped, aad), secret, "the other one recovered too");
      t.diagnostic("SoftHSM2 shows a removed token as CKR_OBJECT_HANDLE_INVALID on the key and sees it again only after C_Finalize/C_Initialize");
    } finally {
      process.env.SOFTHSM2_CONF = hsm.conf;
      await rot.close();
      await bystander.close();
    }
  });

  it("reports its throughput (32-byte wraps and unwraps per second)", async (t) => {
    const { hsm, token } = await softhsm();
    const rot = await Pkcs11RootOfTrust.create(configFor(hsm, token, keyLabel()));
    try {
      const input = Buffer.alloc(32, 7);
      const measure = async (op: () => Promise<unknown>): Promise<{ perSecond: number; slowestMs: number }> => {
        let count = 0;
        let slowest = 0;
        const started = performance.now();
        while (performance.now() - started < 500) {
          const t0 = performance.now();
          await op();
          slowest = Math.max(slowest, performance.now() - t0);
          count++;
        }
        return { perSecond: Math.round(count / ((performance.now() - started) / 1000)), slowestMs: slowest };
      };
      const wraps = await measure(() => rot.wrap(input, aad));
      const wrapped = await rot.wrap(input, aad);
      const unwraps = await measure(() => rot.unwrap(wrapped, aad));
      t.diagnostic(`SoftHSM2 AES-256-GCM, one process: ${wraps.perSecond} wraps/s, ${unwraps.perSecond} unwraps/s of 32 bytes; slowest call ${Math.max(wraps.slowestMs, unwraps.slowestMs).toFixed(2)} ms`);
      assert.ok(wraps.perSecond > 100 && unwraps.perSecond > 100);
    } finally {
      await rot.close();
    }
  });
});

describe("readPin", () => {
  const pin = "7261-pin-4093";
  let dir = "";
  after(async () => {
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });
  async function pinFile(name: string, content: string | Buffer, mode = 0o600): Promise<string> {
    dir ||= await mkdtemp(join(tmpdir(), "tresor-pin-"));
    const path = join(dir, name);
    await writeFile(path, content);
    await chmod(path, mode);
    return path;
  }
  function assertNoPin(err: unknown, ...secrets: string[]): boolean {
    const text = `${String(err)} ${inspect(err)}`;
    for (const s of [pin, ...secrets]) assert.equal(text.includes(s), false, text);
    return true;
  }

  it("reads an environment variable by name", () => {
    process.env.TRESOR_TEST_PIN = pin;
    try {
      assert.equal(readPin({ env: "TRESOR_TEST_PIN" }), pin);
      process.env.TRESOR_TEST_PIN = `${pin}\n`;
      assert.equal(readPin({ env: "TRESOR_TEST_PIN" }), pin, "one trailing line break is dropped");
      process.env.TRESOR_TEST_PIN = "";
      assert.throws(() => readPin({ env: "TRESOR_TEST_PIN" }), /environment variable TRESOR_TEST_PIN is empty/);
    } finally {
      delete process.env.TRESOR_TEST_PIN;
    }
    assert.throws(() => readPin({ env: "TRESOR_TEST_PIN" }), /environment variable TRESOR_TEST_PIN is not set/);
  });

  it("reads a file readable by its owner only, dropping one trailing line break", async () => {
    assert.equal(readPin({ file: await pinFile("plain", pin) }), pin);
    assert.equal(readPin({ file: await pinFile("newline", `${pin}\n`) }), pin);
    assert.equal(readPin({ file: await pinFile("crlf", `${pin}\r\n`, 0o400) }), pin);
    assert.equal(readPin({ file: await pinFile("spaces", ` ${pin} `) }), ` ${pin} `, "other whitespace is part of the PIN");
  });

  it("refuses a file others can read, naming the path and mode but not the content", async () => {
    for (const mode of [0o644, 0o640, 0o604]) {
      const path = await pinFile(`mode-${mode.toString(8)}`, pin, mode);
      assert.throws(() => readPin({ file: path }), (err: Error) => err.message.includes(path) && /group or others/.test(err.message) && assertNoPin(err));
    }
  });

  it("refuses empty, multi-line, non-UTF-8, oversized and missing files without showing them", async () => {
    assert.throws(() => readPin({ file: "/nonexistent/pin" }), /ENOENT/);
    const empty = await pinFile("empty", "\n");
    assert.throws(() => readPin({ file: empty }), (err: Error) => /is empty/.test(err.message));
    const twoLines = await pinFile("two-lines", `${pin}\nsecond-line-secret\n`);
    assert.throws(() => readPin({ file: twoLines }), (err: Error) => /single line/.test(err.message) && assertNoPin(err, "second-line-secret"));
    const binary = await pinFile("binary", Buffer.from([0xff, 0xfe, 0x41]));
    assert.throws(() => readPin({ file: binary }), /not UTF-8/);
    const large = await pinFile("large", "9".repeat(2000));
    assert.throws(() => readPin({ file: large }), (err: Error) => /larger than 1024 bytes/.test(err.message) && assertNoPin(err, "9999999999"));
  });

  it("wants exactly one source", () => {
    assert.throws(() => readPin({}), TypeError);
    assert.throws(() => readPin({ env: "A", file: "/b" }), TypeError);
    assert.throws(() => readPin({ env: "" }), TypeError);
  });
});
