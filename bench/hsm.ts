// The bench's HSM node: a throwaway SoftHSM2 token, `tresor init --root-of-trust pkcs11`, one
// `tresor serve` on it, and two AES_256 keys: one of ProtectionLevel HSM (every Encrypt runs
// AES-GCM inside the token) and one SOFTWARE (its material unwrapped once by the token, then
// cached). Their Encrypt rates are reported as ratios to the file-root AES_256 key's in the same run.

import { execFile } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { callAction, loopbackUrl, type Credentials } from "./signed-request.js";

const execFileP = promisify(execFile);
const MODULES = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"];
const TOKEN = "tresor-bench";
// A throwaway token that lives as long as the bench's temp directory.
const PIN = "bench-pin-2468";

export interface HsmNode<S> {
  server: S;
  creds: Credentials;
  url: URL;
  hsmKeyId: string;
  softwareKeyId: string;
}

/** Why the HSM node cannot run here, or undefined when it can. */
export function hsmUnavailable(): string | undefined {
  if (module() === undefined) return "skipped: the SoftHSM2 module (libsofthsm2.so) is not installed";
  return undefined;
}

function module(): string | undefined {
  return [process.env.SOFTHSM2_MODULE, ...MODULES].find((p): p is string => p !== undefined && p !== "" && existsSync(p));
}

export async function startHsmNode<S extends { listening: { url: string } }>(options: {
  tmp: string;
  tresorMain: string;
  run: (args: string[], timeoutMs: number) => Promise<string>;
  start: (name: string, args: string[], logPath: string) => Promise<S>;
}): Promise<HsmNode<S>> {
  const modulePath = module();
  if (modulePath === undefined) throw new Error("the SoftHSM2 module is not installed");
  const dir = join(options.tmp, "softhsm");
  mkdirSync(join(dir, "tokens"), { recursive: true, mode: 0o700 });
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(conf, `directories.tokendir = ${join(dir, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  await execFileP("softhsm2-util", ["--init-token", "--free", "--label", TOKEN, "--so-pin", "bench-so-1357", "--pin", PIN], { env });
  // The children (init, serve) inherit these; the parent drops them again once they have started.
  const saved = { conf: process.env.SOFTHSM2_CONF, pin: process.env.TRESOR_PKCS11_PIN };
  process.env.SOFTHSM2_CONF = conf;
  process.env.TRESOR_PKCS11_PIN = PIN;
  try {
    const dataDir = join(options.tmp, "hsm-node");
    const out = await options.run(
      [options.tresorMain, "init", "--data-dir", dataDir, "--json", "--root-of-trust", "pkcs11", "--pkcs11-module", modulePath, "--pkcs11-token", TOKEN],
      60_000,
    );
    const initLine = out.trim().split("\n").reverse().find((l) => l.includes('"secretId"'));
    if (initLine === undefined) throw new Error(`tresor init --root-of-trust pkcs11 printed no credentials:\n${out}`);
    const creds = JSON.parse(initLine) as Credentials;
    const server = await options.start("tresor serve (pkcs11)", [options.tresorMain, "serve", "--data-dir", dataDir, "--port", "0", "--workers", "1"], join(options.tmp, "server-hsm.log"));
    const url = loopbackUrl(server.listening.url);
    const hsmKey = await callAction(url, "CreateKey", { Alias: "bench-hsm-aes", KeySpec: "AES_256", ProtectionLevel: "HSM" }, creds);
    const softwareKey = await callAction(url, "CreateKey", { Alias: "bench-pkcs11-soft-aes", KeySpec: "AES_256" }, creds);
    return { server, creds, url, hsmKeyId: String(hsmKey.KeyId), softwareKeyId: String(softwareKey.KeyId) };
  } finally {
    if (saved.conf === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = saved.conf;
    if (saved.pin === undefined) delete process.env.TRESOR_PKCS11_PIN;
    else process.env.TRESOR_PKCS11_PIN = saved.pin;
  }
}
