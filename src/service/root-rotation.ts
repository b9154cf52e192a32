// Root key generations and `tresor rootkey rotate`: a new root key is made and every value the
// root of trust wrapped (key versions of SOFTWARE keys, access-key secrets, import tokens, the root
// check value and the service secrets in meta) is rewrapped under it while nodes keep serving.
//
// The store's meta entry "root_key_ring" says which generations exist, which one wraps new values,
// and how far a rotation has got; a value names the generation that wrapped it (see
// rootkey/ring.ts), so during a rotation every node unwraps old and new values alike. The rotation
// records its cursor after every page and every step, so a crash anywhere is resumed by running
// the command again. When every value is on the new generation the old one is retired: its key
// file is kept as root.key.old (pkcs11: its token key stays in the token) until the operator
// removes it.

import { constants } from "node:fs";
import { access, open, rename, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FileRootOfTrust } from "../rootkey/file.js";
import { Pkcs11RootOfTrust } from "../rootkey/pkcs11.js";
import { RootKeyRing, wrappedGeneration } from "../rootkey/ring.js";
import { accessKeySecretAad, importTokenAad, keyMaterialAad, RootOfTrustError, serviceSecretAad, type RootOfTrust } from "../rootkey/root-of-trust.js";
import { WRAPPED_VALUE_KINDS, type Store, type StoreOperations, type WrappedValueKind, type WrappedValuePosition } from "../store/store.js";

export const META_ROOT_KEY_RING = "root_key_ring";
export const ROOT_KEY_NEXT_FILE = "root.key.next";
export const ROOT_KEY_OLD_FILE = "root.key.old";
const ROOT_KEY_FILE = "root.key";
/** Where a file generation's key may be, whatever step of a retirement a crash stopped at; the check value picks the right one. */
const FILE_CANDIDATES = [ROOT_KEY_FILE, ROOT_KEY_NEXT_FILE, ROOT_KEY_OLD_FILE];

/** What a generation's root key is: the same shapes as data-dir's RootOfTrustSetting. */
export type GenerationSetting = { kind: "file" } | { kind: "pkcs11"; module: string; tokenLabel: string; keyLabel: string };

interface GenerationEntry {
  setting: GenerationSetting;
  /** file: the key file's name in the data directory. */
  file?: string;
  /** base64 of a constant wrapped by this generation (with its generation header), so the right key is told apart. */
  check?: string;
}

export interface RotationProgress {
  from: number;
  to: number;
  /** rewrap: the first pass, from `kind`/`after`; sweep: passes from the start until one finds nothing old; retire: only the retirement is left. */
  phase: "rewrap" | "sweep" | "retire";
  kind: WrappedValueKind | "meta";
  after: WrappedValuePosition | null;
  rewrapped: number;
}

export interface RingState {
  current: number;
  generations: Record<string, GenerationEntry>;
  rotation?: RotationProgress;
  /** Generations retired by earlier rotations, for the record. */
  retired?: number[];
}

const GENERATION_CHECK_PLAINTEXT = Buffer.from("tresor root key generation check", "utf8");
const generationCheckAad = (generation: number) => Buffer.from(`tresor/root-generation-check/v1\0${generation}`, "utf8");
/** The meta entries wrapped by the root of trust, with their authenticated data. */
function wrappedMeta(options: RotateOptions): [string, Buffer][] {
  const { name, aad } = options.rootCheck;
  return [[name, aad], ...options.serviceSecretNames.map((secret): [string, Buffer] => [secret, serviceSecretAad(secret)])];
}

// ---- the ring a node serves with ---------------------------------------------------------------

export interface RingContext {
  /** The data directory (file root keys live there). */
  dir: string;
  pin: string | undefined;
  /** The setting recorded by init (meta "root_of_trust"): generation 0 when no ring is recorded yet. */
  initialSetting: GenerationSetting;
}

