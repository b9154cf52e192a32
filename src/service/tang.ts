// Tang servers (Tresor extension; docs/disk-encryption.md): a name served at /tang/NAME, one
// ES512 signing key and one ECMR exchange key (CMKs of this account, wrapped by the root of trust
// like every other key) and the source networks allowed to recover. Rotation adds a version to both
// keys: the newest versions are advertised, every version still recovers. The registry of names is
// one meta entry (TANG_REGISTRY), read and written inside the store transaction of each change.
//
// Management actions are the caller's (authorized, audited with the change). The door's two
// actions, advertise and recover, have no caller by Tang's design: key state (lifecycle rows
// TangAdvertise, TangRecover) and the allowed networks decide, and the door records them.

import { randomUUID } from "node:crypto";
import { BlockList, isIP } from "node:net";
import { checkP521Point, EcPointError, type EcPoint } from "../crypto/ecmr.js";
import { ecdsaDerToP1363 } from "../crypto/ecc.js";
import { advertisementJws, advertisementPayload, jwkThumbprint, matchesThumbprint, p521Jwk, p521PointOfSpki, tangJwk } from "../keys/jwk.js";
import type { KeyRecord, KeyState, KeyUsage, KeyVersionRecord, ProtectionLevel } from "../keys/key.js";
import { stateAfter } from "../keys/lifecycle.js";
import { StoreConflictError, type StoreOperations } from "../store/store.js";
import { checkKeyState, CURRENT_VERSION_ERRORS, usingMaterial, type ServiceContext } from "./context.js";
import { KmsError, needs } from "./errors.js";
import { checkHsmKey, newKeyRecord } from "./keys.js";
import { ACCOUNT_RESOURCE, keyResourceNames, type Caller } from "./permissions.js";
import type { RequestAudit } from "./request-audit.js";

/** The meta entry holding every Tang server: a JSON object from name to TangServerRecord. */
export const TANG_REGISTRY = "tang-servers";
/** A name is one URL path segment, and fits in its keys' aliases (tang-NAME-sig, tang-NAME-exc; at most 60). */
export const TANG_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/;
export const MAX_ALLOWED_NETWORKS = 64;

export interface TangServerRecord {
  name: string;
  accountUin: string;
  signingKeyId: string;
  exchangeKeyId: string;
  /** CIDR blocks ("10.0.0.0/8", "fd00::/8"); empty: recovery from anywhere. */
  allowedNetworks: string[];
  createTime: number;
}

export interface TangKeyVersion {
  version: number;
  createTime: number;
  /** RFC 7638 thumbprints: SHA-256 (what clevis pins today) and SHA-1 (older clevis). */
  thumbprint: string;
  thumbprintSha1: string;
  /** The newest version: the one advertised. */
  advertised: boolean;
}

export interface TangServerView {
  name: string;
  protectionLevel: ProtectionLevel;
  /** Enabled when both keys are; otherwise the exchange key's state (or the signing key's). */
  state: KeyState;
  allowedNetworks: string[];
  createTime: number;
  signingKey: { keyId: string; state: KeyState; versions: TangKeyVersion[] };
  exchangeKey: { keyId: string; state: KeyState; versions: TangKeyVersion[] };
}

/** What the door knows of an unauthenticated request; the service fills in whose server it reached. */
export interface TangRequest {
  sourceIp: string;
  audit: RequestAudit;
  /** Set once the name is found: the account the record belongs to. */
  accountUin?: string;
}

const USAGES = { sign: "ASYMMETRIC_SIGN_VERIFY_ECDSA521", exchange: "ASYMMETRIC_EXCHANGE_ECMR_P521" } as const satisfies Record<string, KeyUsage>;

/** `cidr` in canonical form; KmsError InvalidParameterValue naming `name` otherwise. */
export function parseNetwork(cidr: string, name: string): { address: string; prefix: number; type: "ipv4" | "ipv6" } {
  const match = /^([0-9A-Fa-f.:]{2,45})\/(\d{1,3})$/.exec(cidr);
  const family = match ? isIP(match[1]!) : 0;
  const prefix = match ? Number(match[2]) : -1;
  needs(
    match && family !== 0 && prefix <= (family === 4 ? 32 : 128),
    "InvalidParameterValue",
    `"${name}" must list CIDR blocks such as 10.0.0.0/8 or fd00::/8 (prefix at most 32 for IPv4, 128 for IPv6)`,
  );
  return { address: match[1]!, prefix, type: family === 4 ? "ipv4" : "ipv6" };
}

