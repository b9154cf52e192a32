// A token without CKM_AES_GCM is refused with a clear error, before any key is made. Its own file
// (so its own process): SoftHSM2 reads the mechanism list from its configuration at C_Initialize.

import assert from "node:assert/strict";
import { after, it } from "node:test";
import { Pkcs11RootOfTrust } from "../../src/rootkey/pkcs11.js";
import { SoftHsm, softhsmSkip } from "../helpers/softhsm.js";

let hsm: SoftHsm | undefined;
after(async () => {
  await hsm?.remove();
});

it("refuses a token that does not offer CKM_AES_GCM, on create and on open", { skip: softhsmSkip }, async () => {
  // SoftHSM2 2.6.1 ignores "-CKM_…" exclusions here; a list of what stays works.
  hsm = await SoftHsm.create("slots.mechanisms = CKM_AES_KEY_GEN,CKM_AES_CBC_PAD,CKM_AES_KEY_WRAP_PAD\n");
  const token = await hsm.initToken("tresor-no-gcm");
  const config = { module: hsm.module, tokenLabel: token.label, pin: token.pin, keyLabel: "root" };
  await assert.rejects(Pkcs11RootOfTrust.create(config), /token "tresor-no-gcm" does not offer CKM_AES_GCM/);
  assert.equal((await hsm.inspectKey(token, "root")).found, 0, "no key was generated");
  await hsm.createKeyByHand(token, "root", { sensitive: true, extractable: false });
  await assert.rejects(Pkcs11RootOfTrust.open(config), /does not offer CKM_AES_GCM/);
});
