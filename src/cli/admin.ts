// `tresor admin user|accesskey|policy|role|kmip-client|simulate`: principals, access keys, policies and roles
// through the server's CAM and STS actions, with the caller's own credentials (so the server's
// policies govern what an administrator may do here too).

import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import { KmsClientError, type EncryptionContext, type KmsClient } from "../sdk/index.js";
import { UsageError, addClientOptions, integerArg, printJson, printLines, runWithClient } from "./client-options.js";
import { jsonLines } from "./output.js";
import { CONTEXT_HELP, KEY_HELP, contextArg, humanTime, resolveKeyId, withIsoTimes } from "./vocabulary.js";

/** CAM's policy documents are at most 6144 characters; a file much larger is not one. */
const MAX_POLICY_FILE_BYTES = 64 * 1024;

type Row = Record<string, unknown>;

const cam = (client: KmsClient, action: string, params: Row = {}) => client.callProduct("cam", action, params);

/** A numeric id argument (uin, policy id): CAM carries these as JSON numbers. */
function idArg(what: string): (value: string) => number {
  return (value) => {
    if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`${what} must be a number, got ${JSON.stringify(value)}`);
    return Number(value);
  };
}

/** A user's uin from its name, or the uin itself when given as a number. */
async function userUin(client: KmsClient, ref: string): Promise<number> {
  if (/^\d{1,16}$/.test(ref)) return idArg("--user")(ref);
  return Number((await cam(client, "GetUser", { Name: ref })).Uin);
}

/** A policy's id from its name, or the id itself when given as a number. */
async function policyId(client: KmsClient, ref: string): Promise<number> {
  if (/^\d{1,16}$/.test(ref)) return idArg("policy")(ref);
  const res = await cam(client, "ListPolicies", { Scope: "All", Keyword: ref, Page: 1, Rp: 200 });
  const found = (res.List as Row[]).find((p) => p.PolicyName === ref);
  if (found === undefined) throw new KmsClientError("ResourceNotFound.PolicyIdNotExist", `no policy is named ${JSON.stringify(ref)} (see tresor admin policy list)`);
  return Number(found.PolicyId);
}

/** A role's ARN from its name, or the ARN itself. */
async function roleArn(client: KmsClient, ref: string): Promise<string> {
  if (ref.startsWith("qcs::")) return ref;
  return String(((await cam(client, "GetRole", { RoleName: ref })).RoleInfo as Row).RoleArn);
}

/** The resource name of a key (id, alias or alias/NAME) as policies name it. */
async function keyResource(client: KmsClient, ref: string): Promise<string> {
  const meta = (await client.describeKey({ KeyId: await resolveKeyId(client, ref) })).KeyMetadata ?? {};
  return `qcs::kms:${client.region}:uin/${String(meta.CreatorUinString ?? meta.CreatorUin)}:key/${String(meta.ResourceId)}`;
}

async function readPolicyFile(file: string): Promise<string> {
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read the policy file ${file}: ${e.code ?? e.message}`);
  });
  if (Buffer.byteLength(text) > MAX_POLICY_FILE_BYTES) throw new UsageError(`the policy file ${file} is larger than ${MAX_POLICY_FILE_BYTES} bytes`);
  try {
    // Compact, so the stored document is what CAM would store; the server validates the content.
    return JSON.stringify(JSON.parse(text));
  } catch {
    throw new UsageError(`the policy file ${file} is not JSON`);
  }
}

const KMIP_CLIENT_COLUMNS = ["Fingerprint", "UserName", "Subject", "CreateTime"] as const;
/** A PEM certificate is a few kilobytes; a much larger file is not one. */
const MAX_CERTIFICATE_FILE_BYTES = 16 * 1024;

async function readCertificateFile(file: string): Promise<string> {
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read the certificate file ${file}: ${e.code ?? e.message}`);
  });
  if (Buffer.byteLength(text) > MAX_CERTIFICATE_FILE_BYTES) throw new UsageError(`the certificate file ${file} is larger than ${MAX_CERTIFICATE_FILE_BYTES} bytes`);
  if (!text.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`the certificate file ${file} holds no PEM certificate`);
  return text;
}

