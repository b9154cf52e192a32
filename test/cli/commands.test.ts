// The command tree loads on demand (src/cli/commands.ts): a command line imports only the command
// group it names, so `tresor --version` or `tresor encrypt` never loads the server's modules; the
// table of groups stays equal to what each group registers; help and "did you mean" still see the
// whole tree. The module graph is read from a resolve hook in the child process, not from a clock.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Command } from "commander";
import { COMMAND_GROUPS, groupsFor } from "../../src/cli/commands.js";
import { CLI_MAIN, childEnv, runCli } from "../helpers/server.js";

/** What only the server side of Tresor uses: its folders under dist/src/ and its packages. */
const SERVER_MODULE = /\/dist\/src\/(api|node|store|service|material|rootkey|audit|policy)\/|\/node_modules\/(fastify|pg|better-sqlite3|pkcs11js|pino|@grpc)\//;

const HOOKS = `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.TRESOR_TEST_MODULE_LOG, resolved.url + "\\n");
  return resolved;
}
`;
const REGISTER = `import { register } from "node:module";
register("./hooks.mjs", import.meta.url);
`;

describe("command groups", () => {
  it("name exactly the top-level commands each group registers, each in one group", async () => {
    for (const group of COMMAND_GROUPS) {
      const program = new Command("tresor");
      (await group.load())(program);
      assert.deepEqual(
        program.commands.map((c) => c.name()),
        group.commands,
        "src/cli/commands.ts: a group's `commands` must list what its register function adds",
      );
    }
    const all = COMMAND_GROUPS.flatMap((g) => g.commands);
    assert.equal(new Set(all).size, all.length, "a command name in two groups");
  });

  it("a command word picks its group; a bare --version none; anything else every group", () => {
    const owner = (word: string) => COMMAND_GROUPS.find((g) => g.commands.includes(word));
    assert.deepEqual(groupsFor(["encrypt", "--key-id", "payments"]), [owner("encrypt")]);
    assert.deepEqual(groupsFor(["--help", "key", "list"]), [owner("key")]);
    assert.deepEqual(groupsFor(["kms-plugin", "--key-id", "serve"]), [owner("kms-plugin")]);
    assert.deepEqual(groupsFor(["--version"]), []);
    assert.deepEqual(groupsFor(["-V"]), []);
    for (const args of [[], ["--help"], ["-V", "--help"], ["help", "key"], ["completion", "bash"], ["encrpyt"]]) {
      assert.equal(groupsFor(args), COMMAND_GROUPS, JSON.stringify(args));
    }
  });

  it("tresor --help lists every command; a typo is still answered with the command meant", async () => {
    const help = await runCli(["--help"]);
    assert.equal(help.code, 0);
    for (const name of [...COMMAND_GROUPS.flatMap((g) => g.commands), "completion"]) {
      assert.match(help.stdout, new RegExp(`^  ${name}\\b`, "m"), `tresor --help lists ${name}`);
    }
    const typo = await runCli(["encrpyt"]);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown command 'encrpyt'[\s\S]*Did you mean encrypt\?/);
  });
});

describe("what a command line loads", () => {
  let work: string;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "tresor-modules-"));
    await writeFile(path.join(work, "hooks.mjs"), HOOKS);
    await writeFile(path.join(work, "register.mjs"), REGISTER);
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The modules `tresor ...args` resolved (file URLs), with its exit code. */
  async function modulesOf(args: string[]): Promise<{ code: number; modules: string[] }> {
    const log = path.join(work, `modules-${args.join("-").replace(/\W/g, "_")}.log`);
    await writeFile(log, "");
    const code = await new Promise<number>((resolve) => {
      execFile(
        process.execPath,
        ["--import", path.join(work, "register.mjs"), CLI_MAIN, ...args],
        { env: childEnv({ TRESOR_TEST_MODULE_LOG: log }), timeout: 30_000 },
        (err) => resolve(err === null ? 0 : typeof err.code === "number" ? err.code : 1),
      );
    });
    return { code, modules: [...new Set((await readFile(log, "utf8")).split("\n").filter((l) => l !== ""))] };
  }

  for (const args of [["--version"], ["key", "list", "--help"], ["encrypt", "--help"], ["encrypt-file", "--help"], ["sign", "--help"]]) {
    it(`tresor ${args.join(" ")} loads no server module`, async () => {
      const { code, modules } = await modulesOf(args);
      assert.equal(code, 0);
      assert.ok(modules.some((m) => m.endsWith("/dist/src/cli/main.js")), "the hook saw the command's modules");
      assert.deepEqual(
        modules.filter((m) => SERVER_MODULE.test(m)),
        [],
      );
    });
  }

  it("tresor serve --help does load them (the hook sees what it must catch)", async () => {
    const { code, modules } = await modulesOf(["serve", "--help"]);
    assert.equal(code, 0);
    const server = modules.filter((m) => SERVER_MODULE.test(m));
    for (const expected of ["/node_modules/fastify/", "/dist/src/api/server.js", "/dist/src/store/"]) {
      assert.ok(server.some((m) => m.includes(expected)), `serve loads ${expected}`);
    }
  });
});
