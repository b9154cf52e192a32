// HMAC keys (usage GENERATE_VERIFY_MAC): GenerateMac with the newest version, VerifyMac against
// every version, newest first. A MAC is the bare HMAC (RFC 2104), as AWS's GenerateMac returns
// it and as `openssl mac` computes it, so it names no version: after a rotation, MACs made
// before it still verify (docs/api.md "HMAC keys").

import { MAC_USAGE, type KeyRecord } from "../keys/key.js";
import { MAC_SPECS, isMacSpec, type MacAlgorithm } from "../keys/specs.js";
import type { Caller } from "./permissions.js";
import { CURRENT_VERSION_ERRORS, usingMaterial, type ServiceContext } from "./context.js";
import { needs } from "./errors.js";

export class MacKeys {
  constructor(private readonly ctx: ServiceContext) {}

  async generateMac(caller: Caller, input: { keyId: string; algorithm: MacAlgorithm; message: Buffer }): Promise<{ keyId: string; mac: Buffer }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "GenerateMac", input.keyId);
    checkMacKey(key, input.algorithm);
    const mac = await usingMaterial(() => this.ctx.materials.software.mac(key, key.currentVersion, input.message), CURRENT_VERSION_ERRORS);
    return { keyId: key.keyId, mac };
  }

  /** False for a MAC that none of the key's versions made; errors only for bad requests. */
  async verifyMac(caller: Caller, input: { keyId: string; algorithm: MacAlgorithm; message: Buffer; mac: Buffer }): Promise<{ keyId: string; valid: boolean }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "VerifyMac", input.keyId);
    checkMacKey(key, input.algorithm);
    const software = this.ctx.materials.software;
    for (let version = key.currentVersion; version >= 1; version--) {
      const valid = await usingMaterial(() => software.verifyMac(key, version, input.message, input.mac), CURRENT_VERSION_ERRORS);
      if (valid) return { keyId: key.keyId, valid: true };
    }
    return { keyId: key.keyId, valid: false };
  }
}

function checkMacKey(key: KeyRecord, algorithm: MacAlgorithm): void {
  needs(key.keyUsage === MAC_USAGE && isMacSpec(key.keySpec), "InvalidKeyUsage", `key ${key.keyId} has usage ${key.keyUsage}: MACs need a ${MAC_USAGE} key`);
  const expected = MAC_SPECS[key.keySpec].algorithm;
  needs(algorithm === expected, "InvalidParameterValue", `"MacAlgorithm" ${algorithm} does not fit key ${key.keyId} (${key.keySpec}); use ${expected}`);
}
