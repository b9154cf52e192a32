// Every code snippet of README.md and of the docs that a test machine can run runs as written, in
// document order, against a server started as the README's quick start starts it (a first run on
// a fresh data directory), so the examples stay true (issue 21). Like the policy examples of
// docs/api.md, they are read from the documents themselves. The documents run one after another
// in one directory and one shell environment, as a reader going on from the README would.
//
// A block runs when its language is sh or js; `sh postgres` blocks run with an empty PostgreSQL
// schema in TRESOR_STORE (TRESOR_TEST_PG_URL, `. .ci/postgres.sh`; required under CI). `sh example:
// REASON` / `ts example: REASON` mark what needs what a test cannot have (a Kubernetes cluster, an
// HSM, MongoDB, a machine's own disk, system paths, minutes of benchmark), REASON saying which;
// every sh/js/ts block of README.md and docs/*.md is one or the other. A `// value` comment after a
// js console.log, and a `# prints: value` comment in sh, is a line the block must print. What the test provides is
// what the documents ask the reader for: the `tresor` command on the PATH (what `npm link` gives),
// a name kms.tresor.local for 127.0.0.1 (the README's /etc/hosts line), a file backup.tar, Debian's
// AWS CLI as `aws`, and the policy file docs/kubernetes.md asks to fill in.

