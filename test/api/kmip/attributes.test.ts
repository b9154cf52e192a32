// KMIP Add, Modify and Delete Attribute over the wire, in KMIP 1.4's encoding (Attribute structures
// naming attributes by text, with Attribute Index) and KMIP 2.0's (New/Current Attribute holding
// the attribute under its own tag), with Create's custom attributes and Get Attributes showing them.

import assert from "node:assert/strict";
import { createHmac, createPrivateKey } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { OPERATION, TAG } from "../../../src/api/kmip/tags.js";
import type { Ttlv, TtlvStructure } from "../../../src/api/kmip/ttlv.js";
import type { RunningNode } from "../../../src/node/node.js";
import { Connection, enumeration, int, request, startKmipNode, struct, text, type Answer } from "./wire.js";

const attribute = (name: string, value: Ttlv, index?: number): Ttlv =>
  struct(TAG.Attribute, [text(TAG.AttributeName, name), ...(index === undefined ? [] : [int(TAG.AttributeIndex, index)]), { ...value, tag: TAG.AttributeValue } as Ttlv]);
const name = (value: string): Ttlv => struct(TAG.Name, [text(TAG.NameValue, value), enumeration(TAG.NameType, 1)]);
const uid = (id: string): Ttlv => text(TAG.UniqueIdentifier, id);

function item(operation: number, payload: Ttlv[]): Ttlv[] {
  return [enumeration(TAG.Operation, operation), struct(TAG.RequestPayload, payload)];
}

function ok(a: Answer | "closed"): TtlvStructure {
  assert.notEqual(a, "closed");
  const first = (a as Answer).items[0];
  assert.equal(first?.status, 0, first?.message);
  return first!.payload!;
}

/** Get Attributes at 1.4: [name, index-in-order, value] of every Name and x- attribute. */
function namesAndCustom(payload: TtlvStructure): [string, string | number | boolean][] {
  return payload.value
    .filter((c) => c.tag === TAG.Attribute)
    .map((c) => {
      const s = c as TtlvStructure;
      const n = (s.value.find((x) => x.tag === TAG.AttributeName) as { value: string }).value;
      const v = s.value.find((x) => x.tag === TAG.AttributeValue)!;
      const value = v.type === "Structure" ? ((v.value.find((x) => x.tag === TAG.NameValue) as { value: string }).value) : (v as { value: string | number | boolean }).value;
      return [n, value] as [string, string | number | boolean];
    })
    .filter(([n]) => n === "Name" || n.startsWith("x-"));
}

