// Errors of the PKCS#11 root of trust: what the binding throws, named by its CKR value, and which
// return values mean the token is unavailable rather than the request wrong.

import pkcs11js from "pkcs11js";
import { RootOfTrustError } from "./root-of-trust.js";

/** A PKCS#11 function returned something other than CKR_OK. Carries the CKR name and the function, never arguments. */
export class Pkcs11Error extends Error {
  override readonly name = "Pkcs11Error";
  constructor(
    /** The PKCS#11 function, e.g. "C_Login". */
    readonly fn: string,
    /** The return value's name, e.g. "CKR_PIN_INCORRECT" (or CKR_VENDOR_DEFINED+0x… / CKR_0x…). */
    readonly ckr: string,
    /** The raw CK_RV. */
    readonly code: number,
    context?: string,
  ) {
    super(`${context === undefined ? "" : `${context}: `}${fn} returned ${ckr}`);
  }
}

// --- errors and their meaning ----------------------------------------------------------------

const CKR_NAMES = (() => {
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(pkcs11js)) {
    if (name.startsWith("CKR_") && typeof value === "number" && !names.has(value)) names.set(value, name);
  }
  return names;
})();
const CKR_VENDOR_DEFINED = 0x80000000;

function ckrName(code: number): string {
  const known = CKR_NAMES.get(code);
  if (known !== undefined) return known;
  if (code >= CKR_VENDOR_DEFINED) return `CKR_VENDOR_DEFINED+0x${(code - CKR_VENDOR_DEFINED).toString(16)}`;
  return `CKR_0x${code.toString(16)}`;
}

/** A failure inside the module or binding that carries no CK_RV (a crashed or unloaded module). */
export class Pkcs11ModuleError extends Error {
  override readonly name = "Pkcs11ModuleError";
}

/** Runs one PKCS#11 call, turning what the binding throws into a `Pkcs11Error` named after `fn`. */
export function call<T>(fn: string, thunk: () => T, context?: string): T {
  try {
    return thunk();
  } catch (err) {
    throw translate(fn, err, context);
  }
}

export function translate(fn: string, err: unknown, context?: string): Error {
  // A TypeError is a wrong argument from this file: a bug, not a token condition.
  if (err instanceof TypeError) return err;
  if (err instanceof pkcs11js.Pkcs11Error) {
    // The binding's message is the CKR name; take only that (the binding's stack is not ours to show).
    const name = /^CKR_[A-Z0-9_]+$/.test(err.message) ? err.message : ckrName(err.code);
    return new Pkcs11Error(fn, name, err.code, context);
  }
  const detail = err instanceof Error ? err.message.split("\n")[0] ?? "" : "unknown failure";
  return new Pkcs11ModuleError(`${context === undefined ? "" : `${context}: `}${fn} failed in the PKCS#11 module: ${detail}`);
}

// Return values that mean the token, session or module is gone or broken rather than the request.
export const UNAVAILABLE = new Set([
  "CKR_DEVICE_REMOVED",
  "CKR_DEVICE_ERROR",
  "CKR_DEVICE_MEMORY",
  "CKR_TOKEN_NOT_PRESENT",
  "CKR_TOKEN_NOT_RECOGNIZED",
  "CKR_SESSION_HANDLE_INVALID",
  "CKR_SESSION_CLOSED",
  "CKR_SLOT_ID_INVALID",
  "CKR_CRYPTOKI_NOT_INITIALIZED",
  "CKR_USER_NOT_LOGGED_IN",
  // The key handle was valid a moment ago: SoftHSM2 answers this when the token's storage vanished.
  "CKR_OBJECT_HANDLE_INVALID",
  "CKR_KEY_HANDLE_INVALID",
  "CKR_HOST_MEMORY",
]);
// Also unavailability, except from C_Decrypt, where SoftHSM2 reports a GCM tag mismatch this way.
const FAILED = new Set(["CKR_GENERAL_ERROR", "CKR_FUNCTION_FAILED"]);

export function isUnavailable(err: unknown): boolean {
  if (err instanceof Pkcs11ModuleError) return true;
  return err instanceof Pkcs11Error && (UNAVAILABLE.has(err.ckr) || FAILED.has(err.ckr));
}

export function unwrapFailed(): RootOfTrustError {
  return new RootOfTrustError("the wrapped value could not be unwrapped");
}

export function checkBuffer(name: string, value: unknown): void {
  if (!Buffer.isBuffer(value)) throw new TypeError(`"${name}" must be a Buffer`);
}