export async function readRing(store: Pick<StoreOperations, "getMeta">, initialSetting: GenerationSetting): Promise<RingState> {
  const text = await store.getMeta(META_ROOT_KEY_RING);
  if (text === undefined) return { current: 0, generations: { "0": { setting: initialSetting, ...(initialSetting.kind === "file" ? { file: ROOT_KEY_FILE } : {}) } } };
  const state = JSON.parse(text) as RingState;
  if (!Number.isSafeInteger(state.current) || typeof state.generations !== "object" || state.generations === null || !(String(state.current) in state.generations)) {
    throw new Error(`meta ${META_ROOT_KEY_RING} is not a root key ring this Tresor understands`);
  }
  return state;
}

/** Opens the data's root keys as a ring: the current generation now, the others when a value needs them. */
export async function openRing(store: Store, context: RingContext): Promise<RootKeyRing> {
  const state = await readRing(store, context.initialSetting);
  const load = async (generation: number): Promise<RootOfTrust> => {
    const entry = (await readRing(store, context.initialSetting)).generations[String(generation)];
    if (entry === undefined) throw new Error(`root key generation ${generation} is not recorded in the store (retired, or never made)`);
    return openGeneration(generation, entry, context);
  };
  const root = await openGeneration(state.current, state.generations[String(state.current)]!, context);
  return new RootKeyRing(state.current, root, { load, currentGeneration: async () => (await readRing(store, context.initialSetting)).current });
}

