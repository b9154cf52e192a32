// The Tang server actions (Tresor extensions of the kms product, docs/api.md "Tang servers"): their
// parameter schemas and wire shapes. The Tang protocol itself is served by src/api/tang/.

import { MAX_ALLOWED_NETWORKS, TANG_NAME_PATTERN, type TangServerView } from "../../service/tang.js";
import type { ActionDefinition } from "./actions.js";
import { PROTECTION_LEVELS } from "../../keys/key.js";
import { array, oneOf, optional, string, type Schema } from "./params.js";

const name = () => string({ min: 1, max: 48, pattern: TANG_NAME_PATTERN, patternText: "letters, digits, - and _, starting with a letter or digit" });
const networks = () => array(string({ min: 1, max: 64 }), { max: MAX_ALLOWED_NETWORKS });

function versionsOut(versions: TangServerView["signingKey"]["versions"]) {
  return versions.map((v) => ({ Version: v.version, CreateTime: v.createTime, Thumbprint: v.thumbprint, ThumbprintSha1: v.thumbprintSha1, Advertised: v.advertised }));
}

/** A Tang server in the wire shape. */
export function tangServerOut(view: TangServerView) {
  return {
    Name: view.name,
    State: view.state,
    ProtectionLevel: view.protectionLevel,
    AllowedNetworks: view.allowedNetworks,
    CreateTime: view.createTime,
    SigningKey: { KeyId: view.signingKey.keyId, KeyState: view.signingKey.state, Versions: versionsOut(view.signingKey.versions) },
    ExchangeKey: { KeyId: view.exchangeKey.keyId, KeyState: view.exchangeKey.state, Versions: versionsOut(view.exchangeKey.versions) },
  };
}

/** Built with the table's own `action` helper (passed in, so this file does not import actions.ts at run time). */
export function tangActions(action: <S extends Schema>(schema: S, run: ActionDefinition<S>["run"]) => ActionDefinition<Schema>) {
  return {
    CreateTangServer: action({ Name: name(), AllowedNetworks: optional(networks()), ProtectionLevel: optional(oneOf(PROTECTION_LEVELS)) }, async (p, { service, caller }) => ({
      TangServer: tangServerOut(
        await service.tang.createTangServer(caller, { name: p.Name, allowedNetworks: p.AllowedNetworks ?? [], ...(p.ProtectionLevel ? { protectionLevel: p.ProtectionLevel } : {}) }),
      ),
    })),
    ListTangServers: action({}, async (_p, { service, caller }) => ({ TangServers: (await service.tang.listTangServers(caller)).map(tangServerOut) })),
    DescribeTangServer: action({ Name: name() }, async (p, { service, caller }) => ({ TangServer: tangServerOut(await service.tang.describeTangServer(caller, p.Name)) })),
    UpdateTangServer: action({ Name: name(), AllowedNetworks: networks() }, async (p, { service, caller }) => {
      await service.tang.updateTangServer(caller, p.Name, p.AllowedNetworks);
      return {};
    }),
    RotateTangServer: action({ Name: name() }, async (p, { service, caller }) => ({ TangServer: tangServerOut(await service.tang.rotateTangServer(caller, p.Name)) })),
    EnableTangServer: action({ Name: name() }, async (p, { service, caller }) => {
      await service.tang.setTangServerState(caller, p.Name, "EnableKey");
      return {};
    }),
    DisableTangServer: action({ Name: name() }, async (p, { service, caller }) => {
      await service.tang.setTangServerState(caller, p.Name, "DisableKey");
      return {};
    }),
  };
}
