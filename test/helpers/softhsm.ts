// Throwaway SoftHSM2 tokens for the PKCS#11 tests: a temp directory with its own softhsm2.conf,
// selected through SOFTHSM2_CONF. SoftHSM2 reads that variable when the module is initialised, so a
// test process uses one SoftHsm (with as many tokens as it likes). Without SoftHSM2 the tests skip
// on a developer machine and fail under CI.

import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

const MODULE_CANDIDATES = [
  "/usr/lib/softhsm/libsofthsm2.so",
  "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/local/lib/softhsm/libsofthsm2.so",
];

export const SOFTHSM_MODULE: string | undefined = [process.env.SOFTHSM2_MODULE, ...MODULE_CANDIDATES].find(
  (path): path is string => path !== undefined && path !== "" && existsSync(path),
);

const HAS_UTIL = (() => {
  try {
    execFileSync("softhsm2-util", ["--version"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
})();

const MISSING = SOFTHSM_MODULE === undefined ? "the SoftHSM2 module (libsofthsm2.so) is not installed" : HAS_UTIL ? undefined : "softhsm2-util is not installed";

/** For `it(name, { skip: softhsmSkip }, …)`: a reason to skip, or false (always false under CI). */
export const softhsmSkip: string | false = MISSING === undefined || process.env.CI ? false : MISSING;

export function requireSoftHsm(): void {
  assert.equal(MISSING, undefined, `SoftHSM2 is required (CI is set): ${MISSING}`);
}

export interface TestToken {
  label: string;
  pin: string;
  soPin: string;
  slot: number;
  /** The token's directory inside the token store. */
  directory: string;
}

export interface KeyReport {
  found: number;
  sensitive?: boolean;
  extractable?: boolean;
  alwaysSensitive?: boolean;
  neverExtractable?: boolean;
  id?: string;
  /** What reading CKA_VALUE gave: "CKR_…" on refusal, "readable" otherwise. */
  value?: string;
}

export class SoftHsm {
  readonly module: string;
  readonly dir: string;
  readonly conf: string;
  readonly tokenDir: string;
  readonly #previousConf: string | undefined;
  #removed = 0;

  private constructor(module: string, dir: string, previousConf: string | undefined) {
    this.module = module;
    this.dir = dir;
    this.conf = join(dir, "softhsm2.conf");
    this.tokenDir = join(dir, "tokens");
    this.#previousConf = previousConf;
  }

  /** A fresh token store, made this process's SOFTHSM2_CONF until remove(). */
  static async create(extraConf = ""): Promise<SoftHsm> {
    requireSoftHsm();
    const dir = await mkdtemp(join(tmpdir(), "tresor-softhsm-"));
    const hsm = new SoftHsm(SOFTHSM_MODULE!, dir, process.env.SOFTHSM2_CONF);
    await mkdir(hsm.tokenDir, { mode: 0o700 });
    await mkdir(join(dir, "removed"), { mode: 0o700 });
    await writeFile(hsm.conf, `directories.tokendir = ${hsm.tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n${extraConf}`);
    process.env.SOFTHSM2_CONF = hsm.conf;
    return hsm;
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, SOFTHSM2_CONF: this.conf };
  }

  async initToken(label: string, pin = "user-pin-5678", soPin = "so-pin-1234"): Promise<TestToken> {
    const before = new Set(await readdir(this.tokenDir));
    const { stdout } = await run("softhsm2-util", ["--init-token", "--free", "--label", label, "--so-pin", soPin, "--pin", pin], { env: this.env });
    const slot = /reassigned to slot (\d+)/.exec(stdout)?.[1];
    const created = (await readdir(this.tokenDir)).filter((name) => !before.has(name));
    assert.ok(slot !== undefined && created.length === 1, `softhsm2-util --init-token said: ${stdout}`);
    return { label, pin, soPin, slot: Number(slot), directory: join(this.tokenDir, created[0]!) };
  }

  /** Takes the token's storage away, as far as SoftHSM2 can be made to notice; returns a restorer. */
  async removeToken(token: TestToken): Promise<() => Promise<void>> {
    const aside = join(this.dir, "removed", String(this.#removed++));
    await rename(token.directory, aside);
    return () => rename(aside, token.directory);
  }

  /** Creates an AES-256 token key from another process with pkcs11js, with the attributes given. */
  async createKeyByHand(token: TestToken, keyLabel: string, attributes: { sensitive: boolean; extractable: boolean }): Promise<void> {
    await this.#script(token, { action: "generate", keyLabel, ...attributes });
  }

  /** Looks at the keys labelled `keyLabel` (secret keys, or private keys) from another process, as an independent reader would. */
  async inspectKey(token: TestToken, keyLabel: string, objectClass: "secret" | "private" = "secret"): Promise<KeyReport> {
    return JSON.parse(await this.#script(token, { action: "inspect", keyLabel, objectClass })) as KeyReport;
  }

  async remove(): Promise<void> {
    if (this.#previousConf === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = this.#previousConf;
    await rm(this.dir, { recursive: true, force: true });
  }

  async #script(token: TestToken, request: Record<string, unknown>): Promise<string> {
    const pkcs11js = createRequire(import.meta.url).resolve("pkcs11js");
    const args = JSON.stringify({ ...request, pkcs11js, module: this.module, token: token.label, pin: token.pin });
    const { stdout } = await run(process.execPath, ["--input-type=commonjs", "-e", SCRIPT, args], { env: this.env });
    return stdout;
  }
}

// Runs in a child process so that its C_Initialize/C_Finalize never touch the module the tests use.
const SCRIPT = `
const req = JSON.parse(process.argv[1]);
const p = require(req.pkcs11js);
const m = new p.PKCS11();
m.load(req.module);
m.C_Initialize();
try {
  const slot = m.C_GetSlotList(true).find((s) => m.C_GetTokenInfo(s).label.trim() === req.token);
  const session = m.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
  m.C_Login(session, p.CKU_USER, req.pin);
  if (req.action === "generate") {
    m.C_GenerateKey(session, { mechanism: p.CKM_AES_KEY_GEN }, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY }, { type: p.CKA_KEY_TYPE, value: p.CKK_AES }, { type: p.CKA_VALUE_LEN, value: 32 },
      { type: p.CKA_TOKEN, value: true }, { type: p.CKA_PRIVATE, value: true },
      { type: p.CKA_SENSITIVE, value: req.sensitive }, { type: p.CKA_EXTRACTABLE, value: req.extractable },
      { type: p.CKA_ENCRYPT, value: true }, { type: p.CKA_DECRYPT, value: true },
      { type: p.CKA_LABEL, value: req.keyLabel }, { type: p.CKA_ID, value: require("crypto").randomBytes(16) },
    ]);
  } else {
    const cls = req.objectClass === "private" ? p.CKO_PRIVATE_KEY : p.CKO_SECRET_KEY;
    m.C_FindObjectsInit(session, [{ type: p.CKA_CLASS, value: cls }, { type: p.CKA_LABEL, value: req.keyLabel }]);
    const keys = m.C_FindObjects(session, 10);
    m.C_FindObjectsFinal(session);
    const report = { found: keys.length };
    if (keys.length === 1) {
      const key = keys[0];
      const attr = (type) => m.C_GetAttributeValue(session, key, [{ type }])[0].value;
      report.sensitive = attr(p.CKA_SENSITIVE)[0] === 1;
      report.extractable = attr(p.CKA_EXTRACTABLE)[0] === 1;
      report.alwaysSensitive = attr(p.CKA_ALWAYS_SENSITIVE)[0] === 1;
      report.neverExtractable = attr(p.CKA_NEVER_EXTRACTABLE)[0] === 1;
      report.id = attr(p.CKA_ID).toString("hex");
      try { attr(req.objectClass === "private" ? (m.C_GetAttributeValue(session, key, [{ type: p.CKA_KEY_TYPE }])[0].value[0] === p.CKK_RSA ? p.CKA_PRIVATE_EXPONENT : p.CKA_VALUE) : p.CKA_VALUE); report.value = "readable"; } catch (e) { report.value = e.message; }
    }
    process.stdout.write(JSON.stringify(report));
  }
  m.C_CloseSession(session);
} finally {
  m.C_Finalize();
}
`;