/** Whether `ip` (as the socket reports it; IPv4-mapped IPv6 counts as IPv4) is inside one of `networks`. */
export function sourceAllowed(networks: readonly string[], ip: string): boolean {
  if (networks.length === 0) return true;
  const list = new BlockList();
  for (const n of networks) {
    const { address, prefix, type } = parseNetwork(n, "AllowedNetworks");
    list.addSubnet(address, prefix, type);
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  const address = mapped ?? ip;
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 4 ? "ipv4" : "ipv6");
}

export class TangServers {
  constructor(private readonly ctx: ServiceContext) {}

  // ---- management (callers' actions) ----

  async createTangServer(caller: Caller, input: { name: string; allowedNetworks: string[]; protectionLevel?: ProtectionLevel }): Promise<TangServerView> {
    const ctx = this.ctx;
    caller.permissions.require("kms:CreateTangServer", ACCOUNT_RESOURCE);
    checkName(input.name);
    const protectionLevel = input.protectionLevel ?? "SOFTWARE";
    if (protectionLevel === "HSM") checkHsmKey(ctx, "ECC_P521", "TENCENT_KMS");
    const allowedNetworks = canonicalNetworks(input.allowedNetworks);
    // Checked again in the transaction; here so that a taken name costs no key generation.
    needs(!Object.hasOwn(await readRegistry(ctx.store), input.name), "TangServerNameInUse", `a Tang server named ${input.name} already exists`);
    const now = ctx.now();
    const keyOf = (use: "sign" | "exchange") =>
      newKeyRecord({
        keyId: randomUUID(),
        alias: `tang-${input.name}-${use === "sign" ? "sig" : "exc"}`,
        description: `Tang server ${input.name}: ${use === "sign" ? "ES512 signing" : "ECMR exchange"} key`,
        keyUsage: USAGES[use],
        keySpec: "ECC_P521",
        origin: "TENCENT_KMS",
        creatorUin: caller.uin,
        createTime: now,
        tags: [],
        protectionLevel,
      });
    const signing = keyOf("sign");
    const exchange = keyOf("exchange");
    const [signingVersion, exchangeVersion] = await Promise.all([this.#firstVersion(signing), this.#firstVersion(exchange)]);
    const record: TangServerRecord = { name: input.name, accountUin: caller.uin, signingKeyId: signing.keyId, exchangeKeyId: exchange.keyId, allowedNetworks, createTime: now };
    caller.audit?.addResource(signing.keyId);
    caller.audit?.addResource(exchange.keyId);
    await this.#committing([signingVersion, exchangeVersion], signing, () =>
      ctx.transaction(caller, async (tx) => {
        const registry = await readRegistry(tx);
        needs(!Object.hasOwn(registry, input.name), "TangServerNameInUse", `a Tang server named ${input.name} already exists`);
        for (const key of [signing, exchange]) needs(!(await tx.getKeyByAlias(key.alias)), "AliasAlreadyExists", `"Alias" ${key.alias}, which Tang server ${input.name}'s keys take, is already in use`);
        needs((await tx.countKeys(caller.uin)) + 2 <= ctx.cmkLimit, "CmkLimitExceeded", `the account holds the maximum of ${ctx.cmkLimit} keys: a Tang server needs two`);
        await tx.insertKey(signing, signingVersion);
        await tx.insertKey(exchange, exchangeVersion);
        await writeRegistry(tx, { ...registry, [input.name]: record });
      }),
    );
    return this.#view(record, signing, exchange);
  }

  async listTangServers(caller: Caller): Promise<TangServerView[]> {
    caller.permissions.require("kms:ListTangServers", ACCOUNT_RESOURCE);
    const registry = await readRegistry(this.ctx.store);
    const mine = Object.values(registry).filter((r) => r.accountUin === caller.uin).sort((a, b) => (a.name < b.name ? -1 : 1));
    const views: TangServerView[] = [];
    for (const record of mine) {
      const signing = await this.ctx.store.getKey(record.signingKeyId);
      const exchange = await this.ctx.store.getKey(record.exchangeKeyId);
      // A server whose keys were deleted serves nothing any more; it is left out.
      if (signing && exchange) views.push(await this.#view(record, signing, exchange));
    }
    return views;
  }

  async describeTangServer(caller: Caller, name: string): Promise<TangServerView> {
    const { record, signing, exchange } = await this.#authorized(this.ctx.store, caller, "DescribeTangServer", name);
    return this.#view(record, signing, exchange);
  }

  async updateTangServer(caller: Caller, name: string, allowedNetworks: string[]): Promise<void> {
    const networks = canonicalNetworks(allowedNetworks);
    await this.ctx.transaction(caller, async (tx) => {
      const { record } = await this.#authorized(tx, caller, "UpdateTangServer", name);
      const registry = await readRegistry(tx);
      await writeRegistry(tx, { ...registry, [name]: { ...record, allowedNetworks: networks } });
    });
  }

  /** Both keys Enabled or Disabled, in one transaction; the lifecycle table says from which states. */
  async setTangServerState(caller: Caller, name: string, action: "EnableKey" | "DisableKey"): Promise<void> {
    const camAction = action === "EnableKey" ? "EnableTangServer" : "DisableTangServer";
    await this.ctx.transaction(caller, async (tx) => {
      const { signing, exchange } = await this.#authorized(tx, caller, camAction, name);
      for (const key of [signing, exchange]) {
        checkKeyState(action, key);
        const state = stateAfter(action, key.state);
        if (state !== key.state) await tx.updateKey({ ...key, state });
      }
    });
  }

  /** A new version of both keys: advertised from now on; the old versions still recover. */
  async rotateTangServer(caller: Caller, name: string): Promise<TangServerView> {
    const found = await this.#authorized(this.ctx.store, caller, "RotateTangServer", name);
    for (const key of [found.signing, found.exchange]) checkKeyState("RotateKey", key);
    const made = await Promise.all([found.signing, found.exchange].map((k) => this.#newVersion(k, k.currentVersion + 1)));
    const now = this.ctx.now();
    await this.#committing(made, found.signing, () =>
      this.ctx.transaction(caller, async (tx) => {
        const { signing, exchange } = await this.#keys(tx, found.record);
        for (const [i, key] of [signing, exchange].entries()) {
          checkKeyState("RotateKey", key);
          needs(key.currentVersion + 1 === made[i]!.version, "OperationDenied", `Tang server ${name} is being rotated by another request: retry`);
          await tx.insertKeyVersion({ ...made[i]!, createTime: now });
          await tx.updateKey({ ...key, currentVersion: made[i]!.version, lastRotateTime: now });
        }
      }),
    );
    return this.describeTangServer(caller, name);
  }

  // ---- the door's actions (no caller) ----

  /**
   * The advertisement of `name`: its newest signing and exchange keys, signed by the newest signing
   * key and, when `thumbprint` names an older signing key version, by that one too (as tangd signs
   * with a rotated key a client still pins).
   */
  async advertise(request: TangRequest, name: string, thumbprint: string | undefined): Promise<Record<string, unknown>> {
    const { record, signing, exchange } = await this.#found(request, name);
    checkKeyState("TangAdvertise", signing);
    checkKeyState("TangAdvertise", exchange);
    const signingVersions = await this.ctx.store.listKeyVersions(signing.keyId);
    const current = versionOf(signingVersions, signing.currentVersion);
    const signers = [current];
    if (thumbprint !== undefined) {
      const pinned = signingVersions.find((v) => matchesThumbprint(p521Jwk(pointOf(v)), thumbprint));
      needs(pinned, "TangKeyNotFound", `Tang server ${record.name} has no signing key with thumbprint ${thumbprint}`);
      if (pinned.version !== current.version) signers.push(pinned);
    }
    const exchangeCurrent = await this.ctx.store.getKeyVersion(exchange.keyId, exchange.currentVersion);
    needs(exchangeCurrent, "InternalError", `key ${exchange.keyId} has no version ${exchange.currentVersion}`);
    const { payload, protectedHeader, signingInput } = advertisementPayload([tangJwk(pointOf(current), "sign"), tangJwk(pointOf(exchangeCurrent), "exchange")]);
    const material = this.ctx.materials.for(signing);
    const signatures: Buffer[] = [];
    for (const v of signers) {
      const der = await usingMaterial(() => material.sign(signing, v.version, "ECDSA_P521_SHA_512", signingInput, "RAW"), CURRENT_VERSION_ERRORS);
      signatures.push(ecdsaDerToP1363(der, "P-521"));
    }
    return advertisementJws(payload, protectedHeader, signatures);
  }

  /**
   * s·X with the exchange key version whose thumbprint is `kid`, when the source network is allowed
   * and the exchange key's state allows recovery. Checks in tangd's order where it has one: the name
   * and kid (404), then the source and state (403), then the point (400).
   */
  async recover(request: TangRequest, name: string, kid: string, point: EcPoint): Promise<EcPoint> {
    const { record, signing, exchange } = await this.#found(request, name);
    const exchangeVersions = await this.ctx.store.listKeyVersions(exchange.keyId);
    const version = exchangeVersions.find((v) => matchesThumbprint(p521Jwk(pointOf(v)), kid));
    if (!version) {
      const signingVersions = await this.ctx.store.listKeyVersions(signing.keyId);
      // tangd answers 403 for a kid that names a key not meant for deriveKey.
      const isSigning = signingVersions.some((v) => matchesThumbprint(p521Jwk(pointOf(v)), kid));
      needs(!isSigning, "InvalidKeyUsage", `${kid} is the thumbprint of Tang server ${record.name}'s signing key, which does not recover`);
      throw new KmsError("TangKeyNotFound", `Tang server ${record.name} has no exchange key with thumbprint ${kid}`);
    }
    needs(
      sourceAllowed(record.allowedNetworks, request.sourceIp),
      "UnauthorizedOperation",
      `recovery from ${request.sourceIp} is not allowed for Tang server ${record.name}: the source is outside its allowed networks`,
    );
    checkKeyState("TangRecover", exchange);
    try {
      checkP521Point(point);
    } catch (e) {
      if (e instanceof EcPointError) throw new KmsError("InvalidParameterValue", `the request's JWK is not a point of P-521: ${e.message}`);
      throw e;
    }
    const material = this.ctx.materials.for(exchange);
    return usingMaterial(() => material.exchange(exchange, version.version, point), CURRENT_VERSION_ERRORS);
  }

  // ---- helpers ----

  async #found(request: TangRequest, name: string): Promise<{ record: TangServerRecord; signing: KeyRecord; exchange: KeyRecord }> {
    const registry = await readRegistry(this.ctx.store);
    const record = Object.hasOwn(registry, name) ? registry[name] : undefined;
    needs(record, "TangServerNotFound", `no Tang server is named ${name}`);
    request.accountUin = record.accountUin;
    const keys = await this.#keys(this.ctx.store, record);
    request.audit.addResource(keys.exchange.keyId);
    return { record, ...keys };
  }

  async #keys(store: StoreOperations, record: TangServerRecord): Promise<{ signing: KeyRecord; exchange: KeyRecord }> {
    const signing = await store.getKey(record.signingKeyId);
    const exchange = await store.getKey(record.exchangeKeyId);
    // A deleted key (ScheduleKeyDeletion ran its course) leaves the name without it: nothing to serve.
    needs(signing && exchange, "TangKeyNotFound", `Tang server ${record.name} has lost its ${signing ? "exchange" : "signing"} key (deleted)`);
    return { signing, exchange };
  }

  /** The caller's server `name`, after its policies allowed `action` on both keys. */
  async #authorized(store: StoreOperations, caller: Caller, action: string, name: string) {
    checkName(name);
    const registry = await readRegistry(store);
    const record = Object.hasOwn(registry, name) ? registry[name] : undefined;
    needs(record && record.accountUin === caller.uin, "TangServerNotFound", `no Tang server is named ${name}`);
    const keys = await this.#keys(store, record);
    for (const key of [keys.signing, keys.exchange]) {
      caller.audit?.addResource(key.keyId);
      caller.permissions.require(`kms:${action}`, keyResourceNames(this.ctx.region, key));
    }
    return { record, ...keys };
  }

