// Keeps docs/api.md and docs/formats.md true to the code: the lifecycle table, the action lists
// (KMS, CAM, STS and CloudAudit) and each action's parameters, the policy examples, the error registry, the
// blob layout and the worked example.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ACTIONS } from "../../src/api/tencent/actions.js";
import { CAM_ACTIONS, STS_ACTIONS } from "../../src/api/tencent/cam.js";
import { CLOUDAUDIT_ACTIONS, LOOKUP_ATTRIBUTE_KEYS } from "../../src/api/tencent/cloudaudit.js";
import { actionNames, catalogMarkdown, PRODUCTS, type Product } from "../../src/policy/catalog.js";
import { parsePolicyDocument } from "../../src/policy/document.js";
import { PRESET_POLICIES } from "../../src/policy/presets.js";
import { AEADS, type AeadName } from "../../src/crypto/aead.js";
import {
  BLOB_FORMAT_V1,
  BLOB_HEADER_LENGTH,
  BLOB_MIN_LENGTH,
  blobAad,
  canonicalContext,
  decodeBlob,
  encodeBlob,
  encodeBlobHeader,
} from "../../src/keys/blob.js";
import { SYMMETRIC_KEY_SPECS, type SymmetricKeySpec } from "../../src/keys/key.js";
import { lifecycleMarkdown } from "../../src/keys/lifecycle.js";
import { SYMMETRIC_SPECS } from "../../src/keys/specs.js";
import { accessKeySecretAad, keyMaterialAad } from "../../src/rootkey/root-of-trust.js";
import { ERROR_CODES } from "../../src/service/errors.js";

// From dist/test/docs/ up to the repository root.
const readDoc = (name: string): string => readFileSync(new URL(`../../../docs/${name}`, import.meta.url), "utf8");
const apiMd = readDoc("api.md");
const formatsMd = readDoc("formats.md");

/** The text between `<!-- name:begin -->` and `<!-- name:end -->`, trimmed. */
function marked(md: string, name: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const start = md.indexOf(begin);
  const stop = md.indexOf(end);
  assert.ok(start !== -1 && stop > start, `the document must hold ${begin} … ${end}`);
  assert.equal(md.indexOf(begin, start + 1), -1, `${begin} must appear once`);
  return md.slice(start + begin.length, stop).trim();
}

/** The rows of the first Markdown table in `text`, header and separator dropped, cells trimmed. */
function tableRows(text: string): string[][] {
  const lines = text.split("\n").map((l) => l.trim());
  const first = lines.findIndex((l) => l.startsWith("|"));
  assert.ok(first !== -1, "expected a table");
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.slice(1, -1).split("|").map((c) => c.trim()));
  }
  return rows;
}

/** `x` → x: a cell's content without its code span. */
const unquote = (cell: string): string => cell.replace(/^`(.*)`$/, "$1");

/** The body of the `## <title>` section: up to the next level-2 heading. */
function h2Section(md: string, title: string): string {
  const start = md.indexOf(`\n## ${title}\n`);
  assert.ok(start !== -1, `docs must have a "## ${title}" section`);
  const next = md.indexOf("\n## ", start + 1);
  return md.slice(start, next === -1 ? undefined : next);
}

