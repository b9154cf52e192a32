// What `tresor serve` prints: its log stream (JSON lines, or readable lines on a terminal), the
// first-run banner with ready-to-paste export lines, and a listen failure in words.

import { X509Certificate, createPrivateKey } from "node:crypto";
import path from "node:path";
import { pino } from "pino";
import { ConfigError } from "../node/config.js";
import { escapeControls } from "./output.js";

export type LogFormat = "json" | "pretty";

export interface LogSink {
  stream: { write(line: string): void };
  flush(): void;
  flushSync(): void;
}

/** --log-format (env TRESOR_LOG_FORMAT): json or pretty; default pretty on a terminal, else json. */
export function logFormat(flag: string | undefined, isTTY: boolean): LogFormat {
  const value = flag ?? process.env["TRESOR_LOG_FORMAT"];
  if (value === undefined || value === "") return isTTY ? "pretty" : "json";
  if (value !== "json" && value !== "pretty") throw new ConfigError(`--log-format must be json or pretty, got ${JSON.stringify(value)}`);
  return value;
}

/** JSON lines to stdout, buffered (flushed each second and on exit); or readable lines, written at once. */
export function logSink(format: LogFormat): LogSink {
  if (format === "json") {
    // Buffered: request lines are written in batches instead of one write(2) each.
    const dest = pino.destination({ dest: 1, sync: false, minLength: 8192 });
    return { stream: dest, flush: () => dest.flush(), flushSync: () => dest.flushSync() };
  }
  return { stream: { write: (line: string) => void process.stdout.write(prettyLogLine(line)) }, flush: () => {}, flushSync: () => {} };
}

const LEVELS: Readonly<Record<number, string>> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
/** Fields every line carries (the logger's base), left out of readable lines. */
const QUIET = new Set(["time", "level", "msg", "service", "node", "pid", "hostname"]);

/** One pino JSON line as `07:31:02 INFO  listening url=http://… region=local`. */
export function prettyLogLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof record.time === "number" ? new Date(record.time).toISOString().slice(11, 19) : "--:--:--";
  const level = (LEVELS[record.level as number] ?? String(record.level)).padEnd(5);
  const fields = Object.entries(record)
    .filter(([k]) => !QUIET.has(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  return `${escapeControls([time, level, String(record.msg ?? ""), ...fields].join(" "))}\n`;
}

/** The lines a person at a terminal needs to start using the server. */
export function readyBanner(url: string, dataDir: string): string[] {
  const dir = path.resolve(dataDir);
  const credentials = path.join(dir, "admin-credentials.json");
  const read = (field: string) => `$(node -p 'require(${JSON.stringify(credentials)}).${field}')`;
  return [
    `Tresor is listening on ${url}`,
    "In another terminal, paste these lines (the CLI then finds the server and its credentials):",
    `  export TRESOR_ENDPOINT=${url}`,
    `  export TRESOR_DATA_DIR=${shellQuote(dir)}`,
    "and for the SDKs (README.md), the administrator's access key:",
    `  export TRESOR_SECRET_ID=${read("secretId")}`,
    `  export TRESOR_SECRET_KEY=${read("secretKey")}`,
  ];
}

/** The sentence for a failed listen: the address, the port and the flag that changes it. */
export function listenFailure(code: string | undefined, host: string, port: number): string {
  if (code === "EADDRINUSE") return `error: port ${port} on ${host} is already in use (EADDRINUSE): stop the other server or choose another port with --port (env TRESOR_PORT)`;
  if (code === "EACCES") return `error: not allowed to listen on ${host}:${port} (EACCES): choose a port above 1023 with --port`;
  if (code === "EADDRNOTAVAIL") return `error: ${host} is not an address of this machine (EADDRNOTAVAIL): check --host`;
  return `error: could not listen on ${host}:${port} (${code ?? "unknown error"})`;
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Why --tls-cert and --tls-key cannot serve together, in words (swapped, not PEM, not a pair);
 * undefined when they can. OpenSSL's own message ("PEM routines::no start line") names neither flag.
 */
export function tlsFilesProblem(cert: Buffer, key: Buffer): string | undefined {
  const isCert = (pem: Buffer) => pem.includes("-----BEGIN CERTIFICATE-----");
  const isKey = (pem: Buffer) => /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(pem.toString("latin1"));
  if (isKey(cert) && isCert(key)) return "--tls-cert holds a private key and --tls-key a certificate: the two files are swapped";
  if (!isCert(cert)) return "--tls-cert holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
  if (!isKey(key)) return "--tls-key holds no PEM private key (-----BEGIN PRIVATE KEY-----), or it is encrypted";
  try {
    if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) return "--tls-key is not the private key of the first certificate in --tls-cert";
  } catch (err) {
    return `--tls-cert or --tls-key cannot be read: ${(err as Error).message}`;
  }
  return undefined;
}