describe("KMIP attributes, ReKey, MAC and Get's key formats over the wire", () => {
  let work: string;
  let node: RunningNode;
  let conn: Connection;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "tresor-kmip-attributes-"));
    const started = await startKmipNode(work);
    node = started.node;
    conn = await Connection.open(node.kmipPort as number, { caPem: started.caPem }, started.client);
  });

  after(async () => {
    conn?.close();
    await node?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("keeps Create's custom attributes and adds, modifies and deletes Names and custom attributes at KMIP 1.4", async () => {
    const created = ok(
      await conn.exchange(
        request([
          item(OPERATION.Create, [
            enumeration(TAG.ObjectType, 2),
            struct(TAG.TemplateAttribute, [
              attribute("Cryptographic Algorithm", enumeration(0, 3)),
              attribute("Cryptographic Length", int(0, 256)),
              attribute("Name", name("attr-14")),
              attribute("x-owner", text(0, "orders")),
            ]),
          ]),
        ]),
      ),
    );
    const id = (created.value.find((c) => c.tag === TAG.UniqueIdentifier) as { value: string }).value;
    const attributes = async () => namesAndCustom(ok(await conn.exchange(request([item(OPERATION.GetAttributes, [uid(id)])]))));
    assert.deepEqual(await attributes(), [["Name", "attr-14"], ["x-owner", "orders"]]);

    const added = ok(await conn.exchange(request([item(OPERATION.AddAttribute, [uid(id), attribute("Name", name("attr-14-second"))])])));
    assert.ok(added.value.some((c) => c.tag === TAG.Attribute));
    ok(await conn.exchange(request([item(OPERATION.AddAttribute, [uid(id), attribute("x-owner", text(0, "billing"))])])));
    ok(await conn.exchange(request([item(OPERATION.ModifyAttribute, [uid(id), attribute("x-owner", text(0, "payments"), 1)])])));
    assert.deepEqual(await attributes(), [["Name", "attr-14"], ["Name", "attr-14-second"], ["x-owner", "orders"], ["x-owner", "payments"]]);

    // Deleting the first Name moves the alias to the next one; Locate follows.
    ok(await conn.exchange(request([item(OPERATION.DeleteAttribute, [uid(id), text(TAG.AttributeName, "Name"), int(TAG.AttributeIndex, 0)])])));
    assert.equal((await node.store.getKey(id))?.alias, "attr-14-second");
    const located = ok(await conn.exchange(request([item(OPERATION.Locate, [attribute("Name", name("attr-14-second"))])])));
    assert.deepEqual(located.value.map((c) => (c as { value: string }).value), [id]);
    ok(await conn.exchange(request([item(OPERATION.DeleteAttribute, [uid(id), text(TAG.AttributeName, "x-owner")])])));
    assert.deepEqual(await attributes(), [["Name", "attr-14-second"], ["x-owner", "payments"]]);
    const byOwner = async (owner: string) => ok(await conn.exchange(request([item(OPERATION.Locate, [attribute("x-owner", text(0, owner))])]))).value.map((c) => (c as { value: string }).value);
    assert.deepEqual(await byOwner("payments"), [id]);
    assert.deepEqual(await byOwner("orders"), []);

    // Refused, and nothing changes: an index past the values, an attribute that cannot change, a wrong type.
    const before = await node.store.getKey(id);
    for (const bad of [
      item(OPERATION.ModifyAttribute, [uid(id), attribute("x-owner", text(0, "x"), 5)]),
      item(OPERATION.AddAttribute, [uid(id), attribute("State", enumeration(0, 2))]),
      item(OPERATION.AddAttribute, [uid(id), attribute("x-owner", { tag: 0, type: "ByteString", value: Buffer.from("ab") })]),
    ]) {
      const a = (await conn.exchange(request([bad]))) as Answer;
      assert.equal(a.items[0]?.status, 1, JSON.stringify(a.items[0]));
    }
    assert.deepEqual(await node.store.getKey(id), before);
  });

  it("adds, modifies and deletes Names at KMIP 2.0 by New and Current Attribute", async () => {
    const v2 = { major: 2, minor: 0 };
    const created = ok(
      await conn.exchange(
        request([item(OPERATION.Create, [enumeration(TAG.ObjectType, 2), struct(TAG.Attributes, [enumeration(TAG.CryptographicAlgorithm, 3), int(TAG.CryptographicLength, 256), name("attr-20")])])], v2),
      ),
    );
    const id = (created.value.find((c) => c.tag === TAG.UniqueIdentifier) as { value: string }).value;
    ok(await conn.exchange(request([item(OPERATION.AddAttribute, [uid(id), struct(TAG.NewAttribute, [name("attr-20-b")])])], v2)));
    ok(await conn.exchange(request([item(OPERATION.ModifyAttribute, [uid(id), struct(TAG.CurrentAttribute, [name("attr-20-b")]), struct(TAG.NewAttribute, [name("attr-20-c")])])], v2)));
    ok(await conn.exchange(request([item(OPERATION.DeleteAttribute, [uid(id), struct(TAG.CurrentAttribute, [name("attr-20")])])], v2)));
    assert.deepEqual((await node.store.getKey(id))?.kmip?.names, ["attr-20-c"]);
    assert.equal((await node.store.getKey(id))?.alias, "attr-20-c");
    ok(await conn.exchange(request([item(OPERATION.ModifyAttribute, [uid(id), struct(TAG.NewAttribute, [int(TAG.CryptographicUsageMask, 12)])])], v2)));
    assert.equal((await node.store.getKey(id))?.kmip?.usageMask, 12);
  });

  it("keeps KMIP 2.0 Vendor Attributes of vendor x as custom attributes: Create, Get Attributes, Get Attribute List, Locate, Set, Delete", async () => {
    const v2 = { major: 2, minor: 0 };
    // KMIP 2.0 §4.54: an Attribute structure of Vendor Identification, Attribute Name, Attribute Value.
    const vendor = (vendorId: string, attributeName: string, value?: Ttlv): Ttlv =>
      struct(TAG.Attribute, [text(TAG.VendorIdentification, vendorId), text(TAG.AttributeName, attributeName), ...(value ? [{ ...value, tag: TAG.AttributeValue } as Ttlv] : [])]);
    const created = ok(
      await conn.exchange(
        request([item(OPERATION.Create, [enumeration(TAG.ObjectType, 2), struct(TAG.Attributes, [enumeration(TAG.CryptographicAlgorithm, 3), int(TAG.CryptographicLength, 256), name("vendor-20"), vendor("x", "owner", text(0, "ledger"))])])], v2),
      ),
    );
    const id = (created.value.find((c) => c.tag === TAG.UniqueIdentifier) as { value: string }).value;
    assert.deepEqual((await node.store.getKey(id))?.kmip?.custom, { "x-owner": ["ledger"] });
    // The same attribute reads as x-owner at 1.4 and as a Vendor Attribute at 2.0.
    assert.deepEqual(namesAndCustom(ok(await conn.exchange(request([item(OPERATION.GetAttributes, [uid(id)])])))), [["Name", "vendor-20"], ["x-owner", "ledger"]]);
    const vendorAttributes = async () => {
      const got = ok(await conn.exchange(request([item(OPERATION.GetAttributes, [uid(id), struct(TAG.AttributeReference, [text(TAG.VendorIdentification, "x"), text(TAG.AttributeName, "owner")])])], v2)));
      const attributes = got.value.find((c) => c.tag === TAG.Attributes) as TtlvStructure;
      return attributes.value.map((a) => (a as TtlvStructure).value.map((c) => (c as { value: string }).value));
    };
    assert.deepEqual(await vendorAttributes(), [["x", "owner", "ledger"]]);
    const list = ok(await conn.exchange(request([item(OPERATION.GetAttributeList, [uid(id)])], v2)));
    const references = list.value.filter((c) => c.tag === TAG.AttributeReference);
    assert.ok(references.some((r) => r.type === "Structure" && JSON.stringify(r.value.map((c) => (c as { value: string }).value)) === JSON.stringify(["x", "owner"])), "a vendor Attribute Reference");
    const located = ok(await conn.exchange(request([item(OPERATION.Locate, [struct(TAG.Attributes, [vendor("x", "owner", text(0, "ledger"))])])], v2)));
    assert.deepEqual(located.value.filter((c) => c.tag === TAG.UniqueIdentifier).map((c) => (c as { value: string }).value), [id]);

    // Set Attribute replaces the one value (or adds it), and sets the usage mask; Delete by vendor reference.
    ok(await conn.exchange(request([item(OPERATION.SetAttribute, [uid(id), struct(TAG.NewAttribute, [vendor("x", "owner", text(0, "payments"))])])], v2)));
    ok(await conn.exchange(request([item(OPERATION.SetAttribute, [uid(id), struct(TAG.NewAttribute, [vendor("x", "tier", int(0, 3))])])], v2)));
    ok(await conn.exchange(request([item(OPERATION.SetAttribute, [uid(id), struct(TAG.NewAttribute, [int(TAG.CryptographicUsageMask, 12)])])], v2)));
    assert.deepEqual((await node.store.getKey(id))?.kmip?.custom, { "x-owner": ["payments"], "x-tier": [3] });
    assert.equal((await node.store.getKey(id))?.kmip?.usageMask, 12);
    ok(await conn.exchange(request([item(OPERATION.DeleteAttribute, [uid(id), struct(TAG.AttributeReference, [text(TAG.VendorIdentification, "x"), text(TAG.AttributeName, "tier")])])], v2)));
    assert.deepEqual((await node.store.getKey(id))?.kmip?.custom, { "x-owner": ["payments"] });

    // Refused, and nothing changes: another vendor, a value type custom attributes cannot hold, Set of a
    // multi-valued attribute, Set at KMIP 1.4, a New Attribute holding two.
    ok(await conn.exchange(request([item(OPERATION.AddAttribute, [uid(id), struct(TAG.NewAttribute, [vendor("x", "owner", text(0, "second"))])])], v2)));
    const before = await node.store.getKey(id);
    for (const [what, bad, header] of [
      ["vendor acme", item(OPERATION.SetAttribute, [uid(id), struct(TAG.NewAttribute, [vendor("acme", "owner", text(0, "x"))])]), v2],
      ["a Byte String value", item(OPERATION.SetAttribute, [uid(id), struct(TAG.NewAttribute, [vendor("x", "blob", { tag: 0, type: "ByteString", value: Buffer.from("ab") })])]), v2],
      ["no value", item(OPERATION.AddAttribute, [uid(id), struct(TAG.NewAttribute, [vendor("x", "owner")])]), v2],
      ["two values of x-owner", item(OPERATION.SetAttribute, [uid(id), struct(TAG.NewAttribute, [vendor("x", "owner", text(0, "x"))])]), v2],
      ["Set Attribute at 1.4", item(OPERATION.SetAttribute, [uid(id), struct(TAG.NewAttribute, [vendor("x", "owner", text(0, "x"))])]), undefined],
      ["two attributes", item(OPERATION.SetAttribute, [uid(id), struct(TAG.NewAttribute, [vendor("x", "a", text(0, "x")), vendor("x", "b", text(0, "y"))])]), v2],
    ] as const) {
      const a = (await conn.exchange(request([bad as Ttlv[]], header))) as Answer;
      assert.equal(a.items[0]?.status, 1, `${what}: ${JSON.stringify(a.items[0])}`);
    }
    assert.deepEqual(await node.store.getKey(id), before);
    // Query lists Set Attribute at 2.0 only.
    const listed = async (header?: { major: number; minor: number }) =>
      ok(await conn.exchange(request([item(OPERATION.Query, [enumeration(TAG.QueryFunction, 1)])], header))).value.map((c) => (c as { value: number }).value);
    assert.ok((await listed(v2)).includes(OPERATION.SetAttribute));
    assert.ok(!(await listed()).includes(OPERATION.SetAttribute));
  });

  it("MAC with an HMAC-SHA256 key is HMAC-SHA256 of the data under the key Get returns", async () => {
    const created = ok(
      await conn.exchange(request([item(OPERATION.Create, [enumeration(TAG.ObjectType, 2), struct(TAG.TemplateAttribute, [attribute("Cryptographic Algorithm", enumeration(0, 9)), attribute("Cryptographic Length", int(0, 256))])])])),
    );
    const id = (created.value.find((c) => c.tag === TAG.UniqueIdentifier) as { value: string }).value;
    ok(await conn.exchange(request([item(OPERATION.Activate, [uid(id)])])));
    const data = Buffer.from("authenticate me");
    const mac = ok(await conn.exchange(request([item(OPERATION.MAC, [uid(id), { tag: TAG.Data, type: "ByteString", value: data }])])));
    const got = ok(await conn.exchange(request([item(OPERATION.Get, [uid(id)])])));
    const block = (got.value.find((c) => c.tag === TAG.SymmetricKey) as TtlvStructure).value[0] as TtlvStructure;
    const keyValue = block.value.find((c) => c.tag === TAG.KeyValue) as TtlvStructure;
    const material = (keyValue.value[0] as { value: Buffer }).value;
    assert.equal(material.length, 32);
    assert.deepEqual((mac.value.find((c) => c.tag === TAG.MacData) as { value: Buffer }).value, createHmac("sha256", material).update(data).digest());
  });

  it("Get answers in the Key Format Type asked: Transparent Symmetric Key, PKCS#1, EC Private Key; others are refused", async () => {
    const create = (ops: Ttlv[][]) => conn.exchange(request(ops));
    const sym = ok(await create([item(OPERATION.Create, [enumeration(TAG.ObjectType, 2), struct(TAG.TemplateAttribute, [attribute("Cryptographic Algorithm", enumeration(0, 3)), attribute("Cryptographic Length", int(0, 128))])])]));
    const symId = (sym.value.find((c) => c.tag === TAG.UniqueIdentifier) as { value: string }).value;
    const keyMaterial = async (id: string, format: number) => {
      const got = ok(await conn.exchange(request([item(OPERATION.Get, [uid(id), enumeration(TAG.KeyFormatType, format)])])));
      const object = got.value.find((c) => c.type === "Structure") as TtlvStructure;
      const block = object.value.find((c) => c.tag === TAG.KeyBlock) as TtlvStructure;
      return (block.value.find((c) => c.tag === TAG.KeyValue) as TtlvStructure).value[0] as Ttlv;
    };
    const raw = (await keyMaterial(symId, 1)) as { value: Buffer };
    const transparent = (await keyMaterial(symId, 7)) as TtlvStructure;
    assert.equal(raw.value.length, 16);
    assert.deepEqual((transparent.value[0] as { value: Buffer }).value, raw.value);
    const pair = ok(await create([item(OPERATION.CreateKeyPair, [struct(TAG.CommonTemplateAttribute, [attribute("Cryptographic Algorithm", enumeration(0, 4)), attribute("Cryptographic Length", int(0, 2048))])])]));
    const privId = (pair.value.find((c) => c.tag === TAG.PrivateKeyUniqueIdentifier) as { value: string }).value;
    const pkcs8 = ((await keyMaterial(privId, 4)) as { value: Buffer }).value;
    const pkcs1 = ((await keyMaterial(privId, 3)) as { value: Buffer }).value;
    assert.deepEqual(pkcs1, createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }).export({ format: "der", type: "pkcs1" }));
    const refused = (await conn.exchange(request([item(OPERATION.Get, [uid(privId), enumeration(TAG.KeyFormatType, 6)])]))) as Answer;
    assert.equal(refused.items[0]?.status, 1, "an RSA key has no EC Private Key format");
  });

  it("ReKey makes an Active replacement with new material that takes the Names; the old key keeps decrypting", async () => {
    const created = ok(await conn.exchange(request([item(OPERATION.Create, [enumeration(TAG.ObjectType, 2), struct(TAG.Attributes, [enumeration(TAG.CryptographicAlgorithm, 3), int(TAG.CryptographicLength, 256), name("rekeyed")])])], { major: 2, minor: 0 })));
    const id = (created.value.find((c) => c.tag === TAG.UniqueIdentifier) as { value: string }).value;
    const refused = (await conn.exchange(request([item(OPERATION.ReKey, [uid(id)])]))) as Answer;
    assert.equal(refused.items[0]?.status, 1, "a Pre-Active key is not re-keyed");
    ok(await conn.exchange(request([item(OPERATION.Activate, [uid(id)])])));
    const rekeyed = ok(await conn.exchange(request([item(OPERATION.ReKey, [uid(id)])])));
    const newId = (rekeyed.value.find((c) => c.tag === TAG.UniqueIdentifier) as { value: string }).value;
    assert.notEqual(newId, id);
    const [oldKey, newKey] = [await node.store.getKey(id), await node.store.getKey(newId)];
    assert.deepEqual([oldKey?.kmip?.names, newKey?.kmip?.names, newKey?.alias, newKey?.kmip?.state, newKey?.keyClass], [[], ["rekeyed"], "rekeyed", "Active", "KMIP"]);
    const material = async (keyId: string) => {
      const got = ok(await conn.exchange(request([item(OPERATION.Get, [uid(keyId)])])));
      return JSON.stringify(got.value.find((c) => c.tag === TAG.SymmetricKey));
    };
    assert.notEqual(await material(id), await material(newId));
    const located = ok(await conn.exchange(request([item(OPERATION.Locate, [attribute("Name", name("rekeyed"))])])));
    assert.deepEqual(located.value.map((c) => (c as { value: string }).value), [newId]);

    // KMIP 1.4 §3.35: the old key's Replacement Object Link (0x106) and the new key's Replaced Object Link (0x107).
    const links = async (keyId: string) => {
      const got = ok(await conn.exchange(request([item(OPERATION.GetAttributes, [uid(keyId), text(TAG.AttributeName, "Link")])])));
      return got.value
        .filter((c) => c.tag === TAG.Attribute)
        .map((c) => ((c as TtlvStructure).value.find((x) => x.tag === TAG.AttributeValue) as TtlvStructure).value.map((x) => (x as { value: number | string }).value));
    };
    assert.deepEqual(await links(id), [[0x106, newId]]);
    assert.deepEqual(await links(newId), [[0x107, id]]);

    // An Offset: the next replacement waits Pre-Active, its Activation Date that far ahead; a bad Offset changes nothing.
    const offsetRekey = ok(await conn.exchange(request([item(OPERATION.ReKey, [uid(newId), { tag: TAG.Offset, type: "Interval", value: 86_400 }])])));
    const laterId = (offsetRekey.value.find((c) => c.tag === TAG.UniqueIdentifier) as { value: string }).value;
    const later = await node.store.getKey(laterId);
    assert.deepEqual([later?.kmip?.state, later?.state, later?.kmip?.names], ["PreActive", "Disabled", ["rekeyed"]]);
    assert.equal((later?.kmip?.activationDate ?? 0) - (later?.createTime ?? 0), 86_400);
    const before = [await node.store.getKey(laterId), await node.store.getKey(newId)];
    for (const bad of [
      [uid(laterId)], // Pre-Active: not re-keyed
      [uid(newId), { tag: TAG.Offset, type: "Integer", value: 5 } as Ttlv], // an Offset is an Interval
      [uid(newId), { tag: TAG.Offset, type: "Interval", value: 400 * 86_400 } as Ttlv], // more than a year
      [uid(newId), struct(TAG.TemplateAttribute, [attribute("x-new", text(0, "v"))])], // new attributes
    ]) {
      const a = (await conn.exchange(request([item(OPERATION.ReKey, bad)]))) as Answer;
      assert.equal(a.items[0]?.status, 1, JSON.stringify(a.items[0]));
    }
    assert.deepEqual([await node.store.getKey(laterId), await node.store.getKey(newId)], before);
  });
});