import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { CLI_MAIN, childEnv } from "../helpers/server.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The documents whose sh and js blocks run, in this order, each going on where the one before left. */
const RUN = ["README.md", "docs/encryption-sdk.md", "docs/kubernetes.md", "docs/disk-encryption.md", "docs/aws.md", "docs/operations.md", "docs/kmip.md"];
const CHECKED = ["README.md", ...readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
/** Debian packages' commands some documents use (`.ci/run` installs them); without CI a missing one skips that document. */
const TOOLS: Readonly<Record<string, readonly string[]>> = {
  "docs/disk-encryption.md": ["clevis", "clevis-luks-bind", "cryptsetup"],
  "docs/aws.md": ["/usr/bin/aws"],
  "docs/kmip.md": ["openssl"],
  "docs/operations.md": ["softhsm2-util"],
};
const PG_URL = process.env["TRESOR_TEST_PG_URL"] || undefined;

interface Block {
  file: string;
  line: number;
  lang: string;
  /** `example` (not run) or `postgres` (run with TRESOR_STORE). */
  mark: string | undefined;
  reason: string;
  code: string;
}

function blocks(file: string): Block[] {
  const text = readFileSync(path.join(ROOT, file), "utf8");
  // A fence may be indented (a block inside a list item): its lines lose that indentation.
  return [...text.matchAll(/^( *)```(\w+)(?: (example|postgres)(?::[ ]*([^\n]*))?)?\n([\s\S]*?)^\1```$/gm)].map((m) => ({
    file,
    line: text.slice(0, m.index).split("\n").length,
    lang: m[2]!,
    mark: m[3],
    reason: (m[4] ?? "").trim(),
    code: m[5]!.replace(new RegExp(`^${m[1]!}`, "gm"), ""),
  }));
}

const runnable = (b: Block) => (b.lang === "sh" || b.lang === "js") && b.mark !== "example" && (b.mark !== "postgres" || b.lang === "sh");

/**
 * What a document asks its reader to make or choose by hand just before a block, and the variables
 * that gives the block: docs/kubernetes.md's policy file (its `json policy` block with the region,
 * the account's uin and the key's KeyId filled in); docs/operations.md's SoftHSM PINs.
 */
const PROVISIONS: readonly { file: string; before: RegExp; provide(env: NodeJS.ProcessEnv, cwd: string): Promise<NodeJS.ProcessEnv> }[] = [
  {
    file: "docs/kubernetes.md",
    before: /--file kube-kms-policy\.json/,
    provide: async (env, cwd) => {
      const policy = /^```json policy\n([\s\S]*?)^```$/m.exec(readFileSync(path.join(ROOT, "docs/kubernetes.md"), "utf8"))?.[1];
      assert.ok(policy, "docs/kubernetes.md has its json policy block");
      const got = await run("tresor", ["key", "get", "kubernetes-kek", "--json"], cwd, env);
      assert.equal(got.code, 0, got.stderr);
      const key = (JSON.parse(got.stdout) as { KeyMetadata: { KeyId: string; CreatorUinString: string } }).KeyMetadata;
      const filled = policy.replaceAll("<region>", env["TRESOR_REGION"] ?? "local").replaceAll("<uin>", key.CreatorUinString).replaceAll("<KeyId>", key.KeyId);
      await writeFile(path.join(cwd, "kube-kms-policy.json"), filled);
      return {};
    },
  },
  {
    file: "docs/operations.md",
    before: /softhsm2-util --init-token/,
    provide: async () => ({ SO_PIN: randomBytes(8).toString("hex"), USER_PIN: randomBytes(8).toString("hex") }),
  },
];

describe("documentation snippets", () => {
  it("are each run by this test or marked `example: REASON` (sh, js and ts blocks of README.md and docs/)", () => {
    const all = CHECKED.flatMap(blocks).filter((b) => ["sh", "bash", "js", "ts"].includes(b.lang));
    const unmarked = all.filter((b) => b.mark !== "example" && !(RUN.includes(b.file) && runnable(b))).map((b) => `${b.file}:${b.line} (${b.lang})`);
    assert.deepEqual(unmarked, [], "run these (sh or js in a file of RUN) or mark them `example: why`");
    const unexplained = all.filter((b) => b.mark === "example" && b.reason === "").map((b) => `${b.file}:${b.line}`);
    assert.deepEqual(unexplained, [], "say after `example:` what the block needs that the test cannot have");
  });

  describe("run as written on a fresh data directory", () => {
    let work: string;
    let server: ChildProcess | undefined;
    let env: NodeJS.ProcessEnv;
    let firstRun = "";
    const schemas: string[] = [];

    before(async () => {
      // Inside the clone, as the README says: `tresor/sdk` and the official SDK resolve from here.
      await mkdir(path.join(ROOT, "dist", "snippets"), { recursive: true });
      work = await mkdtemp(path.join(ROOT, "dist", "snippets", "run-"));
      const bin = path.join(work, ".bin");
      await mkdir(bin);
      await writeFile(path.join(bin, "tresor"), `#!/bin/sh\nexec "${process.execPath}" "${CLI_MAIN}" "$@"\n`);
      await chmod(path.join(bin, "tresor"), 0o755);
      // docs/aws.md's `aws` is Debian's awscli (CLI v2), whatever else is on the PATH.
      if (existsSync("/usr/bin/aws")) await symlink("/usr/bin/aws", path.join(bin, "aws"));
      const hosts = path.join(bin, "hosts.mjs");
      await writeFile(hosts, HOSTS_HOOK);
      await writeFile(path.join(work, "backup.tar"), Buffer.alloc(300_000, "a file to back up\n"));

      // The quick start: `npm start` is `tresor serve` in the clone; a free port instead of 8400.
      const started = await startServe(work);
      server = started.child;
      firstRun = started.stderr;
      env = childEnv({
        TRESOR_ENDPOINT: started.url,
        PATH: `${bin}:${process.env["PATH"] ?? ""}`,
        NODE_OPTIONS: `--import ${hosts}`,
        // The AWS CLI reads no ~/.aws of this machine's.
        AWS_CONFIG_FILE: path.join(work, ".aws-config"),
        AWS_SHARED_CREDENTIALS_FILE: path.join(work, ".aws-credentials"),
      });
    });

    after(async () => {
      if (server && server.exitCode === null) {
        const exited = new Promise((resolve) => server!.once("exit", resolve));
        server.kill("SIGTERM");
        await exited;
      }
      if (work) await rm(work, { recursive: true, force: true });
      if (PG_URL && schemas.length > 0) {
        const admin = new pg.Client({ connectionString: PG_URL });
        await admin.connect();
        for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.end();
      }
    });

    /** An empty schema of TRESOR_TEST_PG_URL's database, as a connection string. */
    async function emptyPostgres(): Promise<string> {
      const schema = `snippets_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.end();
      schemas.push(schema);
      const url = new URL(PG_URL!);
      url.searchParams.set("options", `-c search_path=${schema}`);
      return url.toString();
    }

    it("the first run creates ./tresor-data and says where the credentials are", () => {
      assert.match(firstRun, /^Created a Tresor data directory\./m);
      assert.match(firstRun, /Saved with mode 0600 in .*tresor-data\/admin-credentials\.json/);
    });

    for (const file of RUN) {
      it(`${file}: every sh and js block, in order`, async (t) => {
        const missing = await missingTools(TOOLS[file] ?? []);
        if (missing.length > 0 && !process.env["CI"]) {
          t.skip(`${missing.join(", ")} not installed (Debian packages .ci/run installs)`);
          return;
        }
        assert.deepEqual(missing, [], "tools .ci/run installs");
        const todo = blocks(file).filter(runnable);
        assert.ok(todo.length > 0, `${file} has no runnable block`);
        for (const block of todo) {
          const where = `${file}:${block.line}`;
          const started = Date.now();
          for (const p of PROVISIONS) if (p.file === file && p.before.test(block.code)) env = { ...env, ...(await p.provide(env, work)) };
          if (block.mark === "postgres") {
            if (PG_URL === undefined) {
              assert.ok(!process.env["CI"], `${where} needs TRESOR_TEST_PG_URL; CI must provide one`);
              t.diagnostic(`${where} not run: no TRESOR_TEST_PG_URL (. .ci/postgres.sh)`);
              continue;
            }
            const { TRESOR_STORE: _, ...left } = await runShell(block.code, work, { ...env, TRESOR_STORE: await emptyPostgres() }, where);
            env = left;
          } else if (block.lang === "sh") env = await runShell(block.code, work, env, where);
          else await runModule(block.code, work, env, where);
          t.diagnostic(`${where}: ${Date.now() - started} ms`);
        }
      });
    }

    it("left what the documents' commands promise", async () => {
      assert.equal(await readFile(path.join(work, "card.txt"), "utf8"), "card 4111-1111");
      const tar = await readFile(path.join(work, "backup.tar"));
      assert.ok(tar.equals(await readFile(path.join(work, "backup.restored.tar"))), "the streams example restores backup.tar");
      assert.ok(tar.equals(await readFile(path.join(work, "backup.out.tar"))), "decrypt-file restores backup.tar");
    });
  });
});

/** The commands of `tools` not found on this machine. */
async function missingTools(tools: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of tools) {
    const found = await run("sh", ["-c", `command -v ${tool}`], ROOT, childEnv());
    if (found.code !== 0) missing.push(tool);
  }
  return missing;
}

/** Stands for the README's "127.0.0.1 kms.tresor.local" line in /etc/hosts, for the child processes. */
const HOSTS_HOOK = `import dns from "node:dns";
const lookup = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  if (/\\.tresor\\.local$/.test(hostname)) hostname = "127.0.0.1";
  return lookup.call(this, hostname, options, callback);
};
`;

/** `tresor serve --port 0` in `cwd`, until its "listening" line; stderr so far (the first run's banner). */
async function startServe(cwd: string): Promise<{ child: ChildProcess; url: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI_MAIN, "serve", "--port", "0"], { cwd, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let stdout = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line within 20 s:\n${stdout}${stderr}`)), 20_000);
    child.once("exit", (code) => reject(new Error(`tresor serve exited with ${code}:\n${stdout}${stderr}`)));
    child.stdout!.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
      const m = /"msg":"listening"/.test(stdout) ? /"url":"([^"]+)"/.exec(stdout) : null;
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { child, url, stderr };
}