/** Each `### Name` heading in `text` with the text under it, up to the next heading of level 2 or 3. */
function h3Sections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = text.split(/\n(?=###? )/);
  for (const part of parts) {
    const m = /^### (.+)\n/.exec(part);
    if (m) out.set(m[1]!.trim(), part);
  }
  return out;
}

/** Each documented section's parameter table must list exactly the parameters its schema takes. */
function checkParameterTables(sections: Map<string, string>, actions: Readonly<Record<string, { schema: object }>>): void {
  for (const [name, definition] of Object.entries(actions)) {
    const section = sections.get(name);
    if (!section) continue; // reported by the section test
    const schemaNames = Object.keys(definition.schema).sort();
    const tableStart = section.indexOf("| parameter |");
    if (schemaNames.length === 0) {
      assert.equal(tableStart, -1, `${name} takes no parameters, but its section has a parameter table`);
      continue;
    }
    assert.ok(tableStart !== -1, `${name}: the section needs a "| parameter |" table`);
    const documented = tableRows(section.slice(tableStart)).map((row) => unquote(row[0]!)).sort();
    assert.deepEqual(documented, schemaNames, `${name}: parameter table differs from the schema`);
  }
}

/** The JSON of every fenced block whose info string is `json policy` or `json trust-policy`. */
function policyBlocks(md: string): { kind: "identity" | "trust"; text: string }[] {
  return [...md.matchAll(/^```json (policy|trust-policy)\n([\s\S]*?)^```$/gm)].map((m) => ({
    kind: m[1] === "policy" ? ("identity" as const) : ("trust" as const),
    text: m[2]!,
  }));
}

describe("docs/api.md", () => {
  const actionSections = h3Sections(h2Section(apiMd, "Actions"));
  const camSections = h3Sections(h2Section(apiMd, "CAM and STS actions"));
  const camAndSts: Readonly<Record<string, { schema: object }>> = { ...CAM_ACTIONS, ...STS_ACTIONS };
  const cloudauditSections = h3Sections(h2Section(apiMd, "CloudAudit actions"));

  it("prints exactly lifecycleMarkdown() between the lifecycle markers", () => {
    assert.equal(marked(apiMd, "lifecycle"), lifecycleMarkdown().trim());
  });

  it("prints exactly catalogMarkdown() between the action-catalogue markers", () => {
    assert.equal(marked(apiMd, "action-catalogue"), catalogMarkdown().trim());
  });

  it("lists under Actions in policies exactly the catalogue's actions of each service it names one by one", () => {
    const section = h3Sections(h2Section(apiMd, "Policy language")).get("Actions in policies") ?? "";
    const rows = tableRows(section.slice(section.indexOf("| service |")));
    assert.deepEqual(rows.map((r) => unquote(r[0]!)), [...PRODUCTS]);
    for (const [service, cell] of rows) {
      if (cell!.startsWith("every ")) continue; // kms: "every KMS action Tresor serves"
      const listed = cell!.replace(/\s*\(.*\)$/, "").split(",").map((a) => a.trim());
      assert.deepEqual(listed, [...actionNames(unquote(service!) as Product)], `${service}'s actions`);
    }
  });

  it("lists under Preset policies exactly each preset's actions, in its order", () => {
    const section = h3Sections(h2Section(apiMd, "Policy language")).get("Preset policies") ?? "";
    const rows = tableRows(section);
    assert.deepEqual(rows.map((r) => [Number(r[0]), unquote(r[1]!)]), PRESET_POLICIES.map((p) => [p.policyId, p.policyName]));
    for (const [, name, allows] of rows) {
      const preset = PRESET_POLICIES.find((p) => p.policyName === unquote(name!))!;
      const actions = preset.document.statement.flatMap((st) => st.action);
      // A wildcard is given as its code span ("`name/kms:*`: …"), named actions as a list before the first sentence's end.
      const wildcard = /^`(name\/[a-z]+:\*)`/.exec(allows!);
      const documented = wildcard ? [wildcard[1]!] : allows!.split(". ")[0]!.split(", ").map((a) => `name/kms:${a}`);
      assert.deepEqual(documented, actions, `${preset.policyName}'s row`);
    }
  });

  it("has a ### section for every action in ACTIONS, and for no other", () => {
    const documented = [...actionSections.keys()].sort();
    const served = Object.keys(ACTIONS).sort();
    assert.deepEqual(
      documented.filter((a) => !served.includes(a)),
      [],
      "documented under ## Actions but not in ACTIONS (src/api/tencent/actions.ts)",
    );
    assert.deepEqual(
      served.filter((a) => !documented.includes(a)),
      [],
      "in ACTIONS but without a ### section under ## Actions in docs/api.md",
    );
  });

  it("lists in each action's parameter table exactly the parameters its schema takes", () => {
    checkParameterTables(actionSections, ACTIONS);
  });

  it("has a ### section under ## CAM and STS actions for every CAM and STS action, and for no other", () => {
    const documented = [...camSections.keys()].sort();
    const served = Object.keys(camAndSts).sort();
    assert.deepEqual(
      documented.filter((a) => !served.includes(a)),
      [],
      "documented under ## CAM and STS actions but not in CAM_ACTIONS or STS_ACTIONS (src/api/tencent/cam.ts)",
    );
    assert.deepEqual(
      served.filter((a) => !documented.includes(a)),
      [],
      "in CAM_ACTIONS or STS_ACTIONS but without a ### section under ## CAM and STS actions in docs/api.md",
    );
  });

  it("lists in each CAM and STS action's parameter table exactly the parameters its schema takes", () => {
    checkParameterTables(camSections, camAndSts);
  });

  it("has a ### section under ## CloudAudit actions for every CloudAudit action, and for no other", () => {
    const documented = [...cloudauditSections.keys()].sort();
    const served = Object.keys(CLOUDAUDIT_ACTIONS).sort();
    assert.deepEqual(
      documented.filter((a) => !served.includes(a)),
      [],
      "documented under ## CloudAudit actions but not in CLOUDAUDIT_ACTIONS (src/api/tencent/cloudaudit.ts)",
    );
    assert.deepEqual(
      served.filter((a) => !documented.includes(a)),
      [],
      "in CLOUDAUDIT_ACTIONS but without a ### section under ## CloudAudit actions in docs/api.md",
    );
  });

  it("lists in each CloudAudit action's parameter table exactly the parameters its schema takes", () => {
    checkParameterTables(cloudauditSections, CLOUDAUDIT_ACTIONS);
  });

  it("lists exactly the LookupAttributes keys served", () => {
    const intro = h2Section(apiMd, "CloudAudit actions");
    const keysTable = intro.slice(intro.indexOf("| key | matches |"));
    const documented = tableRows(keysTable).map((row) => unquote(row[0]!)).sort();
    assert.deepEqual(documented, [...LOOKUP_ATTRIBUTE_KEYS].sort());
  });

  it("gives policy examples that the policy parser accepts", () => {
    const blocks = policyBlocks(h2Section(apiMd, "Policy language"));
    assert.ok(blocks.length >= 3, "the policy language section needs its `json policy` examples");
    assert.ok(blocks.some((b) => b.kind === "trust"), "the policy language section needs a `json trust-policy` example");
    for (const [i, block] of blocks.entries()) {
      assert.doesNotThrow(() => parsePolicyDocument(block.text, block.kind), `policy example ${i + 1} (${block.kind}) does not parse`);
    }
  });

  it("lists no served action among the unsupported ones", () => {
    const listed = tableRows(marked(apiMd, "unsupported-actions")).flatMap((row) => row[1]!.split(",").map((a) => a.trim()));
    assert.equal(new Set(listed).size, listed.length, "an unsupported action is listed twice");
    assert.deepEqual(
      listed.filter((a) => Object.hasOwn(ACTIONS, a)),
      [],
      "these actions are served but listed as not supported",
    );
  });

  it("mentions every Tencent error code of ERROR_CODES", () => {
    const missing = Object.values(ERROR_CODES)
      .map((c) => c.tencent)
      .filter((wire) => !apiMd.includes(`\`${wire}\``));
    assert.deepEqual(missing, [], "Tencent error codes missing from docs/api.md");
  });

  it("has an error table equal to ERROR_CODES, row for row", () => {
    const rows = tableRows(marked(apiMd, "error-codes"));
    const documented = rows.map((row) => [unquote(row[0]!), unquote(row[1]!)] as const);
    const registry = Object.entries(ERROR_CODES).map(([code, c]) => [code, c.tencent] as const);
    assert.deepEqual(documented, registry);
    for (const row of rows) assert.ok(row[2] && row[2].length > 0, `error ${row[0]} needs a "when" text`);
  });

  it("names no dotted Tencent error code that the registry lacks", () => {
    const wireNames = new Set<string>(Object.values(ERROR_CODES).map((c) => c.tencent));
    const dotted = [...apiMd.matchAll(/`((?:AuthFailure|InvalidParameterValue|InvalidParameter|ResourceUnavailable|LimitExceeded|UnsupportedOperation|FailedOperation)\.[A-Za-z]+)`/g)].map(
      (m) => m[1]!,
    );
    assert.deepEqual([...new Set(dotted.filter((c) => !wireNames.has(c)))], []);
  });
});

describe("docs/formats.md", () => {
  const layout = tableRows(marked(formatsMd, "blob-layout")).map(([offset, length, field, meaning]) => ({
    offset: offset!,
    length: length!,
    field: field!,
    meaning: meaning!,
  }));
  const byField = new Map(layout.map((r) => [r.field, r]));
  const field = (name: string) => {
    const row = byField.get(name);
    assert.ok(row, `the blob layout table needs a "${name}" row`);
    return row;
  };

  it("names the blob's fields in order", () => {
    assert.deepEqual(
      layout.map((r) => r.field),
      ["format", "algorithm", "key id", "key version", "iv", "ciphertext", "tag"],
    );
  });

  it("states header offsets and lengths that agree with BLOB_HEADER_LENGTH", () => {
    const header = layout.filter((r) => /^\d+$/.test(r.offset) && /^\d+$/.test(r.length) && r.field !== "ciphertext" && r.field !== "tag");
    let expected = 0;
    for (const r of header) {
      assert.equal(Number(r.offset), expected, `"${r.field}" should start at ${expected}`);
      expected += Number(r.length);
    }
    assert.equal(expected, BLOB_HEADER_LENGTH, "the header fields must add up to BLOB_HEADER_LENGTH");
    assert.equal(field("ciphertext").offset, String(BLOB_HEADER_LENGTH));
    assert.equal(field("ciphertext").length, "n");
    assert.equal(field("tag").offset, `${BLOB_HEADER_LENGTH} + n`);
    assert.equal(Number(field("tag").length), BLOB_MIN_LENGTH - BLOB_HEADER_LENGTH);
    assert.ok(field("format").meaning.includes(`\`0x${BLOB_FORMAT_V1.toString(16).padStart(2, "0")}\``), "the format row must give BLOB_FORMAT_V1");
  });

  it("puts each header field where encodeBlobHeader writes it", () => {
    const keyId = "00112233-4455-6677-8899-aabbccddeeff";
    const iv = Buffer.from("a0a1a2a3a4a5a6a7a8a9aaab", "hex");
    const header = encodeBlobHeader({ algorithm: "AES-256-GCM", keyId, keyVersion: 0x01020304, iv });
    const at = (name: string) => {
      const r = field(name);
      return header.subarray(Number(r.offset), Number(r.offset) + Number(r.length));
    };
    assert.deepEqual(at("format"), Buffer.of(BLOB_FORMAT_V1));
    assert.deepEqual(at("key id"), Buffer.from(keyId.replaceAll("-", ""), "hex"));
    assert.deepEqual(at("key version"), Buffer.of(1, 2, 3, 4));
    assert.deepEqual(at("iv"), iv);
    const ciphertext = Buffer.from("c0c1c2", "hex");
    const tag = Buffer.alloc(Number(field("tag").length), 0xee);
    const blob = encodeBlob(header, ciphertext, tag);
    assert.deepEqual(blob.subarray(BLOB_HEADER_LENGTH, BLOB_HEADER_LENGTH + ciphertext.length), ciphertext);
    assert.deepEqual(blob.subarray(BLOB_HEADER_LENGTH + ciphertext.length), tag);
  });

  it("gives the algorithm ids encodeBlobHeader writes, for every AEAD and key spec", () => {
    const rows = tableRows(marked(formatsMd, "algorithm-ids"));
    assert.deepEqual(rows.map((r) => r[1]).sort(), Object.keys(AEADS).sort(), "one row per AEAD");
    assert.deepEqual(rows.map((r) => unquote(r[2]!)).sort(), [...SYMMETRIC_KEY_SPECS].sort(), "one row per key spec");
    for (const [id, name, spec, keyLength] of rows) {
      const aead = name as AeadName;
      const header = encodeBlobHeader({ algorithm: aead, keyId: "00000000-0000-4000-8000-000000000000", keyVersion: 1, iv: Buffer.alloc(12) });
      assert.equal(unquote(id!), `0x${header[Number(field("algorithm").offset)]!.toString(16).padStart(2, "0")}`, `id of ${name}`);
      assert.equal(SYMMETRIC_SPECS[unquote(spec!) as SymmetricKeySpec].aead, aead, `key spec ${spec}`);
      assert.equal(keyLength, `${AEADS[aead].keyLength} bytes`, `key length of ${name}`);
    }
  });

  describe("worked example", () => {
    const inputs = new Map(tableRows(marked(formatsMd, "example")).map(([k, v]) => [k!, unquote(v!)]));
    const input = (name: string): string => {
      const v = inputs.get(name);
      assert.ok(v !== undefined, `the example needs a "${name}" row`);
      return v;
    };
    const blob = Buffer.from(input("CiphertextBlob"), "base64");

    it("decodes to the stated key, version and algorithm", () => {
      const parsed = decodeBlob(blob);
      const spec = input("key spec") as SymmetricKeySpec;
      assert.equal(parsed.keyId, input("key id"));
      assert.equal(parsed.keyVersion, Number(input("key version")));
      assert.equal(parsed.algorithm, SYMMETRIC_SPECS[spec].aead);
    });

    it("has the stated canonical context", () => {
      const context = JSON.parse(input("EncryptionContext (as sent)")) as Record<string, string>;
      assert.equal(canonicalContext(context).toString("utf8"), input("canonical context"));
    });

    it("decrypts with the stated material and context to the stated plaintext", () => {
      const parsed = decodeBlob(blob);
      const context = JSON.parse(input("EncryptionContext (as sent)")) as Record<string, string>;
      const material = Buffer.from(input("key material (hex)"), "hex");
      const plaintext = AEADS[parsed.algorithm].decrypt(material, parsed.iv, parsed.ciphertext, parsed.tag, blobAad(parsed.header, context));
      assert.equal(plaintext.toString("utf8"), input("plaintext (UTF-8)"));
    });

    it("splits the blob into fields that cover it byte for byte", () => {
      const rows = tableRows(marked(formatsMd, "example-fields"));
      let expected = 0;
      for (const [offset, length, name, bytes] of rows) {
        assert.equal(Number(offset), expected, `"${name}" should start at ${expected}`);
        const hex = unquote(bytes!).replaceAll(" ", "");
        assert.equal(hex.length / 2, Number(length), `"${name}": length and bytes disagree`);
        assert.equal(blob.subarray(expected, expected + Number(length)).toString("hex"), hex, `"${name}" bytes`);
        expected += Number(length);
      }
      assert.equal(expected, blob.length);
    });
  });

  it("gives the wrapping AAD strings the root of trust uses", () => {
    /** The documented template, e.g. `tresor/…/v1\0<SecretId>`, with its placeholders filled. */
    const documented = (prefix: string, values: Record<string, string>): Buffer => {
      const m = new RegExp(`\`(${prefix.replaceAll("/", "\\/")}[^\`]*)\``).exec(formatsMd);
      assert.ok(m, `docs/formats.md must give the AAD starting ${prefix}`);
      let text = m[1]!.replaceAll("\\0", "\0");
      for (const [placeholder, value] of Object.entries(values)) text = text.replaceAll(`<${placeholder}>`, value);
      assert.doesNotMatch(text, /[<>]/, `unfilled placeholder in ${m[1]}`);
      return Buffer.from(text, "utf8");
    };
    const keyId = "0aefd3d2-aea1-4004-8a76-39561d5526da";
    assert.deepEqual(documented("tresor/key-material/", { "key id": keyId, "version in decimal": "12" }), keyMaterialAad(keyId, 12));
    assert.deepEqual(documented("tresor/access-key-secret/", { SecretId: "AKIDexample" }), accessKeySecretAad("AKIDexample"));
  });
});
