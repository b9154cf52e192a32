// Schema migrations, oldest first. A migration, once released, never changes: fix forward with
// a new one. Versions start at 1 and increase by one; the SQLite store records each applied
// version in `schema_migrations` and refuses a database newer than the last entry here.

import { initial } from "./001-initial.js";
import { protectionLevel } from "./002-protection-level.js";
import { identity } from "./003-identity.js";
import { audit } from "./004-audit.js";
import { auditAccounts } from "./005-audit-accounts.js";
import { kmip } from "./006-kmip.js";

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = Object.freeze([initial, protectionLevel, identity, audit, auditAccounts, kmip]);
