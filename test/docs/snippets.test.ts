// Every code snippet of README.md and docs/encryption-sdk.md runs as written, in document order,
// against a server started as the README's quick start starts it (a first run on a fresh data
// directory), so the examples stay true (issue 21). Like the policy examples of docs/api.md, they
// are read from the documents themselves.
//
// A block runs when its language is sh or js; `sh example` / `ts example` mark illustrations that
// need what a test cannot have (other clusters, system paths, a package install), and every
// sh/js/ts block in README.md and docs/*.md must be one or the other. What the test provides is
// what the README asks the reader for: the `tresor` command on the PATH (what `npm link` gives),
// a name kms.tresor.local for 127.0.0.1 (the README's /etc/hosts line), and a file backup.tar.

import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { CLI_MAIN, childEnv } from "../helpers/server.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const RUN = ["README.md", "docs/encryption-sdk.md"];
const CHECKED = ["README.md", ...readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

interface Block {
  file: string;
  line: number;
  lang: string;
  example: boolean;
  code: string;
}

function blocks(file: string): Block[] {
  const text = readFileSync(path.join(ROOT, file), "utf8");
  return [...text.matchAll(/^```(\w+)( example)?\n([\s\S]*?)^```$/gm)].map((m) => ({
    file,
    line: text.slice(0, m.index).split("\n").length,
    lang: m[1]!,
    example: m[2] !== undefined,
    code: m[3]!,
  }));
}

describe("documentation snippets", () => {
  it("are each run by this test or marked `example` (sh, js and ts blocks of README.md and docs/)", () => {
    const unmarked = CHECKED.flatMap(blocks)
      .filter((b) => ["sh", "bash", "js", "ts"].includes(b.lang) && !b.example && !(RUN.includes(b.file) && (b.lang === "sh" || b.lang === "js")))
      .map((b) => `${b.file}:${b.line} (${b.lang})`);
    assert.deepEqual(unmarked, [], "run these (sh or js in a file of RUN) or mark them `example`");
  });

  describe("run as written on a fresh data directory", () => {
    let work: string;
    let server: ChildProcess | undefined;
    let env: NodeJS.ProcessEnv;
    let firstRun = "";

    before(async () => {
      // Inside the clone, as the README says: `tresor/sdk` and the official SDK resolve from here.
      await mkdir(path.join(ROOT, "dist", "snippets"), { recursive: true });
      work = await mkdtemp(path.join(ROOT, "dist", "snippets", "run-"));
      const bin = path.join(work, ".bin");
      await mkdir(bin);
      await writeFile(path.join(bin, "tresor"), `#!/bin/sh\nexec "${process.execPath}" "${CLI_MAIN}" "$@"\n`);
      await chmod(path.join(bin, "tresor"), 0o755);
      const hosts = path.join(bin, "hosts.mjs");
      await writeFile(hosts, HOSTS_HOOK);
      await writeFile(path.join(work, "backup.tar"), Buffer.alloc(300_000, "a file to back up\n"));

      // The quick start: `npm start` is `tresor serve` in the clone; a free port instead of 8400.
      const started = await startServe(work);
      server = started.child;
      firstRun = started.stderr;
      env = childEnv({ TRESOR_ENDPOINT: started.url, PATH: `${bin}:${process.env["PATH"] ?? ""}`, NODE_OPTIONS: `--import ${hosts}` });
    });

    after(async () => {
      if (server && server.exitCode === null) {
        const exited = new Promise((resolve) => server!.once("exit", resolve));
        server.kill("SIGTERM");
        await exited;
      }
      if (work) await rm(work, { recursive: true, force: true });
    });

    it("the first run creates ./tresor-data and says where the credentials are", () => {
      assert.match(firstRun, /^Created a Tresor data directory\./m);
      assert.match(firstRun, /Saved with mode 0600 in .*tresor-data\/admin-credentials\.json/);
    });

    for (const file of RUN) {
      it(`${file}: every sh and js block, in order`, async () => {
        const runnable = blocks(file).filter((b) => (b.lang === "sh" || b.lang === "js") && !b.example);
        assert.ok(runnable.length > 0, `${file} has no runnable block`);
        for (const block of runnable) {
          const where = `${file}:${block.line}`;
          if (block.lang === "sh") env = await runShell(block.code, work, env, where);
          else await runModule(block.code, work, env, where);
        }
      });
    }

    it("left what the README's commands promise", async () => {
      assert.equal(await readFile(path.join(work, "card.txt"), "utf8"), "card 4111-1111");
      const tar = await readFile(path.join(work, "backup.tar"));
      assert.ok(tar.equals(await readFile(path.join(work, "backup.restored.tar"))), "the streams example restores backup.tar");
      assert.ok(tar.equals(await readFile(path.join(work, "backup.out.tar"))), "decrypt-file restores backup.tar");
    });
  });
});

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

/** Runs a shell block with `set -eu -o pipefail`; returns the environment it left (its exports). */
async function runShell(code: string, cwd: string, env: NodeJS.ProcessEnv, where: string): Promise<NodeJS.ProcessEnv> {
  const envFile = path.join(cwd, `.env-${randomBytes(4).toString("hex")}`);
  const script = `set -eu -o pipefail\n${code}\nenv -0 > ${JSON.stringify(envFile)}\n`;
  const { code: exit, stdout, stderr } = await run("bash", ["-c", script], cwd, env);
  assert.equal(exit, 0, `${where}: the sh block failed (exit ${exit})\n--- block ---\n${code}--- stdout ---\n${stdout}--- stderr ---\n${stderr}`);
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
