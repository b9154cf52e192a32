// Packaging (issue 21): the server's package ships no tests, and the SDK has a package of its own
// (packages/sdk, built from src/sdk and src/crypto) that an application installs without the
// server's dependencies: checked by packing it, installing the tarball into a new project offline
// (its pure-JavaScript dependencies packed from this clone's node_modules) and finding no native
// module there.

import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** What the SDK needs at run time: its three dependencies and theirs. */
const NOBLE = ["@noble/ciphers", "@noble/curves", "@noble/hashes", "@noble/post-quantum"];

function npm(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // No proxy and no registry: everything here is local or in the cache.
    const env: NodeJS.ProcessEnv = { ...process.env, npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" };
    for (const k of ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"]) delete env[k];
    execFile("npm", args, { cwd, env, timeout: 180_000, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : 1, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

/** Every file under `dir`, relative to it. */
function walk(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? walk(full, base) : [path.relative(base, full)];
  });
}

describe("packaging", () => {
  it("npm pack of the server ships the built sources and docs, no tests", async () => {
    const r = await npm(["pack", "--dry-run", "--json", "--ignore-scripts"], ROOT);
    assert.equal(r.code, 0, r.stderr);
    const files = (JSON.parse(r.stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path);
    assert.deepEqual(files.filter((f) => f.startsWith("dist/test/") || f.startsWith("test/") || f.startsWith("src/")), []);
    for (const needed of ["dist/src/cli/main.js", "dist/src/sdk/index.js", "dist/src/sdk/encryption/index.d.ts", "dist/console/index.html", "package.json", "README.md", "docs/cli.md", "contrib/systemd/tresor.service", "proto/kubernetes/kms/v2/api.proto"]) {
      assert.ok(files.includes(needed), `the package lacks ${needed}`);
    }
  });

  it("the SDK package installs offline from its tarball with no native module, and works", async () => {
    const work = await mkdtemp(path.join(tmpdir(), "tresor-sdk-pack-"));
    try {
      const packed = await npm(["pack", "./packages/sdk", "--pack-destination", work, "--json"], ROOT);
      assert.equal(packed.code, 0, packed.stderr);
      const { filename, files } = (JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }])[0];
      assert.ok(files.some((f) => f.path === "dist/sdk/encryption/index.js"), "the tarball lacks the Encryption SDK");
      assert.deepEqual(files.filter((f) => /test|\.ts$/.test(f.path) && !f.path.endsWith(".d.ts")), []);

      const app = path.join(work, "app");
      await mkdir(app);
      // The SDK's dependencies, packed from this clone's node_modules: the install needs no registry.
      const local: Record<string, string> = {};
      for (const dep of NOBLE) {
        const r = await npm(["pack", path.join(ROOT, "node_modules", dep), "--pack-destination", work, "--json", "--ignore-scripts"], ROOT);
        assert.equal(r.code, 0, r.stderr);
        local[dep] = `file:${path.join(work, (JSON.parse(r.stdout) as [{ filename: string }])[0].filename)}`;
      }
      await writeFile(path.join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", type: "module", private: true, dependencies: local }));
      const installed = await npm(["install", "--offline", "--no-package-lock", path.join(work, filename)], app);
      assert.equal(installed.code, 0, `npm install --offline failed:\n${installed.stderr}`);

      const modules = path.join(app, "node_modules");
      const all = walk(modules);
      const packages = [...new Set(all.filter((f) => f.endsWith("package.json") && !f.includes("/dist/")).map((f) => path.dirname(f)).filter((d) => !d.includes("node_modules") && d.split("/").length <= 2))].sort();
      assert.deepEqual(packages.filter((p) => !p.startsWith("@noble/")), ["tresor-sdk"]);
      assert.deepEqual(all.filter((f) => f.endsWith(".node") || f.endsWith("binding.gyp") || f.includes("/build/Release/")), [], "a native module was installed");
      for (const server of ["better-sqlite3", "pkcs11js", "pg", "fastify", "pino"]) assert.ok(!all.some((f) => f.startsWith(`${server}/`)), `${server} was installed`);

      // It works: an Encryption SDK round trip with a raw keyring, one with the post-quantum keyring
      // and the ML-DSA suite (their worker thread's script is in the package; the process waits for
      // it), and a KMS client that signs requests.
      await writeFile(
        path.join(app, "check.mjs"),
        [
          'import { KmsClient } from "tresor-sdk";',
          'import { PostQuantumKeyring, RawKeyring, encrypt, decrypt, generatePqKeyPair } from "tresor-sdk/encryption";',
          'const keyring = new RawKeyring([{ namespace: "app", name: "k1", algorithm: "SM4-GCM", key: Buffer.alloc(16, 7) }]);',
          'const { message } = await encrypt(Buffer.from("packed"), { keyring, encryptionContext: { app: "check" } });',
          "const { plaintext } = await decrypt(message, { keyring });",
          'const pair = generatePqKeyPair("ML_KEM_768_X25519_AES_256_GCM");',
          'const pq = new PostQuantumKeyring([{ keyId: "6b1f4a52-0c3e-4d7a-9e21-5f8a7c3b2d10", region: "app", ...pair }]);',
          'const sealed = await encrypt(Buffer.from("post-quantum"), { keyring: pq, suite: "AES_256_GCM_HKDF_SHA512_COMMIT_ML_DSA_65" });',
          "console.log((await decrypt(sealed.message, { keyring: pq })).plaintext.toString());",
          'const kms = new KmsClient({ endpoint: "http://127.0.0.1:1", secretId: "AKIDx", secretKey: "y", region: "local" });',
          "kms.close();",
          "console.log(plaintext.toString());",
        ].join("\n"),
      );
      assert.equal(execFileSync(process.execPath, ["check.mjs"], { cwd: app, encoding: "utf8", timeout: 60_000 }), "post-quantum\npacked\n");
      assert.equal(JSON.parse(await readFile(path.join(modules, "tresor-sdk", "package.json"), "utf8")).name, "tresor-sdk");
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
