// The TTLV codec: the encoding examples of the KMIP 1.4 specification (§9.1.2, tag 0x420020 "Compromise
// Date" as there), round trips, and every way a hostile message can be malformed.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeTtlv, encodeTtlv, itemLength, TtlvError, type Ttlv } from "../../../src/api/kmip/ttlv.js";

const T = 0x420020;
const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ""), "hex");

/** KMIP 1.4 §9.1.2 "Examples", byte for byte. */
const SPEC_EXAMPLES: { name: string; item: Ttlv; bytes: string }[] = [
  { name: "an Integer containing the decimal value 8", item: { tag: T, type: "Integer", value: 8 }, bytes: "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00" },
  { name: "a Long Integer containing 123456789000000000", item: { tag: T, type: "LongInteger", value: 123456789000000000n }, bytes: "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00" },
  {
    name: "a Big Integer containing 1234567890000000000000000000",
    item: { tag: T, type: "BigInteger", value: 1234567890000000000000000000n },
    bytes: "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00",
  },
  { name: "an Enumeration with value 255", item: { tag: T, type: "Enumeration", value: 255 }, bytes: "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00" },
  { name: "a Boolean with the value True", item: { tag: T, type: "Boolean", value: true }, bytes: "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01" },
  { name: "a Text String with the value 'Hello World'", item: { tag: T, type: "TextString", value: "Hello World" }, bytes: "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00" },
  { name: "a Byte String with the value { 0x01, 0x02, 0x03 }", item: { tag: T, type: "ByteString", value: hex("010203") }, bytes: "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00" },
  { name: "a Date-Time, Friday, March 14, 2008, 11:56:40 GMT", item: { tag: T, type: "DateTime", value: 0x47da67f8n }, bytes: "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8" },
  { name: "an Interval, containing the value for 10 days", item: { tag: T, type: "Interval", value: 864000 }, bytes: "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00" },
  {
    name: "a Structure containing an Enumeration, value 254, followed by an Integer, value 255, having tags 420004 and 420005 respectively",
    item: { tag: T, type: "Structure", value: [{ tag: 0x420004, type: "Enumeration", value: 254 }, { tag: 0x420005, type: "Integer", value: 255 }] },
    bytes: "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
  },
];

function rejects(bytes: Buffer, pattern: RegExp, limits?: Parameters<typeof decodeTtlv>[1]): void {
  assert.throws(() => decodeTtlv(bytes, limits), (e: unknown) => e instanceof TtlvError && pattern.test(e.message));
}

describe("TTLV codec", () => {
  for (const example of SPEC_EXAMPLES) {
    it(`encodes and decodes the specification's example: ${example.name}`, () => {
      assert.deepEqual(encodeTtlv(example.item), hex(example.bytes));
      assert.deepEqual(decodeTtlv(hex(example.bytes)), example.item);
    });
  }

  it("round-trips negative numbers, empty strings and nested structures", () => {
    const item: Ttlv = {
      tag: 0x420078,
      type: "Structure",
      value: [
        { tag: 0x420001, type: "Integer", value: -2 },
        { tag: 0x420002, type: "LongInteger", value: -(2n ** 63n) },
        { tag: 0x420003, type: "BigInteger", value: -(2n ** 64n) - 5n },
        { tag: 0x420003, type: "BigInteger", value: 2n ** 63n },
        { tag: 0x420004, type: "TextString", value: "" },
        { tag: 0x420005, type: "ByteString", value: Buffer.alloc(0) },
        { tag: 0x420006, type: "TextString", value: "clé 🔑" },
        { tag: 0x420007, type: "Structure", value: [] },
        { tag: 0x540001, type: "DateTimeExtended", value: 1_700_000_000_000_000n },
      ],
    };
    assert.deepEqual(decodeTtlv(encodeTtlv(item)), item);
    assert.equal(itemLength(encodeTtlv(item).subarray(0, 8)), encodeTtlv(item).length);
  });

  it("refuses a tag outside KMIP's ranges", () => {
    rejects(hex("43 00 20 02 00000004 00000008 00000000"), /neither a KMIP tag/);
  });

  it("refuses an unknown type", () => {
    rejects(hex("42 00 20 0C 00000004 00000008 00000000"), /not a TTLV type/);
  });

  it("refuses a length that runs past the end of the message or of its structure", () => {
    rejects(hex("42 00 20 07 00000010 48656C6C6F000000"), /runs past the end/);
    rejects(hex("42 00 20 07 FFFFFFFF 48656C6C6F000000"), /runs past the end/);
    // a child claiming more than its parent holds
    rejects(hex("42 00 20 01 00000010 42 00 04 07 00000010 4142434445464748"), /runs past the end/);
  });

  it("refuses a header cut short and bytes after the message", () => {
    rejects(hex("42 00 20 02 0000"), /cut short/);
    rejects(hex("42 00 20 02 00000004 00000008 00000000 00"), /follow the message/);
  });

  it("refuses wrong lengths for fixed-size types and non-zero padding", () => {
    rejects(hex("42 00 20 02 00000008 0000000800000000"), /Integer has length 4/);
    rejects(hex("42 00 20 06 00000004 0000000100000000"), /Boolean has length 8/);
    rejects(hex("42 00 20 02 00000004 00000008 00000001"), /padding/);
    rejects(hex("42 00 20 07 00000003 414243 0000000001"), /padding/);
    rejects(hex("42 00 20 04 00000004 00000001 00000000"), /multiple of 8/);
    rejects(hex("42 00 20 01 00000004 00000000 00000000"), /multiple of 8/);
  });

  it("refuses a Boolean other than 0 or 1 and a Text String that is not UTF-8", () => {
    rejects(hex("42 00 20 06 00000008 0000000000000002"), /Boolean is 0 or 1/);
    rejects(hex("42 00 20 07 00000002 C328000000000000"), /not UTF-8/);
  });

  it("refuses nesting deeper than the limit and more items than the limit", () => {
    let item: Ttlv = { tag: 0x420001, type: "Integer", value: 1 };
    for (let i = 0; i < 20; i++) item = { tag: 0x420002, type: "Structure", value: [item] };
    rejects(encodeTtlv(item), /nest deeper than 16/);
    assert.doesNotThrow(() => decodeTtlv(encodeTtlv(item), { maxDepth: 32, maxItems: 100 }));
    const many: Ttlv = { tag: 0x420002, type: "Structure", value: Array.from({ length: 50 }, () => ({ tag: 0x420001, type: "Integer" as const, value: 1 })) };
    rejects(encodeTtlv(many), /more than 10 items/, { maxDepth: 4, maxItems: 10 });
  });
});