/** Runs one request and prints the response as JSON, or the lines `human` makes of it. */
function respond(cmd: Command, request: (client: KmsClient) => Promise<Row>, human: (res: Row) => string[]): Promise<void> {
  return runWithClient(
    cmd,
    () => undefined,
    async (client, _input, { json }) => {
      const res = await request(client);
      if (json) printJson(withIsoTimes(res));
      else printLines(...human(res));
    },
  );
}

function table(rows: readonly Row[], columns: readonly string[]): string[] {
  if (rows.length === 0) return ["(none)"];
  const cell = (c: string, v: unknown): string => (v === null || v === undefined ? "" : /Time$/.test(c) ? humanTime(v as number | string) : String(v));
  const cells = rows.map((r) => columns.map((c) => cell(c, r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: readonly string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(columns), ...cells.map(line)];
}

export function registerAdminCommands(program: Command): void {
  const admin = program.command("admin").description("users, access keys, policies and roles (CAM and STS), and policy simulation");

  // ---- users ----
  const user = admin.command("user").description("sub-users of the account");
  addClientOptions(user.command("create").alias("add").description("create a sub-user; with an access key unless --no-access-key").argument("<name>").option("--remark <text>", "a note").option("--no-access-key", "create no access key")).action(
    (name: string, opts: { remark?: string; accessKey: boolean }, cmd: Command) =>
      respond(
        cmd,
        (c) => cam(c, "AddUser", { Name: name, UseApi: opts.accessKey ? 1 : 0, ...(opts.remark === undefined ? {} : { Remark: opts.remark }) }),
        (r) => [
          `added user ${String(r.Name)} (uin ${String(r.Uin)})`,
          ...(r.SecretId ? ["Its access key (the SecretKey is shown only this once):", `  SecretId:  ${String(r.SecretId)}`, `  SecretKey: ${String(r.SecretKey)}`] : []),
        ],
      ),
  );
  addClientOptions(user.command("get").description("show a sub-user").argument("<name>")).action((name: string, _o: unknown, cmd: Command) =>
    respond(cmd, (c) => cam(c, "GetUser", { Name: name }), (r) => [`${String(r.Name)}  uin ${String(r.Uin)}  ${String(r.Remark ?? "")}`.trimEnd()]),
  );
  addClientOptions(user.command("list").description("list the sub-users")).action((_o: unknown, cmd: Command) =>
    respond(cmd, (c) => cam(c, "ListUsers"), (r) => table(r.Data as Row[], ["Name", "Uin", "CreateTime", "Remark"])),
  );
  addClientOptions(user.command("delete").description("delete a sub-user; --force deletes its access keys too").argument("<name>").option("--force", "delete its access keys as well")).action(
    (name: string, opts: { force?: boolean }, cmd: Command) => respond(cmd, (c) => cam(c, "DeleteUser", { Name: name, Force: opts.force ? 1 : 0 }), () => [`deleted user ${name}`]),
  );

  // ---- access keys ----
  const accessKey = admin.command("accesskey").description("access keys of a user (yourself unless --user)");
  const target = async (c: KmsClient, opts: { user?: string; uin?: string }) => {
    const ref = opts.user ?? opts.uin;
    return ref === undefined ? {} : { TargetUin: await userUin(c, ref) };
  };
  const withUin = (cmd: Command) =>
    cmd.option("--user <user>", "the sub-user's name or uin (default: the caller)").addOption(new Option("--uin <uin>", "the older spelling of --user").hideHelp());
  addClientOptions(withUin(accessKey.command("create").description("create an access key (at most two per user); the secret is shown once"))).action((opts: { user?: string; uin?: string }, cmd: Command) =>
    respond(
      cmd,
      async (c) => cam(c, "CreateAccessKey", await target(c, opts)),
      (r) => {
        const k = r.AccessKey as Row;
        return ["Created an access key (the SecretKey is shown only this once):", `  SecretId:  ${String(k.AccessKeyId)}`, `  SecretKey: ${String(k.SecretAccessKey)}`];
      },
    ),
  );
  addClientOptions(withUin(accessKey.command("list").description("list access keys (never their secrets)"))).action((opts: { user?: string; uin?: string }, cmd: Command) =>
    respond(cmd, async (c) => cam(c, "ListAccessKeys", await target(c, opts)), (r) => table(r.AccessKeys as Row[], ["AccessKeyId", "Status", "CreateTime", "LastUsedTime"])),
  );
  for (const [name, status] of [
    ["disable", "Inactive"],
    ["enable", "Active"],
  ] as const) {
    addClientOptions(withUin(accessKey.command(name).description(`${name} an access key`).argument("<secretId>"))).action((secretId: string, opts: { user?: string; uin?: string }, cmd: Command) =>
      respond(cmd, async (c) => cam(c, "UpdateAccessKey", { AccessKeyId: secretId, Status: status, ...(await target(c, opts)) }), () => [`${secretId} is ${status}`]),
    );
  }
  addClientOptions(withUin(accessKey.command("delete").description("delete an access key").argument("<secretId>"))).action((secretId: string, opts: { user?: string; uin?: string }, cmd: Command) =>
    respond(cmd, async (c) => cam(c, "DeleteAccessKey", { AccessKeyId: secretId, ...(await target(c, opts)) }), () => [`deleted ${secretId}`]),
  );

  // ---- policies ----
  const policy = admin.command("policy").description("CAM policies (language v2.0) and their attachments");
  addClientOptions(
    policy.command("create").description("create a policy from a JSON file").argument("<name>").requiredOption("--file <file>", "the policy document (JSON)").option("--description <text>", "a description"),
  ).action(async (name: string, opts: { file: string; description?: string }, cmd: Command) =>
    runWithClient(
      cmd,
      () => readPolicyFile(opts.file),
      async (client, document, { json }) => {
        const res = await cam(client, "CreatePolicy", { PolicyName: name, PolicyDocument: document, ...(opts.description === undefined ? {} : { Description: opts.description }) });
        if (json) printJson(res);
        else printLines(`created policy ${name} (id ${String(res.PolicyId)})`);
      },
    ),
  );
  addClientOptions(policy.command("get").description("show a policy and its document").argument("<policy>", "the policy's name or id")).action((ref: string, _o: unknown, cmd: Command) =>
    respond(
      cmd,
      async (c) => {
        const id = await policyId(c, ref);
        return { PolicyId: id, ...(await cam(c, "GetPolicy", { PolicyId: id })) };
      },
      (r) => [`${String(r.PolicyName)} (id ${String(r.PolicyId)}, ${r.Type === 2 ? "preset" : "custom"})`, ...jsonLines(JSON.parse(String(r.PolicyDocument)))],
    ),
  );
  addClientOptions(
    policy
      .command("list")
      .description("list policies")
      .option("--scope <scope>", "All, QCS (presets) or Local (the account's own)", "All")
      .option("--keyword <text>", "only names containing this")
      .option("--page <n>", "page, from 1", integerArg(1, 1_000_000), 1)
      .option("--per-page <n>", "policies per page", integerArg(1, 200), 50),
  ).action((opts: { scope: string; keyword?: string; page: number; perPage: number }, cmd: Command) =>
    respond(
      cmd,
      (c) => cam(c, "ListPolicies", { Scope: opts.scope, Page: opts.page, Rp: opts.perPage, ...(opts.keyword === undefined ? {} : { Keyword: opts.keyword }) }),
      (r) => [...table(r.List as Row[], ["PolicyId", "PolicyName", "Type", "Attachments", "Description"]), `${String(r.TotalNum)} in all`],
    ),
  );
  addClientOptions(policy.command("delete").description("delete policies (their attachments go too)").argument("<policy...>", "the policies' names or ids")).action((refs: string[], _o: unknown, cmd: Command) =>
    respond(cmd, async (c) => cam(c, "DeletePolicy", { PolicyId: await Promise.all(refs.map((r) => policyId(c, r))) }), () => [`deleted ${refs.join(", ")}`]),
  );
  const attachTarget = (cmd: Command) => cmd.option("--user <user>", "a sub-user's name or uin").option("--role <name>", "a role's name");
  const onePrincipal = (opts: { user?: string; role?: string }): { user: string } | { role: string } => {
    if ((opts.user === undefined) === (opts.role === undefined)) throw new UsageError("give exactly one of --user and --role");
    return opts.user !== undefined ? { user: opts.user } : { role: opts.role! };
  };
  for (const verb of ["attach", "detach"] as const) {
    addClientOptions(attachTarget(policy.command(verb).description(`${verb} a policy to or from a user or role`).argument("<policy>", "the policy's name or id"))).action(
      (ref: string, opts: { user?: string; role?: string }, cmd: Command) => {
        const who = onePrincipal(opts);
        const Verb = verb === "attach" ? "Attach" : "Detach";
        return respond(
          cmd,
          async (c) => {
            const id = await policyId(c, ref);
            return "user" in who
              ? cam(c, `${Verb}UserPolicy`, { PolicyId: id, [`${Verb}Uin`]: await userUin(c, who.user) })
              : cam(c, `${Verb}RolePolicy`, { PolicyId: id, [`${Verb}RoleName`]: who.role });
          },
          () => [`${verb === "attach" ? "attached" : "detached"} policy ${ref} ${verb === "attach" ? "to" : "from"} ${"user" in who ? `user ${who.user}` : `role ${who.role}`}`],
        );
      },
    );
  }
  addClientOptions(attachTarget(policy.command("attached").description("list the policies attached to a user or role"))).action((opts: { user?: string; role?: string }, cmd: Command) => {
    const who = onePrincipal(opts);
    return respond(
      cmd,
      async (c) => ("user" in who ? cam(c, "ListAttachedUserPolicies", { TargetUin: await userUin(c, who.user), Page: 1, Rp: 200 }) : cam(c, "ListAttachedRolePolicies", { RoleName: who.role, Page: 1, Rp: 200 })),
      (r) => table(r.List as Row[], ["PolicyId", "PolicyName", "PolicyType", "AddTime"]),
    );
  });

  // ---- roles ----
  const role = admin.command("role").description("roles: policies a trusted principal can take on for a while through STS AssumeRole");
  addClientOptions(
    role
      .command("create")
      .description("create a role whose trust policy (a JSON file) says who may assume it")
      .argument("<name>")
      .requiredOption("--trust-file <file>", "the trust policy (JSON)")
      .option("--description <text>", "a description")
      .option("--max-session <seconds>", "longest session AssumeRole may grant (900-43200)", integerArg(900, 43_200)),
  ).action((name: string, opts: { trustFile: string; description?: string; maxSession?: number }, cmd: Command) =>
    runWithClient(
      cmd,
      () => readPolicyFile(opts.trustFile),
      async (client, document, { json }) => {
        const res = await cam(client, "CreateRole", {
          RoleName: name,
          PolicyDocument: document,
          ...(opts.description === undefined ? {} : { Description: opts.description }),
          ...(opts.maxSession === undefined ? {} : { SessionDuration: opts.maxSession }),
        });
        if (json) printJson(res);
        else printLines(`created role ${name} (id ${String(res.RoleId)})`);
      },
    ),
  );
  addClientOptions(role.command("get").description("show a role and its trust policy").argument("<name>")).action((name: string, _o: unknown, cmd: Command) =>
    respond(
      cmd,
      (c) => cam(c, "GetRole", { RoleName: name }),
      (r) => {
        const info = r.RoleInfo as Row;
        return [`${String(info.RoleName)} (id ${String(info.RoleId)}), sessions up to ${String(info.SessionDuration)} s, ${String(info.RoleArn)}`, ...jsonLines(JSON.parse(String(info.PolicyDocument)))];
      },
    ),
  );
  addClientOptions(role.command("delete").description("delete a role; its sessions stop at once").argument("<name>")).action((name: string, _o: unknown, cmd: Command) =>
    respond(cmd, (c) => cam(c, "DeleteRole", { RoleName: name }), () => [`deleted role ${name}`]),
  );
  addClientOptions(
    role
      .command("assume")
      .description("assume a role: print temporary credentials as export lines for TRESOR_SECRET_ID, TRESOR_SECRET_KEY and TRESOR_TOKEN")
      .argument("<role>", "the role's name, or its ARN qcs::cam::uin/<uin>:roleName/<name>")
      .option("--session-name <name>", "a name for the session (shows in the audit log)", "tresor-cli")
      .option("--duration <seconds>", "how long the credentials last (900-43200)", integerArg(900, 43_200)),
  ).action((role: string, opts: { sessionName: string; duration?: number }, cmd: Command) =>
    respond(
      cmd,
      async (c) => c.callProduct("sts", "AssumeRole", { RoleArn: await roleArn(c, role), RoleSessionName: opts.sessionName, ...(opts.duration === undefined ? {} : { DurationSeconds: opts.duration }) }),
      (r) => {
        const k = r.Credentials as Row;
        return [
          `# temporary credentials of role ${role}, until ${humanTime(r.Expiration as string)}; paste these lines (or eval them):`,
          `export TRESOR_SECRET_ID=${String(k.TmpSecretId)}`,
          `export TRESOR_SECRET_KEY=${String(k.TmpSecretKey)}`,
          `export TRESOR_TOKEN=${String(k.Token)}`,
        ];
      },
    ),
  );

  // ---- KMIP client certificates ----
  const kmipClient = admin.command("kmip-client").description("KMIP client certificates and the users their KMIP requests act as");
  addClientOptions(
    kmipClient.command("add").description("map a client certificate (PEM) to a sub-user").requiredOption("--user <name>", "the sub-user").requiredOption("--cert <file>", "the client certificate, PEM"),
  ).action((opts: { user: string; cert: string }, cmd: Command) =>
    runWithClient(
      cmd,
      () => readCertificateFile(opts.cert),
      async (client, pem, { json }) => {
        const res = await cam(client, "AddKmipClient", { UserName: opts.user, Certificate: pem });
        if (json) printJson(res);
        else printLines(...table([res.KmipClient as Row], KMIP_CLIENT_COLUMNS));
      },
    ),
  );
  addClientOptions(kmipClient.command("list").description("list the mapped certificates")).action((_o: unknown, cmd: Command) =>
    respond(cmd, (c) => cam(c, "ListKmipClients"), (r) => table(r.KmipClients as Row[], KMIP_CLIENT_COLUMNS)),
  );
  addClientOptions(kmipClient.command("remove").description("unmap a certificate: its KMIP requests are refused from then on").argument("<fingerprint>", "SHA-256 of the certificate's DER, hex")).action(
    (fingerprint: string, _o: unknown, cmd: Command) => respond(cmd, (c) => cam(c, "DeleteKmipClient", { Fingerprint: fingerprint.toLowerCase().replace(/:/g, "") }), () => [`removed KMIP client ${fingerprint}`]),
  );

  // ---- simulation ----
  addClientOptions(
    admin
      .command("simulate")
      .description("explain whether a user's or role's policies allow an action on a resource, and which statement decides")
      .option("--user <name>", "the sub-user's name")
      .option("--role <name>", "the role's name")
      .requiredOption("--action <action>", "e.g. kms:Encrypt or name/kms:Encrypt")
      .option("--resource <resource>", 'a resource name, e.g. qcs::kms:local:uin/100000000001:key/creatorUin/100000000001/<keyId>, or "*"')
      .option("--key-id <key>", `instead of --resource: ${KEY_HELP}`)
      .option("--context <context>", `the request's ${CONTEXT_HELP}`, contextArg),
  ).action((opts: { user?: string; role?: string; action: string; resource?: string; keyId?: string; context?: EncryptionContext }, cmd: Command) =>
    runWithClient(
      cmd,
      () => {
        if ((opts.user === undefined) === (opts.role === undefined)) throw new UsageError("give exactly one of --user and --role");
        if ((opts.resource === undefined) === (opts.keyId === undefined)) throw new UsageError("give exactly one of --resource and --key-id");
        return opts.user !== undefined ? { UserName: opts.user } : { RoleName: opts.role! };
      },
      async (client, who, { json }) => {
        const resource = opts.resource ?? (await keyResource(client, opts.keyId!));
        const res = await cam(client, "SimulatePrincipalPolicy", {
          ...who,
          Action: opts.action,
          Resource: resource,
          ...(opts.context === undefined ? {} : { EncryptionContext: JSON.stringify(opts.context) }),
        });
        if (json) printJson(res);
        else printLines(...String(res.Explanation).split("\n"));
        if (res.Allowed !== true) process.exitCode = 3;
      },
    ),
  );
}