async function openGeneration(generation: number, entry: GenerationEntry, context: RingContext): Promise<RootOfTrust> {
  const { setting } = entry;
  if (setting.kind === "pkcs11") {
    if (context.pin === undefined) throw new Error(`the root key is in the PKCS#11 token "${setting.tokenLabel}": give its PIN in TRESOR_PKCS11_PIN or with --pkcs11-pin-file`);
    const root = await Pkcs11RootOfTrust.open({ module: setting.module, tokenLabel: setting.tokenLabel, keyLabel: setting.keyLabel, pin: context.pin });
    if (entry.check !== undefined && !(await checks(root, generation, entry.check))) {
      await root.close();
      throw new Error(`the token key "${setting.keyLabel}" is not root key generation ${generation}`);
    }
    return root;
  }
  const recorded = entry.file ?? ROOT_KEY_FILE;
  // Without a check value (generation 0 before any rotation) the recorded file is the key, as before rings existed.
  if (entry.check === undefined) return FileRootOfTrust.open(join(context.dir, recorded));
  for (const name of [recorded, ...FILE_CANDIDATES.filter((n) => n !== recorded)]) {
    let root: FileRootOfTrust;
    try {
      root = await FileRootOfTrust.open(join(context.dir, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    if (await checks(root, generation, entry.check)) return root;
    await root.close();
  }
  throw new Error(`no key file in ${context.dir} is root key generation ${generation} (looked at ${FILE_CANDIDATES.join(", ")})`);
}

async function checks(root: RootOfTrust, generation: number, check: string): Promise<boolean> {
  const wrapped = Buffer.from(check, "base64");
  try {
    const plaintext = await root.unwrap(generation === 0 ? wrapped : wrapped.subarray(5), generationCheckAad(generation));
    const same = plaintext.equals(GENERATION_CHECK_PLAINTEXT);
    plaintext.fill(0);
    return same;
  } catch (e) {
    if (e instanceof RootOfTrustError) return false;
    throw e;
  }
}

// ---- the rotation ------------------------------------------------------------------------------

export interface RotateOptions {
  store: Store;
  ring: RootKeyRing;
  context: RingContext;
  /** The shared store's root check value: its meta name and authenticated data (data-dir's). */
  rootCheck: { name: string; aad: Buffer };
  /** The service secrets kept wrapped in meta (the service's SERVICE_SECRET_NAMES). */
  serviceSecretNames: readonly string[];
  /** Called with the new generation's setting once the rotation completes (data-dir records it as "root_of_trust"). */
  recordSetting(tx: StoreOperations, setting: GenerationSetting): Promise<void>;
  /** How long nodes get to notice the new current generation before the first pass (default 5 s; they look every second). */
  graceMs?: number;
  /** Values per page (default 200). */
  pageSize?: number;
  /** Progress lines, for the CLI. */
  progress?: (line: string) => void;
  /** Tests: fail (as a crash would) after rewrapping this many values in this run. */
  failAfterRewraps?: number;
}

export interface RotateResult {
  from: number;
  to: number;
  rewrapped: number;
  resumed: boolean;
  /** file: the retired key file, kept for the operator to remove. */
  retiredFile?: string;
}

export class RotationInterruptedError extends Error {
  override readonly name = "RotationInterruptedError";
}

export async function rotateRootKey(options: RotateOptions): Promise<RotateResult> {
  const { store, ring, context } = options;
  const progress = options.progress ?? (() => {});
  let state = await readRing(store, context.initialSetting);
  const resumed = state.rotation !== undefined;
  let rewrappedThisRun = 0;

  if (state.rotation === undefined) {
    state = await beginRotation(options, state);
    progress(`root key generation ${state.rotation!.to} created; waiting for nodes to start wrapping with it`);
    await sleep(options.graceMs ?? 5_000);
  } else {
    progress(`resuming the rotation from generation ${state.rotation.from} to ${state.rotation.to} (${state.rotation.phase}, ${state.rotation.rewrapped} values rewrapped so far)`);
  }
  const to = state.rotation!.to;
  const from = state.rotation!.from;
  // The new key must open here before anything is rewrapped with it.
  await ring.root(to);

  const rewrapOne = async (kind: WrappedValueKind, position: WrappedValuePosition, wrapped: Buffer): Promise<boolean> => {
    if (wrappedGeneration(wrapped) === to) return false;
    const aad = kind === "keyVersion" ? keyMaterialAad(position.id, position.version) : kind === "accessKey" ? accessKeySecretAad(position.id) : importTokenAad(position.id);
    let plaintext: Buffer;
    try {
      plaintext = await ring.unwrap(wrapped, aad);
    } catch (e) {
      if (e instanceof RootOfTrustError) throw new Error(`the ${kind} value at ${position.id}/${position.version} does not unwrap: ${e.message}; nothing was changed for it`, { cause: e });
      throw e;
    }
    let replacement: Buffer;
    try {
      replacement = await ring.wrapWith(to, plaintext, aad);
    } finally {
      plaintext.fill(0);
    }
    if (options.failAfterRewraps !== undefined && rewrappedThisRun >= options.failAfterRewraps) throw new RotationInterruptedError(`interrupted after ${rewrappedThisRun} values (as asked)`);
    // False: deleted meanwhile (or another run rewrapped it); the sweep looks again either way.
    const replaced = await store.replaceWrappedValue(kind, position, wrapped, replacement);
    if (replaced) rewrappedThisRun++;
    return replaced;
  };

  const rewrapMeta = async (): Promise<number> => {
    let count = 0;
    for (const [name, aad] of wrappedMeta(options)) {
      const value = await store.getMeta(name);
      if (value === undefined) continue;
      const wrapped = Buffer.from(value, "base64");
      if (wrappedGeneration(wrapped) === to) continue;
      const plaintext = await ring.unwrap(wrapped, aad);
      let replacement: string;
      try {
        replacement = (await ring.wrapWith(to, plaintext, aad)).toString("base64");
      } finally {
        plaintext.fill(0);
      }
      const done = await store.transaction(async (tx) => {
        if ((await tx.getMeta(name)) !== value) return false;
        await tx.setMeta(name, replacement);
        return true;
      });
      if (done) count++;
    }
    return count;
  };

  const save = async (rotation: RotationProgress): Promise<void> => {
    await store.transaction(async (tx) => {
      const current = await readRing(tx, context.initialSetting);
      if (current.rotation?.to !== to) throw new Error(`the root key rotation to generation ${to} is no longer recorded in the store: another run finished or replaced it`);
      await tx.setMeta(META_ROOT_KEY_RING, JSON.stringify({ ...current, rotation }));
    });
    state = { ...state, rotation };
  };

  // One pass over every kind from (kind, after); returns how many old values it rewrapped.
  const pass = async (startKind: WrappedValueKind | "meta", startAfter: WrappedValuePosition | null, phase: "rewrap" | "sweep"): Promise<number> => {
    let found = 0;
    const kinds: (WrappedValueKind | "meta")[] = [...WRAPPED_VALUE_KINDS, "meta"];
    for (const kind of kinds.slice(kinds.indexOf(startKind))) {
      let after = kind === startKind ? startAfter : null;
      if (kind === "meta") {
        found += await rewrapMeta();
        await save({ ...state.rotation!, phase, kind, after: null, rewrapped: state.rotation!.rewrapped });
        continue;
      }
      for (;;) {
        const page = await store.listWrappedValues(kind, after, options.pageSize ?? 200);
        if (page.length === 0) break;
        let rewrapped = 0;
        try {
          for (const value of page) {
            if (await rewrapOne(kind, { id: value.id, version: value.version }, value.wrapped)) rewrapped++;
            after = { id: value.id, version: value.version };
          }
        } finally {
          // The cursor covers what was done, also when this page stopped part-way.
          found += rewrapped;
          if (after !== null) await save({ ...state.rotation!, phase, kind, after, rewrapped: state.rotation!.rewrapped + rewrapped });
        }
        progress(`${kind}: rewrapped ${state.rotation!.rewrapped} values so far`);
      }
    }
    return found;
  };

  if (state.rotation!.phase === "rewrap") {
    await pass(state.rotation!.kind, state.rotation!.after, "rewrap");
    await save({ ...state.rotation!, phase: "sweep", kind: "keyVersion", after: null });
  }
  if (state.rotation!.phase === "sweep") {
    // Values a node wrapped with the old generation just before it noticed the new one, or wrote
    // behind the cursor: pass again until a whole pass finds none.
    for (let round = 1; ; round++) {
      const whole = state.rotation!.kind === "keyVersion" && state.rotation!.after === null;
      const found = await pass(state.rotation!.kind, state.rotation!.after, "sweep");
      progress(`sweep ${round}: ${found} values still on generation ${from}`);
      if (found === 0 && whole) break;
      await save({ ...state.rotation!, kind: "keyVersion", after: null });
    }
    await save({ ...state.rotation!, phase: "retire", kind: "meta", after: null });
  }
  const retiredFile = await retire(options, state, from, to);
  progress(`root key generation ${from} retired; generation ${to} wraps everything`);
  return { from, to, rewrapped: state.rotation?.rewrapped ?? 0, resumed, ...(retiredFile === undefined ? {} : { retiredFile }) };
}

/** Makes generation current+1 and records it as current, with a rotation at its start. */
async function beginRotation(options: RotateOptions, state: RingState): Promise<RingState> {
  const { store, ring, context } = options;
  const from = state.current;
  const to = from + 1;
  const fromEntry = state.generations[String(from)]!;
  const setting = fromEntry.setting;
  let created: RootOfTrust;
  let entry: GenerationEntry;
  if (setting.kind === "file") {
    const old = join(context.dir, ROOT_KEY_OLD_FILE);
    if (await exists(old)) {
      throw new Error(`${old} is still there from the last rotation: keep a copy if old backups need it, remove it, then rotate again`);
    }
    const next = join(context.dir, ROOT_KEY_NEXT_FILE);
    // Made by a run that stopped before recording it: nothing was wrapped with it.
    await unlink(next).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e;
    });
    created = await FileRootOfTrust.create(next);
    entry = { setting, file: ROOT_KEY_NEXT_FILE };
  } else {
    const base = (state.generations["0"]?.setting as typeof setting | undefined)?.keyLabel ?? setting.keyLabel;
    const keyLabel = `${base.replace(/\.g[0-9]+$/, "")}.g${to}`;
    if (context.pin === undefined) throw new Error(`the root key is in the PKCS#11 token "${setting.tokenLabel}": give its PIN in TRESOR_PKCS11_PIN or with --pkcs11-pin-file`);
    const config = { module: setting.module, tokenLabel: setting.tokenLabel, keyLabel, pin: context.pin };
    // A key of that label made by a run that stopped before recording it wrapped nothing: take it.
    created = await Pkcs11RootOfTrust.create(config).catch(async (e: Error) => {
      if (!/already holds a secret key labelled/.test(e.message)) throw e;
      return Pkcs11RootOfTrust.open(config);
    });
    entry = { setting: { ...setting, keyLabel } };
  }
  try {
    entry.check = await withHeader(to, await created.wrap(GENERATION_CHECK_PLAINTEXT, generationCheckAad(to)));
    const fromCheck = fromEntry.check ?? (await withHeader(from, await (await ring.root(from)).wrap(GENERATION_CHECK_PLAINTEXT, generationCheckAad(from))));
    const rotation: RotationProgress = { from, to, phase: "rewrap", kind: "keyVersion", after: null, rewrapped: 0 };
    return await store.transaction(async (tx) => {
      const current = await readRing(tx, context.initialSetting);
      if (current.rotation !== undefined || current.current !== from) throw new Error("another root key rotation started meanwhile; run the command again to resume it");
      const next: RingState = {
        ...current,
        current: to,
        generations: { ...current.generations, [String(from)]: { ...fromEntry, check: fromCheck }, [String(to)]: entry },
        rotation,
      };
      await tx.setMeta(META_ROOT_KEY_RING, JSON.stringify(next));
      return next;
    });
  } finally {
    await created.close();
  }
}

async function withHeader(generation: number, inner: Buffer): Promise<string> {
  if (generation === 0) return inner.toString("base64");
  const header = Buffer.alloc(5);
  header[0] = 0x47;
  header.writeUInt32BE(generation, 1);
  return Buffer.concat([header, inner]).toString("base64");
}

/**
 * Retires generation `from`: file keys are renamed (root.key → root.key.old, root.key.next →
 * root.key; each step skipped when already done, so a crash between them resumes), then the ring
 * forgets `from` and the rotation in one transaction.
 */
async function retire(options: RotateOptions, state: RingState, from: number, to: number): Promise<string | undefined> {
  const { store, context } = options;
  const toEntry = state.generations[String(to)]!;
  let retiredFile: string | undefined;
  if (toEntry.setting.kind === "file") {
    const current = join(context.dir, ROOT_KEY_FILE);
    const next = join(context.dir, ROOT_KEY_NEXT_FILE);
    const old = join(context.dir, ROOT_KEY_OLD_FILE);
    if (await exists(next)) {
      if ((await exists(current)) && !(await exists(old))) await rename(current, old);
      await rename(next, current);
      await syncDirectory(context.dir);
    }
    retiredFile = old;
  }
  await store.transaction(async (tx) => {
    const ring = await readRing(tx, context.initialSetting);
    if (ring.rotation?.to !== to) return;
    const generations = { ...ring.generations };
    delete generations[String(from)];
    if (toEntry.setting.kind === "file") generations[String(to)] = { ...toEntry, file: ROOT_KEY_FILE };
    const { rotation: _done, ...rest } = ring;
    await tx.setMeta(META_ROOT_KEY_RING, JSON.stringify({ ...rest, generations, retired: [...(ring.retired ?? []), from] }));
    await options.recordSetting(tx, toEntry.setting);
  });
  return retiredFile;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(dirname(join(path, ".")), constants.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
