// Real Tang clients and the reference server for the Tang door's tests: Debian's clevis (encrypt,
// decrypt, luks bind, luks pass), cryptsetup on an image file (no loop device, no device mapper)
// and tangd 11, which serves one request on stdin/stdout, behind socat on a loopback port.
// Every client call runs under `timeout` (clevis calls curl without one) and without proxies.

import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { childEnv, freePort } from "./server.js";
import { waitFor } from "./wait.js";

export const TANG_TOOLS = ["clevis", "clevis-luks-bind", "cryptsetup", "jose", "socat", "/usr/libexec/tangd"] as const;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `timeout SECONDS command args`; never rejects on a non-zero exit. */
export function run(command: string, args: readonly string[], options: { input?: string | Buffer; seconds?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile("timeout", [String(options.seconds ?? 30), command, ...args], { env: childEnv(), encoding: "buffer", maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, stdout: stdout.toString("utf8"), stderr: stderr.toString("utf8") });
    });
    // A command that exits without reading its input (a refusal, `timeout`) closes the pipe: EPIPE is expected then.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(options.input ?? "");
  });
}

/** Whether every tool is installed (CI installs them; a missing one then fails the suite). */
export async function haveTangTools(): Promise<boolean> {
  for (const tool of TANG_TOOLS) {
    const found = await run("sh", ["-c", `command -v ${tool}`], { seconds: 5 });
    if (found.code !== 0) return false;
  }
  return true;
}

export interface ReferenceTang {
  url: string;
  /** SHA-256 thumbprint of its signing key. */
  thp: string;
  /** SHA-256 thumbprint of its exchange key (tangd names key files by it). */
  kid: string;
  stop(): Promise<void>;
}

/** socat on a free loopback port running tangd per connection; another port when the first is taken meanwhile. */
async function startSocat(dir: string): Promise<{ socat: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const socat = spawn("socat", [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `EXEC:/usr/libexec/tangd ${dir}`], { stdio: ["ignore", "ignore", "pipe"], env: childEnv() });
    let stderr = "";
    socat.stderr?.on("data", (chunk: Buffer) => void (stderr += chunk.toString("utf8")));
    let exited = false;
    socat.once("exit", () => void (exited = true));
    const ready = await waitFor(`socat on port ${port} to accept connections`, () =>
      exited
        ? "exited"
        : new Promise<string | false>((resolve) => {
            const socket = connect(port, "127.0.0.1", () => {
              socket.destroy();
              resolve("listening");
            });
            socket.on("error", () => resolve(false));
          }),
    );
    if (ready === "listening") return { socat, port };
    if (attempt === 3) throw new Error(`socat could not listen for tangd: ${stderr}`);
  }
}

/** Debian's tangd with fresh keys (tangd-keygen), one process per connection through socat. */
export async function startReferenceTang(): Promise<ReferenceTang> {
  const dir = await mkdtemp(path.join(tmpdir(), "tresor-tangd-"));
  const keygen = await run("/usr/libexec/tangd-keygen", [dir]);
  assert.equal(keygen.code, 0, keygen.stderr);
  const { socat, port } = await startSocat(dir);
  const files = (await run("sh", ["-c", `ls ${dir}`])).stdout.split("\n").filter((f) => f.endsWith(".jwk"));
  let thp = "";
  let kid = "";
  for (const f of files) {
    const alg = await run("jose", ["fmt", "-j", path.join(dir, f), "-g", "alg", "-u-"]);
    if (alg.stdout.trim() === "ES512") thp = f.slice(0, -".jwk".length);
    if (alg.stdout.trim() === "ECMR") kid = f.slice(0, -".jwk".length);
  }
  assert.ok(thp && kid, "tangd-keygen made a signing key and an exchange key");
  return {
    url: `http://127.0.0.1:${port}`,
    thp,
    kid,
    stop: async () => {
      const exited = new Promise((resolve) => socat.once("exit", resolve));
      socat.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function tangConfig(url: string, thp: string): string {
  return JSON.stringify({ url, thp });
}

/** `clevis encrypt tang` of `secret`: the compact JWE. */
export async function clevisEncrypt(url: string, thp: string, secret: string): Promise<string> {
  const out = await run("clevis", ["encrypt", "tang", tangConfig(url, thp)], { input: secret });
  assert.equal(out.code, 0, `clevis encrypt tang ${url}: ${out.stderr}`);
  return out.stdout;
}

export function clevisDecrypt(jwe: string): Promise<Run> {
  return run("clevis", ["decrypt"], { input: jwe });
}

/** The `kid` of a clevis tang JWE: the SHA-256 thumbprint of the exchange key it was made for. */
export function jweKid(jwe: string): string {
  const header = JSON.parse(Buffer.from(jwe.split(".")[0]!, "base64url").toString("utf8")) as { kid?: string };
  return header.kid ?? "";
}

/** A LUKS2 volume in an image file (PBKDF2 with 1000 iterations: argon2id is slow), its passphrase given. */
export async function luksImage(dir: string, passphrase: string): Promise<string> {
  const image = path.join(dir, `luks-${Math.random().toString(36).slice(2)}.img`);
  await writeFile(image, "");
  await truncate(image, 20 * 1024 * 1024);
  const format = await run("cryptsetup", ["luksFormat", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--batch-mode", image, "-"], {
    input: passphrase,
  });
  assert.equal(format.code, 0, format.stderr);
  return image;
}

/** `clevis luks bind` of the image to the Tang server (keyslot 1, after the passphrase's 0). */
export async function luksBind(image: string, passphrase: string, url: string, thp: string): Promise<void> {
  const bind = await run("clevis", ["luks", "bind", "-d", image, "-k", "-", "tang", tangConfig(url, thp)], { input: passphrase, seconds: 60 });
  assert.equal(bind.code, 0, `clevis luks bind: ${bind.stderr}`);
}

/** What `clevis luks pass` recovers for keyslot 1, and whether it opens the volume. */
export async function luksPassOpens(image: string, dir: string): Promise<{ recovered: boolean; opens: boolean }> {
  const pass = await run("clevis", ["luks", "pass", "-d", image, "-s", "1"]);
  if (pass.code !== 0 || pass.stdout.length === 0) return { recovered: false, opens: false };
  const keyFile = path.join(dir, "recovered.key");
  await writeFile(keyFile, pass.stdout, { mode: 0o600 });
  const open = await run("cryptsetup", ["open", "--test-passphrase", "--key-file", keyFile, image]);
  return { recovered: true, opens: open.code === 0 };
}
