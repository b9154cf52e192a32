// KMIP test fixtures: a throwaway PKI made with the openssl command at test time (no private key
// is committed), PyKMIP's client script run with Debian's python, and PyKMIP's own server as the
// reference. Under CI=true a missing python3-pykmip fails the suites instead of skipping them.

import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { connect } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { childEnv, type CliResult, type TestServer } from "../../helpers/server.js";
import { waitFor } from "../../helpers/wait.js";

/** Debian's python, which sees Debian's python3-pykmip (an earlier python3 on PATH would not). */
export const PYTHON = "/usr/bin/python3";
export const CLIENT_SCRIPT = fileURLToPath(new URL("../../../../test/api/kmip/client.py", import.meta.url));

export const HAS_PYKMIP = (() => {
  try {
    execFileSync(PYTHON, ["-c", "import kmip.pie.client"], { stdio: "pipe" });
    return existsSync("/usr/bin/pykmip-server");
  } catch {
    return false;
  }
})();

/** For `describe(name, { skip: pykmipSkip }, …)`: a reason to skip, or false (never under CI). */
export const pykmipSkip: string | false = HAS_PYKMIP || process.env.CI ? false : "python3-pykmip is not installed (apt-get install python3-pykmip)";

export interface Pki {
  dir: string;
  ca: string;
  server: { cert: string; key: string };
  /** A client certificate issued by the CA, by name (its CN). */
  client(name: string): Promise<{ cert: string; key: string }>;
  /** A client certificate from another CA, which the handshake refuses. */
  foreign(): Promise<{ cert: string; key: string }>;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: "pipe" });
}

function issue(dir: string, caName: string, name: string, extensions: string): { cert: string; key: string } {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", `${name}.csr`, "-subj", `/CN=${name}`], dir);
  const ext = path.join(dir, `${name}.ext`);
  execFileSync("sh", ["-c", `printf '%s\\n' "$1" > "$2"`, "sh", extensions, ext]);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${caName}.pem`, "-CAkey", `${caName}.key`, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext], dir);
  return { cert, key };
}

function makeCa(dir: string, name: string): void {
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`], dir);
}

export function makePki(dir: string): Pki {
  makeCa(dir, "ca");
  const server = issue(dir, "ca", "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth");
  return {
    dir,
    ca: path.join(dir, "ca.pem"),
    server,
    client: async (name) => issue(dir, "ca", name, "extendedKeyUsage=clientAuth"),
    foreign: async () => {
      if (!existsSync(path.join(dir, "other-ca.pem"))) makeCa(dir, "other-ca");
      return issue(dir, "other-ca", "foreign", "extendedKeyUsage=clientAuth");
    },
  };
}

export interface Step {
  version: string;
  step: string;
  error?: { status: string; reason: string; message: string };
  [field: string]: unknown;
}

export type KmipVersion = "1.2" | "1.4" | "2.0";

/**
 * Runs the PyKMIP client script once for each version, in one python process; resolves with the
 * steps (never rejects on a failed step). Names get "-<version>" appended.
 */
export function runClient(
  port: number,
  client: { cert: string; key: string },
  ca: string,
  versions: readonly KmipVersion[],
  scenario: "full" | "create" | "make" | "use" | "extras" | "rekey",
  name: string,
): Promise<Step[]> {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      [CLIENT_SCRIPT, "127.0.0.1", String(port), client.cert, client.key, ca, versions.join(","), scenario, name],
      { env: childEnv({ PYTHONWARNINGS: "ignore" }), timeout: 60_000 },
      (err, stdout, stderr) => {
        const steps = stdout
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as Step);
        if (steps.length === 0) reject(new Error(`the PyKMIP client printed nothing (${err?.message ?? ""}):\n${stderr}`));
        else resolve(steps);
      },
    );
  });
}

export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const address = s.address();
      s.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** PyKMIP's own server on a free loopback port, configured from `pki`; stop() ends it. */
export async function startPykmipServer(pki: Pki): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const conf = path.join(pki.dir, "pykmip-server.conf");
  await writeFile(
    conf,
    [
      "[server]",
      "hostname=127.0.0.1",
      `port=${port}`,
      `certificate_path=${pki.server.cert}`,
      `key_path=${pki.server.key}`,
      `ca_path=${pki.ca}`,
      "auth_suite=TLS1.2",
      "enable_tls_client_auth=True",
      "logging_level=WARNING",
      `database_path=${path.join(pki.dir, "pykmip.db")}`,
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn("/usr/bin/pykmip-server", ["-f", conf, "-l", path.join(pki.dir, "pykmip-server.log")], { env: childEnv({ PYTHONWARNINGS: "ignore" }), stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await waitFor("pykmip-server to listen", () => canConnect(port), { timeoutMs: 30_000, intervalMs: 100 });
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** The KMIP port a `tresor serve` (or its supervisor, with workers) printed in its "listening" line. */
export function kmipPortOf(server: TestServer): Promise<number> {
  return waitFor("the KMIP port in the listening line", () => {
    const line = server.logs().split("\n").find((l) => l.includes('"msg":"listening"'));
    return line ? (JSON.parse(line) as { kmipPort?: number }).kmipPort : undefined;
  });
}

/** `tresor serve` arguments for a KMIP listener on a free port with `pki`'s certificates. */
export function kmipServeArgs(pki: Pki): string[] {
  return ["--kmip-port", "0", "--kmip-cert", pki.server.cert, "--kmip-key", pki.server.key, "--kmip-client-ca", pki.ca];
}

/**
 * Through the CLI as the admin: a user `name` allowed every kms action, and `cert` mapped to it.
 * `run` runs the CLI against the server (its endpoint and the admin's credentials).
 */
export async function grantKmip(run: (args: string[]) => Promise<CliResult>, dir: string, name: string, cert: string): Promise<void> {
  const policy = path.join(dir, `${name}-policy.json`);
  await writeFile(policy, JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: ["name/kms:*"], resource: "*" }] }));
  const must = async (args: string[]): Promise<string> => {
    const r = await run(args);
    if (r.code !== 0) throw new Error(`tresor ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const user = JSON.parse(await must(["admin", "user", "add", name, "--no-access-key", "--json"])) as { Uin: number };
  const { PolicyId } = JSON.parse(await must(["admin", "policy", "create", `${name}-kmip`, "--file", policy, "--json"])) as { PolicyId: number };
  await must(["admin", "policy", "attach", String(PolicyId), "--user", String(user.Uin)]);
  await must(["admin", "kmip-client", "add", "--user", name, "--cert", cert]);
}
