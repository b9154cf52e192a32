// `tresor audit search | tail | export | verify`: the audit log. search and tail ask the server
// (CloudAudit LookUpEvents, with the caller's credentials, so the server's policies govern them);
// export and verify work offline on the store, like `tresor backup`, and check the hash chain and
// the signed checkpoints against a public key the operator pins.

import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Option, type Command } from "commander";
import { exportAudit, verifyAuditExport, verifyStoreAudit, type ExportVerifyReport } from "../audit/export.js";
import { AUDIT_PUBLIC_KEY_META } from "../audit/keys.js";
import type { VerifyReport } from "../audit/verify.js";
import { DEFAULT_DATA_DIR, openDataDir } from "../node/data-dir.js";
import type { KmsClient } from "../sdk/index.js";
import { UsageError, addClientOptions, integerArg, printJson, printLines, reportError, runWithClient } from "./client-options.js";
import { pinOption } from "./init.js";
import { clearProgress, drawProgress, printErrorLines } from "./output.js";
import { KEY_HELP, resolveKeyId } from "./vocabulary.js";

/** The server's limits: a search window of at most 30 days, at most 50 events a page. */
const WINDOW_SECONDS = 30 * 86_400;
const PAGE = 50;

type Event = Record<string, unknown>;

const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 7 * 86_400 };

/**
 * A time option as unix seconds: ISO 8601 ("2026-11-28", "2026-11-28T20:00:00Z"), "now", or a
 * span before now: "90s", "15m", "1h", "7d", "2w".
 */
export function parseTime(value: string, option: string, nowMs: number = Date.now()): number {
  const v = value.trim();
  if (v === "now") return Math.floor(nowMs / 1000);
  const rel = /^(\d{1,9})([smhdw])$/.exec(v);
  if (rel) return Math.floor(nowMs / 1000) - Number(rel[1]) * UNITS[rel[2]!]!;
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) {
    const ms = Date.parse(v);
    if (Number.isFinite(ms) && ms >= 0) return Math.floor(ms / 1000);
  }
  throw new UsageError(`${option} must be an ISO 8601 time (2026-11-28T20:00:00Z), "now", or a span before now such as 1h or 7d; got ${JSON.stringify(value)}`);
}

export interface SearchFilters {
  user?: string;
  action?: string;
  key?: string;
  accessKey?: string;
  readOnly?: boolean;
  flag?: string;
}

function lookupAttributes(f: SearchFilters): { AttributeKey: string; AttributeValue: string }[] {
  const out: { AttributeKey: string; AttributeValue: string }[] = [];
  const add = (key: string, value: string | undefined) => {
    if (value !== undefined) out.push({ AttributeKey: key, AttributeValue: value });
  };
  add("Username", f.user);
  add("EventName", f.action);
  add("ResourceName", f.key);
  add("AccessKeyId", f.accessKey);
  add("ReadOnly", f.readOnly === undefined ? undefined : String(f.readOnly));
  add("Flag", f.flag);
  return out;
}

/**
 * The events of [since, until] (unix seconds, inclusive) newest first, at most `limit`: the range
 * in windows of at most 30 days from the newest, each page by page with NextToken.
 */
export async function* searchEvents(
  client: KmsClient,
  since: number,
  until: number,
  filters: SearchFilters,
  limit = Infinity,
  ownRequests?: Set<string>,
): AsyncGenerator<Event> {
  const attributes = lookupAttributes(filters);
  let given = 0;
  for (let end = until; end >= since && given < limit; end -= WINDOW_SECONDS + 1) {
    const start = Math.max(since, end - WINDOW_SECONDS);
    let token: string | undefined;
    for (;;) {
      const res = await client.callProduct("cloudaudit", "LookUpEvents", {
        StartTime: start,
        EndTime: end,
        MaxResults: Math.min(PAGE, Math.max(1, limit - given)),
        ...(attributes.length === 0 ? {} : { LookupAttributes: attributes }),
        ...(token === undefined ? {} : { NextToken: token }),
      });
      if (typeof res.RequestId === "string") ownRequests?.add(res.RequestId);
      for (const e of (res.Events as Event[] | undefined) ?? []) {
        yield e;
        if (++given >= limit) return;
      }
      if (res.ListOver !== false || typeof res.NextToken !== "string") break;
      token = res.NextToken;
    }
  }
}

