// The CAM (version 2019-01-16) and STS (version 2018-08-13) actions Tresor serves: users, access
// keys, policies, roles and AssumeRole, with the field names of the official SDK's cam and sts
// models. Each maps its validated parameters onto AccessControl, which authorizes it.

import { MAX_SESSION_SECONDS, MIN_SESSION_SECONDS, type AttachmentView, type KmipClientView, type PolicyView } from "../../service/access-control.js";
import { KmsError } from "../../service/errors.js";
import type { AccessKeyRecord, PrincipalRecord } from "../../store/store.js";
import { action, type ActionTable } from "./actions.js";
import { array, encryptionContext, integer, integerOneOf, oneOf, optional, string } from "./params.js";

export const CAM_VERSION = "2019-01-16";
export const STS_VERSION = "2018-08-13";

/** Uins and policy ids travel as JSON numbers; ours stay below 2^53. */
const uin = () => integer(1, Number.MAX_SAFE_INTEGER);
const policyId = () => integer(1, Number.MAX_SAFE_INTEGER);
const name = () => string({ min: 1, max: 64 });
const roleId = () => string({ min: 1, max: 64, pattern: /^\d+$/, patternText: "a role id (digits)" });
/** Tencent's policy documents are at most 6144 characters. */
const policyDocument = () => string({ min: 1, max: 6144 });
const pageNumber = () => integer(1, 1_000_000);
const perPage = () => integer(1, 200);

/** CAM's time format: "2006-01-02 15:04:05" (UTC here). */
function camTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 19).replace("T", " ");
}

function userInfo(user: PrincipalRecord) {
  return {
    Uin: Number(user.principalId),
    Name: user.name,
    Uid: Number(user.principalId),
    Remark: user.remark,
    ConsoleLogin: 0,
    PhoneNum: "",
    CountryCode: "",
    Email: "",
    CreateTime: camTime(user.createTime),
  };
}

function accessKeyInfo(key: AccessKeyRecord) {
  return { AccessKeyId: key.secretId, Status: key.status, CreateTime: camTime(key.createTime), LastUsedTime: key.lastUsedTime === 0 ? null : camTime(key.lastUsedTime) };
}

function policyInfo(p: PolicyView & { attachments: number }) {
  return {
    PolicyId: p.policyId,
    PolicyName: p.name,
    AddTime: camTime(p.createTime),
    UpdateTime: camTime(p.updateTime),
    Type: p.type,
    Description: p.description,
    CreateMode: p.type === 2 ? 2 : 1,
    Attachments: p.attachments,
    AttachEntityCount: p.attachments,
    ServiceType: p.type === 2 ? "kms" : null,
  };
}

function attachmentInfo(p: AttachmentView) {
  return { PolicyId: p.policyId, PolicyName: p.name, AddTime: camTime(p.attachTime), CreateMode: p.type === 2 ? 2 : 1, PolicyType: p.type === 2 ? "QCS" : "User", Description: p.description, Remark: p.description };
}

function kmipClientInfo(c: KmipClientView) {
  return { Fingerprint: c.fingerprint, UserName: c.userName, Uin: Number(c.principalId), Subject: c.subject, CreateTime: camTime(c.createTime) };
}

function roleInfo(role: PrincipalRecord) {
  return {
    RoleId: role.principalId,
    RoleName: role.name,
    PolicyDocument: role.trustPolicy ?? "",
    Description: role.remark,
    AddTime: camTime(role.createTime),
    UpdateTime: camTime(role.createTime),
    ConsoleLogin: 0,
    RoleType: "user",
    SessionDuration: role.maxSessionSeconds,
    RoleArn: `qcs::cam::uin/${role.accountUin}:roleName/${role.name}`,
  };
}

/** Either an id or a name of a role, and exactly one. */
function roleBy(id: string | undefined, name: string | undefined, idField: string, nameField: string): { id?: string; name?: string } {
  return oneRef<string, { id?: string; name?: string }>(id, name, idField, nameField, (v) => ({ id: v }), (v) => ({ name: v }));
}

function policyBy(id: number | undefined, name: string | undefined): { policyId?: number; policyName?: string } {
  return oneRef<number, { policyId?: number; policyName?: string }>(id, name, "PolicyId", "PolicyName", (v) => ({ policyId: v }), (v) => ({ policyName: v }));
}

