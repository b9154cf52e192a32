// A secret of the service itself (not of a key): 32 random bytes made once per store, kept in meta
// wrapped by the root of trust (authenticated data: its name), unwrapped once per process.
// Root key rotation rewraps every name listed in SERVICE_SECRET_NAMES.

import { randomBytes } from "../crypto/random.js";
import { serviceSecretAad, type RootOfTrust } from "../rootkey/root-of-trust.js";
import type { Store } from "../store/store.js";

export class ServiceSecret {
  #value: Buffer | undefined;
  #loading: Promise<Buffer> | undefined;

  constructor(
    private readonly store: Store,
    private readonly root: RootOfTrust,
    readonly name: string,
  ) {}

  get(): Promise<Buffer> {
    if (this.#value) return Promise.resolve(this.#value);
    this.#loading ??= this.#load().finally(() => (this.#loading = undefined));
    return this.#loading;
  }

  async #load(): Promise<Buffer> {
    const aad = serviceSecretAad(this.name);
    let stored = await this.store.getMeta(this.name);
    if (stored === undefined) {
      const fresh = randomBytes(32);
      const wrapped = (await this.root.wrap(fresh, aad)).toString("base64");
      fresh.fill(0);
      // Another node may have made one meanwhile: the first one written wins, everyone uses it.
      stored = await this.store.transaction(async (tx) => {
        const existing = await tx.getMeta(this.name);
        if (existing !== undefined) return existing;
        await tx.setMeta(this.name, wrapped);
        return wrapped;
      });
    }
    this.#value = await this.root.unwrap(Buffer.from(stored, "base64"), aad);
    return this.#value;
  }

  /** Wipes the in-memory copy. */
  close(): void {
    this.#value?.fill(0);
    this.#value = undefined;
  }
}
