// FileRootOfTrust: the shared contract, plus what is particular to a key in a file.

import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import { FileRootOfTrust } from "../../src/rootkey/file.js";
import { keyMaterialAad, RootOfTrustError } from "../../src/rootkey/root-of-trust.js";
import { rootOfTrustContract } from "./root-of-trust-contract.js";

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "tresor-rootkey-"));
}

rootOfTrustContract("FileRootOfTrust", async () => {
  const dir = await tempDir();
  const path = join(dir, "root.key");
  let rot = await FileRootOfTrust.create(path);
  return {
    rot,
    keyBytes: await readFile(path),
    reopen: async () => {
      await rot.close();
      rot = await FileRootOfTrust.open(path);
      return rot;
    },
    cleanup: async () => {
      await rot.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("FileRootOfTrust", () => {
  let dir = "";
  before(async () => {
    dir = await tempDir();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const aad = keyMaterialAad("k", 1);
  const secret = Buffer.from("a secret worth wrapping");

  it("creates a 32-byte file with mode 0600, even under a permissive umask", async () => {
    const path = join(dir, "created.key");
    const previous = process.umask(0);
    let rot: FileRootOfTrust;
    try {
      rot = await FileRootOfTrust.create(path);
    } finally {
      process.umask(previous);
    }
    const info = await stat(path);
    assert.equal(info.size, 32);
    assert.equal(info.mode & 0o777, 0o600);
    assert.equal(rot.description, `file:${path}`);
    await rot.close();
  });

  it("describes itself by its absolute path", async () => {
    const previous = process.cwd();
    process.chdir(dir);
    try {
      const rot = await FileRootOfTrust.create("relative.key");
      assert.equal(rot.description, `file:${join(dir, "relative.key")}`);
      await rot.close();
    } finally {
      process.chdir(previous);
    }
  });

  it("creates a different key each time", async () => {
    const a = await FileRootOfTrust.create(join(dir, "a.key"));
    const b = await FileRootOfTrust.create(join(dir, "b.key"));
    assert.notDeepEqual(await readFile(join(dir, "a.key")), await readFile(join(dir, "b.key")));
    await assert.rejects(b.unwrap(await a.wrap(secret, aad), aad), RootOfTrustError, "another root key cannot unwrap");
    await a.close();
    await b.close();
  });

  it("refuses to overwrite an existing file or follow a symlink, leaving them unchanged", async () => {
    const path = join(dir, "existing.key");
    const original = Buffer.alloc(32, 7);
    await writeFile(path, original, { mode: 0o600 });
    await assert.rejects(FileRootOfTrust.create(path), (err: Error) => err.message.includes(path) && /exists/.test(err.message));
    assert.deepEqual(await readFile(path), original);

    const link = join(dir, "dangling.key");
    const target = join(dir, "target-of-dangling.key");
    await symlink(target, link);
    await assert.rejects(FileRootOfTrust.create(link));
    await assert.rejects(stat(target), { code: "ENOENT" });
  });

  it("unwraps after close and reopen what the created key wrapped", async () => {
    const path = join(dir, "reopen.key");
    const first = await FileRootOfTrust.create(path);
    const wrapped = await first.wrap(secret, aad);
    await first.close();
    await assert.rejects(first.unwrap(wrapped, aad), /closed/);
    const second = await FileRootOfTrust.open(path);
    assert.deepEqual(await second.unwrap(wrapped, aad), secret);
    assert.equal(second.description, first.description);
    await second.close();
  });

  it("lays out a wrapped value as 0x01 || iv(12) || ciphertext || tag(16)", async () => {
    const rot = await FileRootOfTrust.create(join(dir, "layout.key"));
    const wrapped = await rot.wrap(secret, aad);
    assert.equal(wrapped[0], 0x01);
    assert.equal(wrapped.length, 1 + 12 + secret.length + 16);
    assert.equal((await rot.wrap(Buffer.alloc(0), aad)).length, 29);
    await rot.close();
  });

  for (const mode of [0o644, 0o640, 0o604, 0o610, 0o601]) {
    it(`refuses a key file with mode 0${mode.toString(8)}, naming the path`, async () => {
      const path = join(dir, `mode-${mode.toString(8)}.key`);
      const content = Buffer.alloc(32, 0x5c);
      await writeFile(path, content);
      await chmod(path, mode);
      await assert.rejects(FileRootOfTrust.open(path), (err: Error) => {
        assert.ok(err.message.includes(path), err.message);
        assert.match(err.message, /group or others/);
        assert.equal(err.message.includes(content.toString("hex")), false);
        return true;
      });
    });
  }

  it("accepts a read-only key file (0400)", async () => {
    const path = join(dir, "readonly.key");
    const rot = await FileRootOfTrust.create(path);
    const wrapped = await rot.wrap(secret, aad);
    await rot.close();
    await chmod(path, 0o400);
    const again = await FileRootOfTrust.open(path);
    assert.deepEqual(await again.unwrap(wrapped, aad), secret);
    await again.close();
  });

  for (const length of [0, 16, 31, 33, 64]) {
    it(`refuses a ${length}-byte key file, naming the path but not the contents`, async () => {
      const path = join(dir, `length-${length}.key`);
      const content = Buffer.alloc(length, 0x3e);
      await writeFile(path, content, { mode: 0o600 });
      await assert.rejects(FileRootOfTrust.open(path), (err: Error) => {
        assert.ok(err.message.includes(path), err.message);
        assert.match(err.message, /32 bytes/);
        if (length > 0) {
          assert.equal(err.message.includes(content.toString("hex")), false);
          assert.equal(err.message.includes(content.toString("latin1")), false);
        }
        return true;
      });
    });
  }

  it("refuses a directory and a missing file, naming the path", async () => {
    const sub = join(dir, "a-directory");
    await mkdir(sub, { mode: 0o700 });
    await assert.rejects(FileRootOfTrust.open(sub), (err: Error) => err.message.includes(sub));
    const missing = join(dir, "missing.key");
    await assert.rejects(FileRootOfTrust.open(missing), (err: Error) => err.message.includes(missing));
  });

  it("shows only its description to util.inspect, JSON.stringify and string conversion", async () => {
    const path = join(dir, "shown.key");
    const rot = await FileRootOfTrust.create(path);
    const key = await readFile(path);
    const inspected = inspect(rot, { showHidden: true, depth: Infinity });
    const json = JSON.stringify({ rootOfTrust: rot });
    assert.ok(inspected.includes(path));
    assert.deepEqual(JSON.parse(json), { rootOfTrust: { description: `file:${path}` } });
    const spacedHex = key.toString("hex").replace(/(..)(?!$)/g, "$1 ");
    for (const text of [inspected, json, `${String(rot)}`]) {
      for (const form of [key.toString("hex"), spacedHex, key.toString("base64"), [...key].join(",")]) {
        assert.equal(text.includes(form), false, text);
      }
    }
    await rot.close();
  });

  it("rejects non-Buffer arguments", async () => {
    const rot = await FileRootOfTrust.create(join(dir, "types.key"));
    await assert.rejects(rot.wrap("text" as unknown as Buffer, aad), TypeError);
    await assert.rejects(rot.unwrap(await rot.wrap(secret, aad), "aad" as unknown as Buffer), TypeError);
    await rot.close();
  });
});
