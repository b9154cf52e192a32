// Everything the CLI prints goes through these printers. A string from a server (a key's
// description, an error message, an audit record) or from a file may hold terminal controls: ESC
// and C1 sequences rewrite the screen or the window title, BEL rings, bidi overrides show text in
// another order than it is. Printed raw, they would reach the administrator's terminal; so every
// printer escapes them, and a test checks that no command writes to stdout or stderr around them.

/**
 * Characters shown escaped in human output: C0 controls (newline and tab too: a line is one line,
 * so a value cannot fake the lines after it), DEL, C1 controls, and the Unicode bidi controls and
 * line separators.
 */
const UNSAFE_TEXT = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, less what JSON.stringify already escapes (C0): JSON text may hold them only inside strings. */
const UNSAFE_IN_JSON = /[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function hex(c: string, width: number): string {
  return c.charCodeAt(0).toString(16).padStart(width, "0");
}

/** `text` with every control character shown as an escape (\n, \x1b, \u202e); other text unchanged. */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE_TEXT, (c) => NAMED[c] ?? (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/** JSON text of `value` with no raw control character: JSON.stringify, and \u escapes for DEL, C1 and bidi controls (the same JSON value). */
export function safeJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(UNSAFE_IN_JSON, (c) => `\\u${hex(c, 4)}`);
}

/** `value` as indented JSON (safeJson), one line per element: for printLines. */
export function jsonLines(value: unknown): string[] {
  return safeJson(value, 2).split("\n");
}

/** Writes lines to `out`, each escaped: an argument is exactly one line of output. */
export function writeLines(out: NodeJS.WritableStream, lines: readonly string[]): void {
  out.write(lines.map((line) => `${escapeControls(line)}\n`).join(""));
}

/** Human output on stdout: one escaped line per argument. */
export function printLines(...lines: string[]): void {
  writeLines(process.stdout, lines);
}

/** Messages on stderr: one escaped line per argument. */
export function printErrorLines(...lines: string[]): void {
  writeLines(process.stderr, lines);
}

/** --json output on stdout: one JSON object per line. */
export function printJson(value: unknown): void {
  process.stdout.write(`${safeJson(value)}\n`);
}

/** A progress line on stderr, redrawn in place (carriage return, erase to the end of the line); `final` ends it. */
export function drawProgress(line: string, final = false): void {
  process.stderr.write(`\r${escapeControls(line)}\x1b[K${final ? "\n" : ""}`);
}

/** Erases a progress line that drawProgress left unfinished. */
export function clearProgress(): void {
  process.stderr.write("\r\x1b[K");
}
