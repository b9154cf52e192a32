// Issue 21, setting Tresor up to stay: a config file with profiles (like the AWS and Tencent CLIs),
// shell completion made from the command tree, and a systemd unit with an example environment
// file that systemd itself accepts.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../../src/cli/config-file.js";
import { CLI_MAIN, type CliResult, type TestServer, runCli, startServer } from "../helpers/server.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 30_000, ...options }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : 1, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

describe("config file profiles", () => {
  let server: TestServer;
  let work: string;
  let config: string;

  before(async () => {
    server = await startServer();
    work = await mkdtemp(path.join(tmpdir(), "tresor-profiles-"));
    config = path.join(work, "config.toml");
    const credentials = path.join(work, "prod.json");
    await writeFile(credentials, JSON.stringify({ secretId: server.secretId, secretKey: server.secretKey }), { mode: 0o600 });
    await writeFile(
      config,
      [
        "# profiles for the tests",
        "[default]",
        'endpoint = "http://127.0.0.1:1"  # nothing listens here',
        "",
        "[prod]",
        `endpoint = "${server.url}"`,
        `credentials_file = "${credentials}"`,
        "",
        "[dir]",
        `endpoint = "${server.url}"`,
        `data_dir = "${server.dataDir}"`,
      ].join("\n"),
    );
  });

  after(async () => {
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => runCli(args, { cwd: work, env: { TRESOR_CONFIG: config, ...env } });

  it("--profile (or TRESOR_PROFILE) picks a profile's endpoint and credentials; [default] applies otherwise", async () => {
    const viaFlag = await cli(["random", "--bytes", "4", "--profile", "prod"]);
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
    const viaEnv = await cli(["key", "list", "--json"], { TRESOR_PROFILE: "dir" });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const fallback = await cli(["random", "--bytes", "4", "--data-dir", server.dataDir]);
    assert.equal(fallback.code, 1);
    assert.match(fallback.stderr, /127\.0\.0\.1:1/);
  });

  it("a flag or TRESOR_* variable wins over the profile", async () => {
    const flag = await cli(["random", "--bytes", "4", "--profile", "prod", "--endpoint", "http://127.0.0.1:1"]);
    assert.equal(flag.code, 1);
    const env = await cli(["random", "--bytes", "4", "--profile", "dir", "--data-dir", server.dataDir], { TRESOR_ENDPOINT: server.url });
    assert.equal(env.code, 0, env.stderr);
  });

  it("names a missing profile, and the line of a bad file", async () => {
    const missing = await cli(["random", "--bytes", "4", "--profile", "staging"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--profile staging: no \[staging\] in .*config\.toml \(it has \[default\], \[prod\], \[dir\]\)/);
    assert.throws(() => parseConfig('[a]\nendpoint = "x"\nsecret_key = "y"\n', "c.toml"), /c\.toml:3: unknown setting secret_key/);
    assert.throws(() => parseConfig('endpoint = "x"\n', "c.toml"), /c\.toml:1: endpoint is outside a \[profile\]/);
    assert.throws(() => parseConfig("[a]\nendpoint = x\n", "c.toml"), /c\.toml:2: expected \[profile\] or key = "value"/);
    assert.deepEqual(parseConfig('[a]\nregion = "r\\"1"\n', "c.toml").get("a"), { region: 'r"1' });
  });
});

describe("docs/cli.md's config example", () => {
  it("parses into the profiles it shows", async () => {
    const md = await readFile(path.join(ROOT, "docs", "cli.md"), "utf8");
    const block = /^```toml\n([\s\S]*?)^```$/m.exec(md);
    assert.ok(block, "docs/cli.md shows a ```toml block");
    const profiles = parseConfig(block[1]!, "docs/cli.md");
    assert.deepEqual([...profiles.keys()], ["default", "prod"]);
    assert.equal(profiles.get("prod")?.credentialsFile, "/home/me/.config/tresor/prod.json");
  });
});

describe("shell completion", () => {
  it("completes commands, subcommands and flags in bash, and gives zsh the same through bashcompinit", async () => {
    const bash = await runCli(["completion", "bash"]);
    assert.equal(bash.code, 0, bash.stderr);
    const complete = async (...words: string[]): Promise<string[]> => {
      const script = `${bash.stdout}\nCOMP_WORDS=(tresor ${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length}; _tresor; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = await run("bash", ["-c", script]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.split("\n").filter(Boolean);
    };
    assert.deepEqual(await complete("ke"), ["key"]);
    assert.deepEqual((await complete("key", "l")).sort(), ["list"]);
    assert.ok((await complete("key", "list", "--")).includes("--usage"));
    assert.ok((await complete("encrypt", "--key-id", "x", "--co")).includes("--context"));
    assert.deepEqual(await complete("admin", "role", "as"), ["assume"]);

    const zsh = await runCli(["completion", "zsh"]);
    assert.match(zsh.stdout, /^autoload -U \+X bashcompinit && bashcompinit$/m);
    assert.ok(zsh.stdout.includes("complete -o default -F _tresor tresor"));
    assert.equal((await runCli(["completion", "fish"])).code, 2);
  });
});

describe("systemd unit and example config", () => {
  const unit = path.join(ROOT, "contrib", "systemd", "tresor.service");
  const envFile = path.join(ROOT, "contrib", "tresor.env");

  it("systemd-analyze verify accepts the unit", async (t) => {
    const analyze = await access("/usr/bin/systemd-analyze").then(
      () => "/usr/bin/systemd-analyze",
      () => undefined,
    );
    if (analyze === undefined) {
      if (process.env["CI"] === "true") assert.fail("systemd-analyze (Debian package systemd) is needed to check contrib/systemd/tresor.service");
      t.skip("no systemd-analyze here");
      return;
    }
    // verify checks that ExecStart is executable: point it at this clone's command, as `npm install -g` would install it.
    const dir = await mkdtemp(path.join(tmpdir(), "tresor-unit-"));
    try {
      const shim = path.join(dir, "tresor");
      await writeFile(shim, `#!/bin/sh\nexec "${process.execPath}" "${CLI_MAIN}" "$@"\n`);
      await chmod(shim, 0o755);
      const text = await readFile(unit, "utf8");
      assert.match(text, /^ExecStart=\/usr\/local\/bin\/tresor serve$/m);
      await writeFile(path.join(dir, "tresor.service"), text.replace("/usr/local/bin/tresor", shim));
      const r = await run(analyze, ["verify", path.join(dir, "tresor.service")]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr.trim(), "", "systemd-analyze warned");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the example environment file names only settings tresor serve reads", async () => {
    const names = [...(await readFile(envFile, "utf8")).matchAll(/^#? ?(TRESOR_[A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    assert.ok(names.length >= 5);
    const sources = (await Promise.all(["src/node/config.ts", "src/cli/serve.ts", "src/cli/serve-output.ts"].map((f) => readFile(path.join(ROOT, f), "utf8")))).join("\n");
    const unknown = names.filter((n) => !sources.includes(`"${n}"`) && !sources.includes(`env ${n}`));
    assert.deepEqual(unknown, []);
  });
});
