// PostgreSQL schema migrations, oldest first, under the same rules as SQLite's (../index.ts): a
// released migration never changes, versions start at 1 and increase by one. Each dialect has its
// own list because the SQL differs; a change to the schema adds a migration to both.

import type { Migration } from "../index.js";
import { initial } from "./001-initial.js";
import { protectionLevel } from "./002-protection-level.js";
import { identity } from "./003-identity.js";
import { audit } from "./004-audit.js";
import { auditAccounts } from "./005-audit-accounts.js";
import { kmip } from "./006-kmip.js";

export const POSTGRES_MIGRATIONS: readonly Migration[] = Object.freeze([initial, protectionLevel, identity, audit, auditAccounts, kmip]);