  /**
   * Runs the transaction that records `made`; when it certainly did not (a refusal, a conflict),
   * what was made is discarded (HSM objects destroyed). After any other error it may have committed.
   */
  async #committing(made: readonly Pick<KeyVersionRecord, "keyId" | "wrappedMaterial">[], key: KeyRecord, commit: () => Promise<void>): Promise<void> {
    try {
      await commit();
    } catch (e) {
      if (e instanceof KmsError || e instanceof StoreConflictError) {
        const material = this.ctx.materials.for(key);
        for (const m of made) await material.discard(m.keyId, m.wrappedMaterial);
      }
      throw e;
    }
  }

  async #firstVersion(key: KeyRecord): Promise<KeyVersionRecord> {
    const made = await this.#newVersion(key, 1);
    return { ...made, createTime: key.createTime };
  }

  async #newVersion(key: KeyRecord, version: number): Promise<Omit<KeyVersionRecord, "createTime">> {
    const material = this.ctx.materials.for(key);
    const made = await usingMaterial(() => material.generate(key, version), CURRENT_VERSION_ERRORS);
    return { keyId: key.keyId, version, wrappedMaterial: made.stored, publicKey: made.publicKey };
  }

  async #view(record: TangServerRecord, signing: KeyRecord, exchange: KeyRecord): Promise<TangServerView> {
    const versionsOf = async (key: KeyRecord): Promise<TangKeyVersion[]> =>
      (await this.ctx.store.listKeyVersions(key.keyId)).map((v) => {
        const jwk = p521Jwk(pointOf(v));
        return { version: v.version, createTime: v.createTime, thumbprint: jwkThumbprint(jwk, "S256"), thumbprintSha1: jwkThumbprint(jwk, "S1"), advertised: v.version === key.currentVersion };
      });
    const state = signing.state === "Enabled" ? exchange.state : signing.state;
    return {
      name: record.name,
      protectionLevel: exchange.protectionLevel,
      state,
      allowedNetworks: record.allowedNetworks,
      createTime: record.createTime,
      signingKey: { keyId: signing.keyId, state: signing.state, versions: await versionsOf(signing) },
      exchangeKey: { keyId: exchange.keyId, state: exchange.state, versions: await versionsOf(exchange) },
    };
  }
}

