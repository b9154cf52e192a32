// KMIP client certificates mapped to principals: a KMIP request carries no credential of its own
// (PyKMIP and most clients identify by their TLS certificate only), so the certificate's SHA-256
// fingerprint names the user the request acts as. Managing the mapping is a CAM action on that user.

import { createHash, X509Certificate } from "node:crypto";
import type { Auditor } from "../audit/writer.js";
import { StoreConflictError, type KmipClientRecord, type Store, type StoreOperations } from "../store/store.js";
import type { ResolvedCredential } from "./authentication.js";
import type { Clock } from "./clock.js";
import { KmsError, needs } from "./errors.js";
import { ACCOUNT_RESOURCE, userResource, type Caller } from "./permissions.js";
import { auditedTransaction } from "./request-audit.js";

/** The fingerprint KMIP clients are known by: SHA-256 of the certificate's DER, lowercase hex. */
export function certificateFingerprint(der: Buffer): string {
  return createHash("sha256").update(der).digest("hex");
}

/** A mapping as the management actions show it, with the user's name. */
export interface KmipClientView extends KmipClientRecord {
  userName: string;
}

export class KmipClients {
  readonly #store: Store;
  readonly #auditor: Auditor<StoreOperations> | undefined;
  readonly #clock: Clock;

  constructor(options: { store: Store; auditor: Auditor<StoreOperations> | undefined; clock: Clock }) {
    this.#store = options.store;
    this.#auditor = options.auditor;
    this.#clock = options.clock;
  }

  /** Maps the certificate (PEM) to the account's user `userName`. */
  async add(caller: Caller, input: { userName: string; certificatePem: string }): Promise<KmipClientView> {
    const user = await this.#store.getPrincipalByName(caller.uin, "user", input.userName);
    this.#require(caller, "cam:AddKmipClient", userResource(caller.uin, user?.principalId ?? "*"));
    needs(user, "UserNotExist", `"UserName" ${input.userName}: no such user`);
    const certificate = parseCertificate(input.certificatePem);
    const record: KmipClientRecord = {
      fingerprint: certificateFingerprint(certificate.raw),
      accountUin: caller.uin,
      principalId: user.principalId,
      subject: certificate.subject.replace(/\n/g, ", "),
      createTime: Math.floor(this.#clock.now() / 1000),
    };
    caller.audit?.addResource(`kmip-client/${record.fingerprint}`);
    try {
      await auditedTransaction(this.#store, this.#auditor, caller.audit, (tx) => tx.insertKmipClient(record));
    } catch (e) {
      if (e instanceof StoreConflictError && e.field === "kmipClient") throw new KmsError("InvalidParameterValue", `"Certificate" is mapped already (fingerprint ${record.fingerprint})`);
      throw e;
    }
    return { ...record, userName: user.name };
  }

  async list(caller: Caller): Promise<KmipClientView[]> {
    caller.permissions.require("cam:ListKmipClients", ACCOUNT_RESOURCE);
    const names = new Map((await this.#store.listPrincipals(caller.uin, "user", 0, 10_000)).items.map((p) => [p.principalId, p.name]));
    return (await this.#store.listKmipClients(caller.uin)).map((c) => ({ ...c, userName: names.get(c.principalId) ?? "" }));
  }

  async delete(caller: Caller, fingerprint: string): Promise<void> {
    const found = await this.#store.getKmipClient(fingerprint);
    const mine = found && found.accountUin === caller.uin ? found : undefined;
    this.#require(caller, "cam:DeleteKmipClient", userResource(caller.uin, mine?.principalId ?? "*"));
    needs(mine, "InvalidParameterValue", `"Fingerprint" ${fingerprint}: no KMIP client certificate with that fingerprint`);
    caller.audit?.addResource(`kmip-client/${fingerprint}`);
    await auditedTransaction(this.#store, this.#auditor, caller.audit, (tx) => tx.deleteKmipClient(fingerprint));
  }

  /** The credential of a TLS client certificate (DER), or undefined when it is mapped to no user. */
  async resolve(der: Buffer): Promise<ResolvedCredential | undefined> {
    const fingerprint = certificateFingerprint(der);
    const client = await this.#store.getKmipClient(fingerprint);
    const user = client ? await this.#store.getPrincipal(client.principalId) : undefined;
    if (!client || !user) return undefined;
    return {
      accountUin: client.accountUin,
      principal: { id: user.principalId, kind: user.kind, name: user.name },
      secretId: `kmip:${fingerprint.slice(0, 16)}`,
      version: `kmip:${client.createTime}`,
      unwrapSecret: () => Promise.reject(new Error("a KMIP client certificate has no secret")),
    };
  }

  #require(caller: Caller, action: string, resource: string): void {
    caller.permissions.require(action, [resource]);
  }
}

function parseCertificate(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new KmsError("InvalidParameterValue", `"Certificate" is not an X.509 certificate in PEM`);
  }
}