/**
 * Runs a shell block with `set -eu -o pipefail`; checks the lines its `# prints: value` comments
 * promise; returns the environment it left. Its variables are exported (`set -a`), so the next
 * block sees them as it would in the reader's one shell.
 */
async function runShell(code: string, cwd: string, env: NodeJS.ProcessEnv, where: string): Promise<NodeJS.ProcessEnv> {
  const envFile = path.join(cwd, `.env-${randomBytes(4).toString("hex")}`);
  const script = `set -eua -o pipefail\n${code}\nenv -0 > ${JSON.stringify(envFile)}\n`;
  const { code: exit, stdout, stderr } = await run("bash", ["-c", script], cwd, env);
  assert.equal(exit, 0, `${where}: the sh block failed (exit ${exit})\n--- block ---\n${code}--- stdout ---\n${stdout}--- stderr ---\n${stderr}`);
  for (const m of code.matchAll(/# prints: (.+)$/gm)) {
    assert.ok(stdout.split("\n").includes(m[1]!.trim()), `${where}: expected a line "${m[1]!.trim()}" on stdout, got:\n${stdout}`);
  }
  const left = (await readFile(envFile, "utf8")).split("\0").filter((l) => l.includes("="));
  await rm(envFile);
  return Object.fromEntries(left.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

/** Runs a js block as an ES module; checks the values its `console.log(…); // value` comments promise. */
async function runModule(code: string, cwd: string, env: NodeJS.ProcessEnv, where: string): Promise<void> {
  const file = path.join(cwd, `snippet-${randomBytes(4).toString("hex")}.mjs`);
  await writeFile(file, code);
  const { code: exit, stdout, stderr } = await run(process.execPath, [file], cwd, env);
  assert.equal(exit, 0, `${where}: the js block failed (exit ${exit})\n--- stdout ---\n${stdout}--- stderr ---\n${stderr}`);
  for (const m of code.matchAll(/^console\.log\(.*\);\s*\/\/ ([\w ]+)$/gm)) {
    assert.ok(stdout.split("\n").includes(m[1]!), `${where}: expected a line "${m[1]}" on stdout, got:\n${stdout}`);
  }
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : 1, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