function checkName(name: string): void {
  needs(TANG_NAME_PATTERN.test(name), "InvalidParameterValue", `"Name" must be 1 to 48 letters, digits, - and _, starting with a letter or digit`);
}

function canonicalNetworks(cidrs: readonly string[]): string[] {
  needs(cidrs.length <= MAX_ALLOWED_NETWORKS, "InvalidParameterValue", `"AllowedNetworks" may list at most ${MAX_ALLOWED_NETWORKS} CIDR blocks`);
  return cidrs.map((cidr) => {
    const { address, prefix } = parseNetwork(cidr, "AllowedNetworks");
    return `${address}/${prefix}`;
  });
}

async function readRegistry(store: Pick<StoreOperations, "getMeta">): Promise<Record<string, TangServerRecord>> {
  const text = await store.getMeta(TANG_REGISTRY);
  if (text === undefined) return {};
  const parsed: unknown = JSON.parse(text);
  needs(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed), "InternalError", `the meta entry ${TANG_REGISTRY} is not a JSON object`);
  return Object.assign(Object.create(null) as Record<string, TangServerRecord>, parsed);
}

function writeRegistry(store: Pick<StoreOperations, "setMeta">, registry: Record<string, TangServerRecord>): Promise<void> {
  return store.setMeta(TANG_REGISTRY, JSON.stringify(registry));
}

function versionOf(versions: readonly KeyVersionRecord[], version: number): KeyVersionRecord {
  const found = versions.find((v) => v.version === version);
  needs(found, "InternalError", `a Tang key has no version ${version}`);
  return found;
}

function pointOf(version: KeyVersionRecord): EcPoint {
  needs(version.publicKey, "InternalError", `key ${version.keyId} version ${version.version} has no public key`);
  return p521PointOfSpki(version.publicKey);
}
