// Issue 13, "files and TLS": `serve` started with the data directory at 0777 and tresor.db and
// admin-credentials.json at 0644 (only root.key's mode was checked), and TLS 1.2 accepted suites
// without forward secrecy (RSA key exchange), CBC with SHA-1 and CCM8. Now init makes the directory
// 0700 and its files 0600, serve refuses group- or world-accessible ones (or, with
// --allow-insecure-permissions, warns), and TLS 1.2 offers ECDHE with AEAD only, checked with the
// `openssl s_client` command line as an independent client.

import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ADMIN_CREDENTIALS_FILE, DATABASE_FILE, initDataDir, insecurePermissions, openDataDir, ROOT_KEY_FILE } from "../../src/node/data-dir.js";
import { startNode, type RunningNode } from "../../src/node/node.js";
import { opensslSkip } from "../helpers/openssl.js";
import { runCli, startServer } from "../helpers/server.js";

const mode = async (path: string) => ((await stat(path)).mode & 0o777).toString(8).padStart(4, "0");

describe("data directory permissions", () => {
  let parent: string;
  before(async () => {
    parent = await mkdtemp(join(tmpdir(), "tresor-perms-"));
  });
  after(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it("init makes the directory 0700 (even one made beforehand at 0777) and every file in it 0600, SQLite's -wal and -shm included", async () => {
    const dir = join(parent, "made-open");
    await mkdir(dir);
    await chmod(dir, 0o777);
    await initDataDir(dir, "local");
    const dataDir = await openDataDir(dir);
    try {
      await dataDir.store.setMeta("touch", "the WAL and its index exist while the store is open");
      assert.equal(await mode(dir), "0700");
      for (const file of [ROOT_KEY_FILE, DATABASE_FILE, `${DATABASE_FILE}-wal`, `${DATABASE_FILE}-shm`, ADMIN_CREDENTIALS_FILE]) {
        assert.equal(await mode(join(dir, file)), "0600", file);
      }
      assert.deepEqual(await insecurePermissions(dir), []);
    } finally {
      await dataDir.close();
    }
  });

  it("names each group- or world-accessible entry, its mode and the chmod that fixes it", async () => {
    const dir = join(parent, "opened-later");
    await initDataDir(dir, "local");
    await chmod(dir, 0o777);
    await chmod(join(dir, DATABASE_FILE), 0o644);
    await chmod(join(dir, ADMIN_CREDENTIALS_FILE), 0o640);
    assert.deepEqual(await insecurePermissions(dir), [
      `the data directory ${dir} has mode 0777, which grants access to group or others: run "chmod 700 ${dir}"`,
      `${join(dir, DATABASE_FILE)} has mode 0644, which grants access to group or others: run "chmod 600 ${join(dir, DATABASE_FILE)}"`,
      `${join(dir, ADMIN_CREDENTIALS_FILE)} has mode 0640, which grants access to group or others: run "chmod 600 ${join(dir, ADMIN_CREDENTIALS_FILE)}"`,
    ]);
  });

  it("serve refuses a 0777 directory, a 0644 database or credentials file (it started before), naming the fix; --allow-insecure-permissions only warns", async () => {
    const server = await startServer({ keepDataDir: true });
    await server.stop();
    const dir = server.dataDir;
    try {
      for (const [entry, open, fix] of [
        ["", 0o777, 700],
        [DATABASE_FILE, 0o644, 600],
        [ADMIN_CREDENTIALS_FILE, 0o644, 600],
      ] as const) {
        const path = entry === "" ? dir : join(dir, entry);
        await chmod(path, open);
        const refused = await runCli(["serve", "--data-dir", dir, "--port", "0"]);
        assert.equal(refused.code, 1, `${path} at ${open.toString(8)}`);
        assert.match(refused.stderr, /^error: refusing to serve: /);
        assert.ok(refused.stderr.includes(`${path} has mode 0${open.toString(8)}`), refused.stderr);
        assert.ok(refused.stderr.includes(`run "chmod ${fix} ${path}"`), refused.stderr);
        assert.match(refused.stderr, /--allow-insecure-permissions/);
        assert.doesNotMatch(refused.stdout, /listening/);
        await chmod(path, entry === "" ? 0o700 : 0o600);
      }
      await chmod(join(dir, DATABASE_FILE), 0o644);
      const warned = await startServer({ dataDir: dir, serveArgs: ["--allow-insecure-permissions"], keepDataDir: true });
      try {
        assert.match(warned.logs(), /"level":40[^\n]*the data directory is readable by group or others/);
        assert.ok(warned.logs().includes(`run \\"chmod 600 ${join(dir, DATABASE_FILE)}\\"`), warned.logs());
      } finally {
        await warned.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** `openssl s_client` against 127.0.0.1:port offering only `cipher` (TLS 1.2) or `suite` (TLS 1.3): the suite negotiated, or undefined when refused. */
function negotiate(port: number, offer: { tls12: string } | { tls13: string }): Promise<string | undefined> {
  const args = ["s_client", "-connect", `127.0.0.1:${port}`, "-brief"];
  // @SECLEVEL=0 so that the client itself offers what it is told to; the server must refuse it.
  if ("tls12" in offer) args.push("-tls1_2", "-cipher", `${offer.tls12}:@SECLEVEL=0`);
  else args.push("-tls1_3", "-ciphersuites", offer.tls13);
  return new Promise((resolve, reject) => {
    const child = execFile("openssl", args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err !== null && err.killed) return reject(new Error(`openssl s_client timed out: ${stderr}`));
      const suite = /^Ciphersuite: (\S+)$/m.exec(stderr)?.[1];
      resolve(err === null ? suite : undefined);
    });
    child.stdin?.end();
  });
}

describe("TLS suites, checked with openssl s_client", { skip: opensslSkip }, () => {
  let dir: string;
  const nodes: RunningNode[] = [];
  const ports: Record<"rsa" | "ec", number> = { rsa: 0, ec: 0 };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tresor-tls-suites-"));
    await initDataDir(join(dir, "data"), "local");
    // An RSA certificate, so that RSA key exchange is possible at all, and an ECDSA one for ECDHE-ECDSA's CCM8 and CBC suites.
    for (const [kind, newkey] of [
      ["rsa", ["-newkey", "rsa:2048"]],
      ["ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]],
    ] as const) {
      execFileSync("openssl", ["req", "-x509", ...newkey, "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", join(dir, `${kind}.key`), "-out", join(dir, `${kind}.pem`)], { stdio: "ignore" });
      const node = await startNode({
        dataDir: join(dir, "data"),
        defaultKeySpec: "SM4",
        cmkLimit: 10,
        audit: false,
        tls: { cert: await readFile(join(dir, `${kind}.pem`)), key: await readFile(join(dir, `${kind}.key`)) },
      });
      nodes.push(node);
      ports[kind] = Number(new URL(node.url).port);
    }
  });
  after(async () => {
    for (const node of nodes) await node.close();
    await rm(dir, { recursive: true, force: true });
  });

  const refused: [keyof typeof ports, string, string][] = [
    ["rsa", "AES128-GCM-SHA256", "RSA key exchange: no forward secrecy"],
    ["rsa", "AES256-SHA", "RSA key exchange, CBC with SHA-1"],
    ["rsa", "ECDHE-RSA-AES128-SHA", "CBC with SHA-1"],
    ["rsa", "ECDHE-RSA-AES256-SHA384", "CBC"],
    ["rsa", "AES128-CCM8", "CCM8 (and RSA key exchange)"],
    ["rsa", "DHE-RSA-AES128-GCM-SHA256", "finite-field DHE"],
    ["ec", "ECDHE-ECDSA-AES128-CCM8", "CCM8"],
    ["ec", "ECDHE-ECDSA-AES128-SHA", "CBC with SHA-1"],
  ];
  for (const [cert, cipher, why] of refused) {
    it(`TLS 1.2 refuses ${cipher} (${why})`, async () => {
      assert.equal(await negotiate(ports[cert], { tls12: cipher }), undefined);
    });
  }

  const accepted: [keyof typeof ports, string][] = [
    ["rsa", "ECDHE-RSA-AES128-GCM-SHA256"],
    ["rsa", "ECDHE-RSA-AES256-GCM-SHA384"],
    ["rsa", "ECDHE-RSA-CHACHA20-POLY1305"],
    ["ec", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    ["ec", "ECDHE-ECDSA-AES256-GCM-SHA384"],
    ["ec", "ECDHE-ECDSA-CHACHA20-POLY1305"],
  ];
  for (const [cert, cipher] of accepted) {
    it(`TLS 1.2 accepts ${cipher}`, async () => {
      assert.equal(await negotiate(ports[cert], { tls12: cipher }), cipher);
    });
  }

  for (const suite of ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]) {
    it(`TLS 1.3 accepts ${suite}`, async () => {
      assert.equal(await negotiate(ports.rsa, { tls13: suite }), suite);
    });
  }
});