function oneRef<I, R>(id: I | undefined, name: string | undefined, idField: string, nameField: string, byId: (v: I) => R, byName: (v: string) => R): R {
  if (id !== undefined && name !== undefined) throw new KmsError("InvalidParameter", `give only one of the parameters "${idField}" and "${nameField}"`);
  if (id !== undefined) return byId(id);
  if (name !== undefined) return byName(name);
  throw missingOneOf(idField, nameField);
}

function missingOneOf(a: string, b: string): KmsError {
  return new KmsError("MissingParameter", `one of the parameters "${a}" and "${b}" is required`);
}

export const CAM_ACTIONS: ActionTable<"cam"> = {
  AddUser: action(
    {
      Name: name(),
      Remark: optional(string({ max: 255 })),
      ConsoleLogin: optional(integerOneOf([0])),
      UseApi: optional(integerOneOf([0, 1])),
      Password: optional(string({ max: 0, pattern: /^$/, patternText: "empty: console passwords do not exist here" })),
      NeedResetPassword: optional(integerOneOf([0])),
      PhoneNum: optional(string({ max: 32 })),
      CountryCode: optional(string({ max: 8 })),
      Email: optional(string({ max: 256 })),
    },
    async (p, { service, caller }) => {
      const { user, accessKey } = await service.access.addUser(caller, { name: p.Name, remark: p.Remark ?? "", useApi: (p.UseApi ?? 1) === 1 });
      return { Uin: Number(user.principalId), Name: user.name, Uid: Number(user.principalId), Password: "", SecretId: accessKey?.secretId ?? "", SecretKey: accessKey?.secretKey ?? "" };
    },
  ),

  GetUser: action({ Name: name() }, async (p, { service, caller }) => {
    const user = await service.access.getUser(caller, p.Name);
    return { ...userInfo(user), RecentlyLoginIP: "", RecentlyLoginTime: "" };
  }),

  ListUsers: action({}, async (_p, { service, caller }) => ({ Data: (await service.access.listUsers(caller)).map(userInfo) })),

  DeleteUser: action({ Name: name(), Force: optional(integerOneOf([0, 1])) }, async (p, { service, caller }) => {
    await service.access.deleteUser(caller, p.Name, p.Force === 1);
    return {};
  }),

  CreateAccessKey: action({ TargetUin: optional(uin()), Description: optional(string({ max: 255 })) }, async (p, { service, caller }) => {
    const { record, secretKey } = await service.access.createAccessKey(caller, p.TargetUin === undefined ? undefined : String(p.TargetUin));
    return { AccessKey: { AccessKeyId: record.secretId, SecretAccessKey: secretKey, Status: record.status, CreateTime: camTime(record.createTime), Description: p.Description ?? "" } };
  }),

  ListAccessKeys: action({ TargetUin: optional(uin()) }, async (p, { service, caller }) => ({
    AccessKeys: (await service.access.listAccessKeys(caller, p.TargetUin === undefined ? undefined : String(p.TargetUin))).map(accessKeyInfo),
  })),

  UpdateAccessKey: action({ AccessKeyId: string({ min: 1, max: 128 }), Status: oneOf(["Active", "Inactive"]), TargetUin: optional(uin()) }, async (p, { service, caller }) => {
    await service.access.updateAccessKey(caller, p.AccessKeyId, p.Status, p.TargetUin === undefined ? undefined : String(p.TargetUin));
    return {};
  }),

  DeleteAccessKey: action({ AccessKeyId: string({ min: 1, max: 128 }), TargetUin: optional(uin()) }, async (p, { service, caller }) => {
    await service.access.deleteAccessKey(caller, p.AccessKeyId, p.TargetUin === undefined ? undefined : String(p.TargetUin));
    return {};
  }),

  CreatePolicy: action({ PolicyName: name(), PolicyDocument: policyDocument(), Description: optional(string({ max: 300 })) }, async (p, { service, caller }) => {
    const id = await service.access.createPolicy(caller, { name: p.PolicyName, document: p.PolicyDocument, description: p.Description ?? "" });
    return { PolicyId: id };
  }),

  GetPolicy: action({ PolicyId: policyId() }, async (p, { service, caller }) => {
    const policy = await service.access.getPolicy(caller, p.PolicyId);
    return {
      PolicyName: policy.name,
      Description: policy.description,
      Type: policy.type,
      AddTime: camTime(policy.createTime),
      UpdateTime: camTime(policy.updateTime),
      PolicyDocument: policy.document,
      PresetAlias: policy.type === 2 ? policy.name : null,
      IsServiceLinkedRolePolicy: 0,
    };
  }),

  ListPolicies: action(
    { Rp: optional(perPage()), Page: optional(pageNumber()), Scope: optional(oneOf(["All", "QCS", "Local"])), Keyword: optional(string({ max: 64 })) },
    async (p, { service, caller }) => {
      const page = await service.access.listPolicies(caller, {
        page: p.Page ?? 1,
        perPage: p.Rp ?? 20,
        scope: p.Scope ?? "All",
        ...(p.Keyword ? { keyword: p.Keyword } : {}),
      });
      return { TotalNum: page.totalCount, List: page.items.map(policyInfo), ServiceTypeList: ["kms"] };
    },
  ),

  DeletePolicy: action({ PolicyId: array(policyId(), { min: 1, max: 100 }) }, async (p, { service, caller }) => {
    await service.access.deletePolicies(caller, p.PolicyId);
    return {};
  }),

  AttachUserPolicy: action({ PolicyId: policyId(), AttachUin: uin() }, async (p, { service, caller }) => {
    await service.access.attachPolicy(caller, "user", { id: String(p.AttachUin) }, { policyId: p.PolicyId });
    return {};
  }),

  DetachUserPolicy: action({ PolicyId: policyId(), DetachUin: uin() }, async (p, { service, caller }) => {
    await service.access.detachPolicy(caller, "user", { id: String(p.DetachUin) }, { policyId: p.PolicyId });
    return {};
  }),

  ListAttachedUserPolicies: action({ TargetUin: uin(), Page: optional(pageNumber()), Rp: optional(perPage()) }, async (p, { service, caller }) => {
    const page = await service.access.listAttachedPolicies(caller, "user", { id: String(p.TargetUin) }, { page: p.Page ?? 1, perPage: p.Rp ?? 20 });
    return { TotalNum: page.totalCount, List: page.items.map(attachmentInfo) };
  }),

  CreateRole: action(
    {
      RoleName: name(),
      PolicyDocument: policyDocument(),
      Description: optional(string({ max: 300 })),
      ConsoleLogin: optional(integerOneOf([0])),
      SessionDuration: optional(integer(MIN_SESSION_SECONDS, MAX_SESSION_SECONDS)),
    },
    async (p, { service, caller }) => {
      const role = await service.access.createRole(caller, {
        name: p.RoleName,
        trustPolicy: p.PolicyDocument,
        description: p.Description ?? "",
        ...(p.SessionDuration === undefined ? {} : { sessionSeconds: p.SessionDuration }),
      });
      return { RoleId: role.principalId };
    },
  ),

  GetRole: action({ RoleId: optional(roleId()), RoleName: optional(name()) }, async (p, { service, caller }) => {
    const role = await service.access.getRole(caller, roleBy(p.RoleId, p.RoleName, "RoleId", "RoleName"));
    return { RoleInfo: roleInfo(role) };
  }),

  DeleteRole: action({ RoleId: optional(roleId()), RoleName: optional(name()) }, async (p, { service, caller }) => {
    await service.access.deleteRole(caller, roleBy(p.RoleId, p.RoleName, "RoleId", "RoleName"));
    return {};
  }),

  AttachRolePolicy: action(
    { PolicyId: optional(policyId()), PolicyName: optional(name()), AttachRoleId: optional(roleId()), AttachRoleName: optional(name()) },
    async (p, { service, caller }) => {
      await service.access.attachPolicy(caller, "role", roleBy(p.AttachRoleId, p.AttachRoleName, "AttachRoleId", "AttachRoleName"), policyBy(p.PolicyId, p.PolicyName));
      return {};
    },
  ),

  DetachRolePolicy: action(
    { PolicyId: optional(policyId()), PolicyName: optional(name()), DetachRoleId: optional(roleId()), DetachRoleName: optional(name()) },
    async (p, { service, caller }) => {
      await service.access.detachPolicy(caller, "role", roleBy(p.DetachRoleId, p.DetachRoleName, "DetachRoleId", "DetachRoleName"), policyBy(p.PolicyId, p.PolicyName));
      return {};
    },
  ),

  ListAttachedRolePolicies: action(
    { Page: pageNumber(), Rp: perPage(), RoleId: optional(roleId()), RoleName: optional(name()), PolicyType: optional(oneOf(["User", "QCS"])), Keyword: optional(string({ max: 64 })) },
    async (p, { service, caller }) => {
      const page = await service.access.listAttachedPolicies(caller, "role", roleBy(p.RoleId, p.RoleName, "RoleId", "RoleName"), { page: p.Page, perPage: p.Rp });
      const items = page.items.filter(
        (a) => (p.PolicyType === undefined || (p.PolicyType === "QCS") === (a.type === 2)) && (p.Keyword === undefined || a.name.toLowerCase().includes(p.Keyword.toLowerCase())),
      );
      return { TotalNum: p.PolicyType === undefined && p.Keyword === undefined ? page.totalCount : items.length, List: items.map(attachmentInfo) };
    },
  ),

  /** Tresor extension: which statement decides a user's or role's request (`tresor admin simulate`). */
  SimulatePrincipalPolicy: action(
    {
      UserName: optional(name()),
      RoleName: optional(name()),
      Action: string({ min: 1, max: 128 }),
      Resource: string({ min: 1, max: 1024 }),
      EncryptionContext: optional(encryptionContext()),
    },
    async (p, { service, caller }) => {
      const target = oneRef<string, { kind: "user" | "role"; name: string }>(p.UserName, p.RoleName, "UserName", "RoleName", (v) => ({ kind: "user", name: v }), (v) => ({ kind: "role", name: v }));
      const { decision, explanation } = await service.access.simulate(caller, {
        ...target,
        action: p.Action,
        resource: p.Resource,
        ...(p.EncryptionContext === undefined ? {} : { encryptionContext: p.EncryptionContext }),
      });
      return {
        Allowed: decision.allowed,
        Reason: decision.reason,
        Statement: decision.statement ? { PolicyId: decision.statement.policyId, PolicyName: decision.statement.policyName, Index: decision.statement.index } : null,
        Explanation: explanation,
      };
    },
  ),

  /** Tresor extension: maps a KMIP client certificate (PEM) to a user; KMIP requests under it act as that user. */
  AddKmipClient: action({ UserName: name(), Certificate: string({ min: 1, max: 16_384 }) }, async (p, { service, caller }) => ({
    KmipClient: kmipClientInfo(await service.access.addKmipClient(caller, { userName: p.UserName, certificatePem: p.Certificate })),
  })),

  ListKmipClients: action({}, async (_p, { service, caller }) => ({ KmipClients: (await service.access.listKmipClients(caller)).map(kmipClientInfo) })),

  DeleteKmipClient: action({ Fingerprint: string({ min: 64, max: 64, pattern: /^[0-9a-f]{64}$/, patternText: "64 lowercase hex digits (SHA-256 of the certificate's DER)" }) }, async (p, { service, caller }) => {
    await service.access.deleteKmipClient(caller, p.Fingerprint);
    return {};
  }),
};

export const STS_ACTIONS: ActionTable<"sts"> = {
  AssumeRole: action(
    {
      RoleArn: string({ min: 1, max: 256 }),
      RoleSessionName: string({ min: 2, max: 128 }),
      DurationSeconds: optional(integer(MIN_SESSION_SECONDS, MAX_SESSION_SECONDS)),
    },
    async (p, { service, caller }) => {
      const session = await service.access.assumeRole(caller, {
        roleArn: p.RoleArn,
        sessionName: p.RoleSessionName,
        ...(p.DurationSeconds === undefined ? {} : { durationSeconds: p.DurationSeconds }),
      });
      return {
        Credentials: { Token: session.token, TmpSecretId: session.tmpSecretId, TmpSecretKey: session.tmpSecretKey },
        ExpiredTime: session.expiresAt,
        Expiration: new Date(session.expiresAt * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"),
      };
    },
  ),
};
