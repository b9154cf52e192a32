// The two implementations of the key-material interface, and the one place that chooses between
// them: by the key's protection level.

import type { KeyRecord, KeySpec, ProtectionLevel } from "../keys/key.js";
import type { HsmKeys, RootOfTrust } from "../rootkey/root-of-trust.js";
import type { Store } from "../store/store.js";
import type { MaterialCacheOptions } from "./cache.js";
import { HsmMaterial } from "./hsm.js";
import type { KeyMaterial, MaterialLogger } from "./material.js";
import { SoftwareMaterial } from "./software.js";

export interface KeyMaterialsOptions {
  store: Store;
  rootOfTrust: RootOfTrust;
  /** Where HSM keys live; none: such keys are refused. */
  hsmKeys: HsmKeys | undefined;
  /** Bounds of each cache of prepared keys. */
  cache: MaterialCacheOptions;
  /** Milliseconds, for the caches' lifetimes. */
  now: () => number;
  logger: MaterialLogger;
}

/** The two implementations, and the choice between them. */
export class KeyMaterials {
  readonly software: SoftwareMaterial;
  readonly hsm: HsmMaterial;

  constructor(options: KeyMaterialsOptions) {
    this.software = new SoftwareMaterial(options);
    this.hsm = new HsmMaterial(options);
  }

  /** The implementation holding `key`'s material. */
  for(key: Pick<KeyRecord, "protectionLevel">): KeyMaterial {
    return key.protectionLevel === "HSM" ? this.hsm : this.software;
  }

  /** The protection levels this node offers a key spec at. */
  levels(spec: KeySpec): ProtectionLevel[] {
    return this.hsm.offers(spec) ? ["SOFTWARE", "HSM"] : ["SOFTWARE"];
  }

  forget(keyId: string): void {
    this.software.forget(keyId);
    this.hsm.forget(keyId);
  }

  async destroyRetired(): Promise<void> {
    await this.software.destroyRetired();
    await this.hsm.destroyRetired();
  }

  /** Lookups of prepared keys (the metrics' material cache). */
  cacheStats(): { hits: number; misses: number } {
    return this.software.cacheStats();
  }

  close(): void {
    this.software.close();
    this.hsm.close();
  }
}
