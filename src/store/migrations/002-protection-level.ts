// CMKs gain a protection level (SOFTWARE or HSM, see KeyRecord); every existing key is SOFTWARE.

export const protectionLevel = {
  version: 2,
  name: "002-protection-level",
  sql: `
ALTER TABLE keys ADD COLUMN protection_level TEXT NOT NULL DEFAULT 'SOFTWARE' CHECK (protection_level IN ('SOFTWARE', 'HSM'));
`,
} as const;
