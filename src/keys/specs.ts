// What each key spec means: its cipher, material length, and the metadata `Type` Tencent reports
// (4 = national-crypto (GM) compliant, 2 = FIPS 140-2 compliant).

import type { AeadName } from "../crypto/aead.js";
import type { SymmetricKeySpec } from "./key.js";

export interface SymmetricSpecInfo {
  readonly aead: AeadName;
  readonly materialLength: number;
  readonly metadataType: 2 | 4;
}

export const SYMMETRIC_SPECS: Readonly<Record<SymmetricKeySpec, SymmetricSpecInfo>> = Object.freeze({
  SM4: { aead: "SM4-GCM", materialLength: 16, metadataType: 4 },
  AES_256: { aead: "AES-256-GCM", materialLength: 32, metadataType: 2 },
});
