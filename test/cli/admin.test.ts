// `tresor admin …` and `tresor account create` end to end: child processes against a real
// `tresor serve`, as an operator would run them.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, type TestServer, runCli, startServer } from "../helpers/server.js";

let server: TestServer;
let work: string;
let admin: Record<string, string>;

before(async () => {
  server = await startServer();
  work = await mkdtemp(path.join(tmpdir(), "tresor-admin-"));
  admin = { TRESOR_ENDPOINT: server.url, TRESOR_SECRET_ID: server.secretId, TRESOR_SECRET_KEY: server.secretKey };
});

after(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = admin): Promise<CliResult> {
  return runCli(args, { cwd: work, env });
}

function ok(result: CliResult): CliResult {
  assert.equal(result.code, 0, `exit ${result.code}; stderr: ${result.stderr}`);
  assert.equal(result.stderr, "");
  return result;
}

function json(result: CliResult): Record<string, any> {
  return JSON.parse(ok(result).stdout) as Record<string, any>;
}

describe("tresor admin", () => {
  let keyId: string;
  let accountUin: string;
  let alice: { uin: number; secretId: string; secretKey: string };

  before(async () => {
    keyId = (json(await cli(["key", "create", "--alias", "admin-cli", "--json"])) as { KeyId: string }).KeyId;
    const status = json(await cli(["admin", "user", "list", "--json"]));
    assert.deepEqual(status.Data, []);
    // The account's uin appears in the role ARN format of a role we create and read back.
    const trust = path.join(work, "trust.json");
    await writeFile(trust, JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: ["qcs::cam::uin/1:root"] } }] }));
    ok(await cli(["admin", "role", "create", "probe", "--trust-file", trust]));
    const arn = String((json(await cli(["admin", "role", "get", "probe", "--json"])).RoleInfo as { RoleArn: string }).RoleArn);
    accountUin = /uin\/(\d+):/.exec(arn)![1]!;
    ok(await cli(["admin", "role", "delete", "probe"]));
  });

  it("adds a user with an access key, shown once, and lists it without its secret", async () => {
    const added = json(await cli(["admin", "user", "add", "alice", "--remark", "encrypt only", "--json"]));
    alice = { uin: added.Uin, secretId: added.SecretId, secretKey: added.SecretKey };
    assert.match(alice.secretId, /^AKID/);
    const listed = ok(await cli(["admin", "accesskey", "list", "--uin", String(alice.uin)]));
    assert.match(listed.stdout, new RegExp(alice.secretId));
    assert.ok(!listed.stdout.includes(alice.secretKey));
    assert.match(ok(await cli(["admin", "user", "list"])).stdout, /alice/);
  });

  it("writes a policy from a JSON file, attaches it, and the user can then do exactly that", async () => {
    const file = path.join(work, "encrypt-only.json");
    const resource = `qcs::kms:${server.region}:uin/${accountUin}:key/creatorUin/${accountUin}/${keyId}`;
    await writeFile(file, JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: ["name/kms:Encrypt", "name/kms:Decrypt"], resource }] }, null, 2));
    const { PolicyId } = json(await cli(["admin", "policy", "create", "encrypt-only", "--file", file, "--json"]));
    ok(await cli(["admin", "policy", "attach", String(PolicyId), "--user", String(alice.uin)]));
    assert.match(ok(await cli(["admin", "policy", "attached", "--user", String(alice.uin)])).stdout, /encrypt-only/);

    const as = { TRESOR_ENDPOINT: server.url, TRESOR_SECRET_ID: alice.secretId, TRESOR_SECRET_KEY: alice.secretKey };
    const blob = ok(await runCli(["encrypt", "--key-id", keyId, "--json"], { cwd: work, env: as, input: "hi" }));
    assert.match(blob.stdout, /CiphertextBlob/);
    const refused = await runCli(["key", "list"], { cwd: work, env: as });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /UnauthorizedOperation.*kms:ListKeyDetail/);

    // simulate names the statement that decides, and exits 3 when the answer is no.
    const allowed = ok(await cli(["admin", "simulate", "--user", "alice", "--action", "kms:Encrypt", "--resource", resource]));
    assert.match(allowed.stdout, /encrypt-only/);
    const denied = await cli(["admin", "simulate", "--user", "alice", "--action", "name/kms:ScheduleKeyDeletion", "--resource", resource]);
    assert.equal(denied.code, 3, denied.stderr);
    assert.match(denied.stdout, /kms:ScheduleKeyDeletion/);

    ok(await cli(["admin", "policy", "detach", String(PolicyId), "--user", String(alice.uin)]));
    ok(await cli(["admin", "policy", "delete", String(PolicyId)]));
  });

  it("refuses a bad policy file before sending it, and a bad document with the place at fault", async () => {
    const notJson = path.join(work, "broken.json");
    await writeFile(notJson, "{ version: 2.0");
    const local = await cli(["admin", "policy", "create", "broken", "--file", notJson]);
    assert.equal(local.code, 2);
    assert.match(local.stderr, /not JSON/);
    const typo = path.join(work, "typo.json");
    await writeFile(typo, JSON.stringify({ version: "2.0", statement: [{ effect: "alow", action: "name/kms:Encrypt", resource: "*" }] }));
    const remote = await cli(["admin", "policy", "create", "typo", "--file", typo]);
    assert.equal(remote.code, 1);
    assert.match(remote.stderr, /PolicyDocumentError.*statement\[0\]\.effect/);
  });

  it("assumes a role and uses its temporary credentials through TRESOR_TOKEN", async () => {
    const trust = path.join(work, "crypto-trust.json");
    await writeFile(trust, JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: [`qcs::cam::uin/${accountUin}:root`] } }] }));
    ok(await cli(["admin", "role", "create", "crypto", "--trust-file", trust, "--max-session", "3600"]));
    const presets = json(await cli(["admin", "policy", "list", "--scope", "QCS", "--json"]));
    const crypto = (presets.List as { PolicyId: number; PolicyName: string }[]).find((p) => p.PolicyName === "QcloudKMSCryptoAccess")!;
    ok(await cli(["admin", "policy", "attach", String(crypto.PolicyId), "--role", "crypto"]));
    const session = json(await cli(["admin", "role", "assume", `qcs::cam::uin/${accountUin}:roleName/crypto`, "--session-name", "cli-test", "--duration", "900", "--json"]));
    const env = { TRESOR_ENDPOINT: server.url, TRESOR_SECRET_ID: session.Credentials.TmpSecretId, TRESOR_SECRET_KEY: session.Credentials.TmpSecretKey, TRESOR_TOKEN: session.Credentials.Token };
    ok(await runCli(["encrypt", "--key-id", keyId], { cwd: work, env, input: "role" }));
    const noToken = await runCli(["encrypt", "--key-id", keyId], { cwd: work, env: { ...env, TRESOR_TOKEN: "" }, input: "role" });
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /AuthFailure\.SecretIdNotFound/);
    ok(await cli(["admin", "role", "delete", "crypto"]));
    const revoked = await runCli(["encrypt", "--key-id", keyId], { cwd: work, env, input: "role" });
    assert.match(revoked.stderr, /AuthFailure\.TokenFailure/);
  });

  it("disables, enables and deletes access keys; deletes a user", async () => {
    ok(await cli(["admin", "accesskey", "disable", alice.secretId, "--uin", String(alice.uin)]));
    assert.match(ok(await cli(["admin", "accesskey", "list", "--uin", String(alice.uin)])).stdout, /Inactive/);
    ok(await cli(["admin", "accesskey", "enable", alice.secretId, "--uin", String(alice.uin)]));
    const refused = await cli(["admin", "user", "delete", "alice"]);
    assert.match(refused.stderr, /OperationDenied\.UserHasAccessKey/);
    ok(await cli(["admin", "user", "delete", "alice", "--force"]));
    assert.match((await cli(["admin", "user", "get", "alice"])).stderr, /ResourceNotFound\.UserNotExist/);
  });
});

describe("tresor account create", () => {
  it("adds an account whose root sees none of the first account's keys", async () => {
    const created = json(await runCli(["account", "create", "--data-dir", server.dataDir, "--json"], { cwd: work }));
    assert.match(created.accountUin, /^\d{12}$/);
    const env = { TRESOR_ENDPOINT: server.url, TRESOR_SECRET_ID: created.secretId, TRESOR_SECRET_KEY: created.secretKey };
    const list = json(await runCli(["key", "list", "--json"], { cwd: work, env }));
    assert.equal(list.TotalCount, 0);
    ok(await runCli(["key", "create", "--alias", "second-account-key"], { cwd: work, env }));
    assert.equal(json(await runCli(["key", "list", "--json"], { cwd: work, env })).TotalCount, 1);
  });
});
