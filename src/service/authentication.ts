// Authentication: finding the credential a request names (an access key, or temporary
// credentials from AssumeRole) and making the request's Caller, with its policies loaded.

import { createHmac, timingSafeEqual } from "node:crypto";
import { accessKeySecretAad, type RootOfTrust } from "../rootkey/root-of-trust.js";
import type { Store } from "../store/store.js";
import type { Clock } from "./clock.js";
import { needs } from "./errors.js";
import { remember, ROOT_PERMISSIONS, type Caller, type PolicyPermissions, type PrincipalRef } from "./permissions.js";
import { ServiceSecret } from "./service-secret.js";

/** The meta entry of the secret temporary credentials are derived from (see ServiceSecret). */
export const ROLE_SESSION_SECRET = "role-session-key";
/** A request's last-used time is written at most this often per access key. */
const LAST_USED_INTERVAL_SECONDS = 60;

/** A credential found by its SecretId, before the request's signature is checked. */
export interface ResolvedCredential {
  accountUin: string;
  principal: PrincipalRef;
  secretId: string;
  /** Changes whenever the secret does, so derived signing keys can be cached safely. */
  version: string;
  unwrapSecret(): Promise<string>;
  session?: { sessionName: string; expiresAt: number };
}

export class Authentication {
  readonly #store: Store;
  readonly #root: RootOfTrust;
  readonly #clock: Clock;
  readonly #cacheMs: number;
  readonly #permissions: PolicyPermissions;
  readonly #sessionSecret: ServiceSecret;
  readonly #credentials = new Map<string, { resolved: ResolvedCredential; expiresAt: number }>();

  constructor(options: { store: Store; rootOfTrust: RootOfTrust; clock: Clock; cacheMs: number; permissions: PolicyPermissions }) {
    this.#store = options.store;
    this.#root = options.rootOfTrust;
    this.#clock = options.clock;
    this.#cacheMs = options.cacheMs;
    this.#permissions = options.permissions;
    this.#sessionSecret = new ServiceSecret(options.store, options.rootOfTrust, ROLE_SESSION_SECRET);
  }

  /**
   * The active access key with this SecretId, or undefined. Found keys are remembered for the
   * cache time, so a disabled or deleted key stops working within it on every node.
   */
  async resolveAccessKey(secretId: string): Promise<ResolvedCredential | undefined> {
    const now = this.#clock.now();
    const cached = this.#credentials.get(secretId);
    if (cached && cached.expiresAt > now) return cached.resolved;
    const record = await this.#store.getAccessKey(secretId);
    const principal = record?.status === "Active" ? await this.#store.getPrincipal(record.principalId) : undefined;
    if (!record || !principal) {
      this.#credentials.delete(secretId);
      return undefined;
    }
    const resolved: ResolvedCredential = {
      accountUin: record.uin,
      principal: { id: principal.principalId, kind: principal.kind, name: principal.name },
      secretId,
      version: record.wrappedSecret.toString("base64"),
      unwrapSecret: async () => {
        const secret = await this.#root.unwrap(record.wrappedSecret, accessKeySecretAad(secretId));
        try {
          return secret.toString("utf8");
        } finally {
          secret.fill(0);
        }
      },
    };
    remember(this.#credentials, secretId, { resolved, expiresAt: now + this.#cacheMs });
    if (record.lastUsedTime < this.#seconds() - LAST_USED_INTERVAL_SECONDS) {
      // Best effort: a request is not refused because its key's last-used time could not be written.
      this.#store.touchAccessKey(secretId, this.#seconds(), LAST_USED_INTERVAL_SECONDS).catch(() => undefined);
    }
    return resolved;
  }

  /**
   * Temporary credentials: the session must exist, be unexpired, and `token` must be its token.
   * Anything else is TokenFailure. Sessions are looked up on every request, so a deleted role's
   * sessions stop at once.
   */
  async resolveTemporaryCredential(tmpSecretId: string, token: string): Promise<ResolvedCredential> {
    const session = /^AKID[A-Za-z0-9]{1,64}$/.test(tmpSecretId) ? await this.#store.getRoleSession(tmpSecretId) : undefined;
    needs(session, "TokenFailure", `"X-TC-Token": the temporary credentials are unknown, expired or revoked`);
    needs(session.expiresAt > this.#seconds(), "TokenFailure", `"X-TC-Token": the temporary credentials expired at ${new Date(session.expiresAt * 1000).toISOString()}`);
    const expected = Buffer.from(await this.sessionToken(tmpSecretId));
    const given = Buffer.from(token);
    needs(given.length === expected.length && timingSafeEqual(given, expected), "TokenFailure", `"X-TC-Token" does not belong to the temporary credentials`);
    // Deleting the role, or the user who assumed it, revokes the session.
    const role = await this.#store.getPrincipal(session.roleId);
    const assumedBy = await this.#store.getPrincipal(session.assumedBy);
    needs(role && assumedBy, "TokenFailure", `"X-TC-Token": the temporary credentials are unknown, expired or revoked`);
    const secret = await this.sessionSecretKey(tmpSecretId);
    return {
      accountUin: session.accountUin,
      principal: { id: role.principalId, kind: "role", name: role.name },
      secretId: tmpSecretId,
      version: `session:${session.expiresAt}`,
      unwrapSecret: async () => secret,
      session: { sessionName: session.sessionName, expiresAt: session.expiresAt },
    };
  }

  /** The Caller of a request whose signature `credential` verified: its policies loaded. */
  async callerFor(credential: ResolvedCredential, sourceIp: string | undefined): Promise<Caller> {
    const caller: Caller = {
      uin: credential.accountUin,
      principal: credential.principal,
      secretId: credential.secretId,
      ...(sourceIp === undefined ? {} : { sourceIp }),
      ...(credential.session ? { session: credential.session } : {}),
      permissions: ROOT_PERMISSIONS,
    };
    if (credential.principal.kind !== "root") caller.permissions = this.#permissions.of(caller, await this.#permissions.policiesOf(credential.principal.id));
    return caller;
  }

  /** The secret key of a role session (derived, never stored). */
  async sessionSecretKey(tmpSecretId: string): Promise<string> {
    return derive(await this.#sessionSecret.get(), "secret", tmpSecretId).subarray(0, 30).toString("base64url");
  }

  /** The token of a role session (derived, never stored). */
  async sessionToken(tmpSecretId: string): Promise<string> {
    return derive(await this.#sessionSecret.get(), "token", tmpSecretId).toString("base64url");
  }

  /** Forgets the credentials this node remembers: a changed or deleted access key stops at once here. */
  forget(): void {
    this.#credentials.clear();
  }

  close(): void {
    this.#sessionSecret.close();
    this.#credentials.clear();
  }

  #seconds(): number {
    return Math.floor(this.#clock.now() / 1000);
  }
}

function derive(secret: Buffer, purpose: string, tmpSecretId: string): Buffer {
  return createHmac("sha256", secret).update(`tresor/role-session/v1\0${purpose}\0${tmpSecretId}`).digest();
}