function details(e: Event): Record<string, unknown> {
  try {
    return JSON.parse(String(e.CloudAuditEvent ?? "{}")) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** One line per event: time, EventId, user, service:action, result, resources, source address, flags. */
export function eventLine(e: Event): string {
  const d = details(e);
  const seconds = Number(e.EventTime);
  const time = Number.isFinite(seconds) ? new Date((typeof d.eventTimeMs === "number" ? d.eventTimeMs : seconds * 1000)).toISOString() : String(e.EventTime);
  const service = String(e.EventSource ?? "").replace(/\.tencentcloudapi\.com$/, "");
  const resources = (e.Resources ?? {}) as { ResourceName?: string };
  const flags = Array.isArray(d.flags) && d.flags.length > 0 ? `  [${d.flags.join(",")}]` : "";
  return [time, `#${String(e.EventId)}`, String(e.Username || "-"), `${service || "?"}:${String(e.EventName)}`, String(d.result ?? (e.ErrorCode === 0 ? "Success" : "failed")), resources.ResourceName || "-", String(e.SourceIPAddress || "-")].join("  ") + flags;
}

/** The numeric EventId (the record's number within the account). */
function seqOf(e: Event): number {
  return Number(e.EventId);
}

interface SearchFlags extends SearchFilters {
  since: string;
  until?: string;
  writes?: boolean;
  limit: number;
}

interface TailFlags {
  follow?: boolean;
  interval: number;
  lines: number;
}

interface OfflineFlags {
  dataDir: string;
  store?: string;
  pkcs11PinFile?: string;
  quiet?: boolean;
  json?: boolean;
}

/** Lines on stderr while a long run goes on, only on a terminal and without --quiet. */
function progressTo(flags: { quiet?: boolean | undefined }, what: string): ((n: number) => void) | undefined {
  if (flags.quiet || !process.stderr.isTTY) return undefined;
  return (n) => drawProgress(`${what} ${n} records…`);
}

function endProgress(flags: { quiet?: boolean | undefined }): void {
  if (!flags.quiet && process.stderr.isTTY) clearProgress();
}

async function pinnedKey(opts: { publicKey?: string; publicKeyFile?: string }): Promise<Buffer | undefined> {
  if (opts.publicKey !== undefined && opts.publicKeyFile !== undefined) throw new UsageError("give --public-key or --public-key-file, not both");
  let text: string | undefined = opts.publicKey;
  let where = "--public-key";
  if (opts.publicKeyFile !== undefined) {
    where = `--public-key-file ${opts.publicKeyFile}`;
    const raw = await readFile(opts.publicKeyFile).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${where}: ${e.code ?? e.message}`);
    });
    text = raw.length === 32 ? raw.toString("base64") : raw.toString("utf8").trim();
  }
  if (text === undefined) return undefined;
  const key = /^[A-Za-z0-9+/]{43}=$/.test(text) ? Buffer.from(text, "base64") : undefined;
  if (key === undefined || key.length !== 32) throw new UsageError(`${where} must be the base64 of a raw 32-byte Ed25519 public key (as "audit-public-key" in the store's meta, or an export's header)`);
  return key;
}

function printVerify(report: VerifyReport | ExportVerifyReport, keyNote: string, json: boolean | undefined): void {
  if (json) {
    printJson(report);
  } else {
    const range = report.firstSeq === undefined ? "" : ` (seq ${report.firstSeq} to ${report.lastSeq ?? report.firstSeq})`;
    const lines = [
      report.ok ? "audit log intact" : "audit log BROKEN",
      `  ${report.records} records${range} and ${report.checkpoints} checkpoints checked`,
      `  ${keyNote}`,
    ];
    const since = (report as Partial<ExportVerifyReport>).since;
    if (since !== undefined) lines.push(`  a partial export since ${since}: the records before seq ${report.firstSeq ?? "?"} were not checked`);
    if (report.firstBad !== undefined) lines.push(`  first bad record: seq ${report.firstBad.seq} (${report.firstBad.reason}): ${report.firstBad.detail}`);
    printLines(...lines);
  }
  if (!report.ok) process.exitCode = 1;
}

function offlineTarget(c: Command): Command {
  return c
    .option("--data-dir <dir>", "data directory (env TRESOR_DATA_DIR); with --store it holds only the root key", process.env.TRESOR_DATA_DIR ?? DEFAULT_DATA_DIR)
    .option("--store <url>", "a shared PostgreSQL store, postgres://… (env TRESOR_STORE); default: SQLite in the data directory", process.env.TRESOR_STORE)
    .option("--pkcs11-pin-file <file>", "file holding the HSM token PIN when the root key is in an HSM (otherwise env TRESOR_PKCS11_PIN)")
    .option("--quiet", "no progress on the terminal");
}

async function withDataDir<T>(flags: OfflineFlags, fn: (dataDir: Awaited<ReturnType<typeof openDataDir>>) => Promise<T>): Promise<T> {
  const dataDir = await openDataDir(flags.dataDir, { ...pinOption(flags.pkcs11PinFile), ...(flags.store === undefined ? {} : { store: flags.store }) });
  try {
    return await fn(dataDir);
  } finally {
    await dataDir.close();
  }
}

async function storePublicKey(dataDir: Awaited<ReturnType<typeof openDataDir>>): Promise<Buffer> {
  const text = await dataDir.store.getMeta(AUDIT_PUBLIC_KEY_META);
  if (text === undefined) throw new Error(`the store ${dataDir.storeDescription} has no audit log yet (no audit keys): start the server once`);
  return Buffer.from(text, "base64");
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command("audit").description("search, follow, export and verify the audit log");

  addClientOptions(
    audit
      .command("search")
      .description("search the audit log of your account through the server (CloudAudit LookUpEvents), newest first")
      .option("--since <time>", "from this time: ISO 8601, or a span before now such as 1h, 7d", "24h")
      .option("--until <time>", "up to this time (default: now)")
      .option("--user <name>", "only requests of this principal (root, a user's name, a role session's name)")
      .option("--action <name>", "only this action, e.g. Encrypt")
      .option("--key <key>", `only requests that acted on this key: ${KEY_HELP}`)
      .option("--access-key <secretId>", "only requests signed with this SecretId")
      .addOption(new Option("--read-only", "only requests that read").conflicts("writes"))
      .option("--writes", "only requests that change something")
      .option("--flag <flag>", "only records with this flag: policy-denied, pending-delete-key-use, signature-failures, signature-reused, failed-auth-summary, untracked-sources")
      .option("--limit <n>", "at most this many events", integerArg(1, 1_000_000), 100),
  ).action((flags: SearchFlags, cmd: Command) =>
    runWithClient(
      cmd,
      () => {
        const now = Date.now();
        const since = parseTime(flags.since, "--since", now);
        const until = flags.until === undefined ? Math.floor(now / 1000) : parseTime(flags.until, "--until", now);
        if (until < since) throw new UsageError("--until must not be before --since");
        const filters: SearchFilters = {
          ...(flags.user === undefined ? {} : { user: flags.user }),
          ...(flags.action === undefined ? {} : { action: flags.action }),
          ...(flags.key === undefined ? {} : { key: flags.key }),
          ...(flags.accessKey === undefined ? {} : { accessKey: flags.accessKey }),
          ...(flags.readOnly ? { readOnly: true } : flags.writes ? { readOnly: false } : {}),
          ...(flags.flag === undefined ? {} : { flag: flags.flag }),
        };
        return { since, until, filters };
      },
      async (client, { since, until, filters }, { json }) => {
        const keyFilter = filters.key === undefined ? {} : { key: await resolveKeyId(client, filters.key) };
        const events: Event[] = [];
        for await (const e of searchEvents(client, since, until, { ...filters, ...keyFilter }, flags.limit)) {
          if (json) events.push(e);
          else printLines(eventLine(e));
        }
        if (json) printJson({ Events: events });
        else if (events.length === 0 && process.stdout.isTTY) printErrorLines("(no events)");
      },
    ),
  );

  addClientOptions(
    audit
      .command("tail")
      .description("print the newest events of your account; with -f keep printing new ones until interrupted")
      .option("-f, --follow", "keep polling for new events (stop with Ctrl-C)")
      .option("--interval <seconds>", "seconds between polls with -f", integerArg(1, 3600), 2)
      .option("-n, --lines <n>", "how many of the newest events to print first", integerArg(0, 10_000), 20),
  ).action((flags: TailFlags, cmd: Command) =>
    runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const print = (e: Event) => (json ? printJson(e) : printLines(eventLine(e)));
        const nowSeconds = () => Math.floor(Date.now() / 1000);
        const first = nowSeconds();
        // Each poll is a request, and leaves a record: those of this tail are not printed.
        const own = new Set<string>();
        const newest: Event[] = [];
        // With -n 0 the newest event is still read: -f starts after it.
        for await (const e of searchEvents(client, first - WINDOW_SECONDS, first + 60, {}, Math.max(1, flags.lines), own)) newest.push(e);
        newest.reverse();
        if (flags.lines > 0) newest.forEach(print);
        if (!flags.follow) return;

        let lastSeq = newest.length === 0 ? 0 : seqOf(newest.at(-1)!);
        let lastTime = newest.length === 0 ? first : Number(newest.at(-1)!.EventTime);
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
        try {
          while (!stop.signal.aborted) {
            try {
              await sleep(flags.interval * 1000, undefined, { signal: stop.signal });
            } catch {
              break; // interrupted
            }
            // Records of several nodes may arrive a little out of time order, and events come newest
            // by time: look back 5 minutes, keep the EventIds not yet printed, print them in order.
            const now = nowSeconds();
            const fresh: Event[] = [];
            for await (const e of searchEvents(client, Math.max(lastTime - 300, now - WINDOW_SECONDS + 60), now + 60, {}, Infinity, own)) {
              if (seqOf(e) > lastSeq) fresh.push(e);
            }
            if (stop.signal.aborted) break;
            fresh.sort((a, b) => seqOf(a) - seqOf(b));
            for (const e of fresh) if (!own.delete(String(e.RequestID))) print(e);
            const last = fresh.at(-1);
            if (last !== undefined) {
              lastSeq = seqOf(last);
              lastTime = Math.max(lastTime, Number(last.EventTime));
            }
          }
        } finally {
          process.removeListener("SIGINT", onSignal);
          process.removeListener("SIGTERM", onSignal);
        }
      },
    ),
  );

  offlineTarget(
    audit
      .command("export")
      .description("write the store's audit log (records and signed checkpoints) to a JSON-lines file, offline, for `tresor audit verify --from-export`")
      .requiredOption("--out <file>", "the file to write (must not exist)")
      .option("--since <time>", "only the records from this time on (ISO 8601, or a span before now such as 7d); default: the whole log")
      .addOption(new Option("--format <format>", "the file format").choices(["jsonl"]).default("jsonl")),
  ).action(async (flags: OfflineFlags & { out: string; since?: string; format: string }) => {
    try {
      const fromTime = flags.since === undefined ? undefined : parseTime(flags.since, "--since") * 1000;
      await withDataDir(flags, async (dataDir) => {
        const publicKey = await storePublicKey(dataDir);
        const progress = progressTo(flags, "exported");
        const counts = await exportAudit(dataDir.store, flags.out, publicKey, undefined, {
          ...(fromTime === undefined ? {} : { fromTime }),
          ...(progress === undefined ? {} : { progress }),
        });
        endProgress(flags);
        printLines(
          `wrote ${resolve(flags.out)}: ${counts.records} records and ${counts.checkpoints} checkpoints${fromTime === undefined ? "" : ` (from ${new Date(fromTime).toISOString()} on)`}`,
          `  audit public key (pin it when you verify): ${publicKey.toString("base64")}`,
        );
      });
    } catch (err) {
      endProgress(flags);
      reportError(err);
    }
  });

  offlineTarget(
    audit
      .command("verify")
      .description("check the audit log's hash chain and signed checkpoints, in the store (offline) or in an export file; exits 1 when it is broken")
      .option("--from-export <file>", "verify this export file instead of the store")
      .option("--public-key <base64>", "the audit public key to trust (pin it: the store's or the file's own word proves only consistency)")
      .option("--public-key-file <file>", "a file holding that key (base64, or the raw 32 bytes)")
      .option("--json", "print the report as one JSON object"),
  ).action(async (flags: OfflineFlags & { fromExport?: string; publicKey?: string; publicKeyFile?: string }) => {
    try {
      const pinned = await pinnedKey(flags);
      const progress = progressTo(flags, "verified");
      if (flags.fromExport !== undefined) {
        const report = await verifyAuditExport(flags.fromExport, pinned, progress);
        endProgress(flags);
        const note =
          pinned === undefined
            ? `checked against the public key the file names (${report.exportPublicKey}); pin one with --public-key to prove more than consistency`
            : report.publicKeyMatches
              ? `checked against the pinned public key ${pinned.toString("base64")}`
              : `the file names another public key (${report.exportPublicKey}) than the pinned one (${pinned.toString("base64")})`;
        printVerify(report, note, flags.json);
        return;
      }
      await withDataDir(flags, async (dataDir) => {
        const own = await storePublicKey(dataDir);
        const key = pinned ?? own;
        const report = await verifyStoreAudit(dataDir.store, key, progress);
        endProgress(flags);
        const note =
          pinned === undefined
            ? `checked against the store's own public key (${own.toString("base64")}); pin one with --public-key to prove more than consistency`
            : pinned.equals(own)
              ? `checked against the pinned public key ${pinned.toString("base64")}`
              : `the store names another public key (${own.toString("base64")}) than the pinned one (${pinned.toString("base64")})`;
        printVerify(report, note, flags.json);
      });
    } catch (err) {
      endProgress(flags);
      reportError(err);
    }
  });
}
