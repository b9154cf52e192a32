// The web console end to end in a real browser: Debian's chromium driven by playwright-core (no
// downloaded browser). An administrator signs in, creates a key, finds it in the list, disables it
// (Encrypt is then refused, in the console and through the SDK), schedules and cancels its
// deletion, makes a user with an encrypt-only policy and an access key; that user signs in and is
// refused; the administrator finds those events in the audit view by user and by key. Every request
// the page makes must go to the server, no console error may occur, axe-core finds no serious or
// critical violation on each main page, and screenshots of the main pages are saved as artifacts
// (dist/artifacts/console/, copied into docs/console/ for docs/console.md).

import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import type { Browser, Locator, Page } from "playwright-core";
import { KmsClient, KmsClientError } from "../../../src/sdk/index.js";
import { chromiumSkip, launchChromium } from "../../helpers/chromium.js";
import { startServer, type TestServer } from "../../helpers/server.js";

const ARTIFACTS = fileURLToPath(new URL("../../../artifacts/console/", import.meta.url));
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const WAIT_MS = 10_000;

/** Runs axe-core in the page; returns the serious and critical violations (rule id: the first targets). */
async function axeViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, not as a page script, so the console's CSP stays as it
  // is; once per document (the console changes pages without reloading).
  if (!(await page.evaluate(() => "axe" in globalThis))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.targets.join(", ")}`);
}

describe("the web console in chromium", { skip: chromiumSkip }, () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  const requests: string[] = [];
  const consoleErrors: string[] = [];
  const axeFindings: Record<string, string[]> = {};

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on("request", (r) => requests.push(r.url()));
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(`page error: ${e.message}`));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Saves the page as it shows at the top (tables scrolled back to their start), then checks it with axe. */
  async function shot(name: string, mask: Locator[] = []): Promise<void> {
    await page.evaluate(() => {
      for (const wrap of document.querySelectorAll(".table-wrap")) wrap.scrollLeft = 0;
      window.scrollTo(0, 0);
    });
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), mask });
    axeFindings[name] = await axeViolations(page);
  }

  async function signIn(secretId: string, secretKey: string): Promise<void> {
    await page.locator("#secretId").fill(secretId);
    await page.locator("#secretKey").fill(secretKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
  }

  async function signOut(): Promise<void> {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#secretId").waitFor();
  }

  async function keyAction(label: string, value?: string, screenshot?: string): Promise<void> {
    await page.getByRole("button", { name: label, exact: true }).click();
    const dialog = page.getByRole("dialog");
    if (value !== undefined) await dialog.locator("#action-input").fill(value);
    if (screenshot !== undefined) await shot(screenshot);
    await dialog.getByRole("button", { name: "Confirm" }).click();
    await dialog.waitFor({ state: "detached" });
  }

  /** Reloads the page at `hash`: the console must then ask for the credential again. */
  async function reloadAt(hash: string): Promise<void> {
    await page.evaluate((h) => void (location.hash = h), hash);
    await page.reload();
    await page.locator("#secretId").waitFor();
  }

  const keyState = () => page.getByTestId("key-state");

  it("serves the console with a strict CSP, sends a browser's GET / there, and the admin signs in", async () => {
    const res = await page.goto(`${server.url}/`);
    assert.equal(new URL(page.url()).pathname, "/console/");
    const csp = res?.headers()["content-security-policy"] ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    await page.locator("#secretId").waitFor();
    await shot("sign-in");
    await signIn(server.secretId, server.secretKey);
    await page.getByRole("heading", { name: "Keys" }).waitFor();
  });

  let keyId = "";

  it("creates a key, shows it in the list, and its page", async () => {
    await page.getByRole("link", { name: "Create key" }).click();
    await page.locator("#new-alias").fill("console-e2e");
    await page.locator("#new-description").fill("made in the browser");
    await shot("create-key");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.getByRole("heading", { name: "console-e2e" }).waitFor();
    keyId = decodeURIComponent(new URL(page.url()).hash.split("/")[2] ?? "");
    assert.match(keyId, /^[0-9a-f-]{36}$/);
    assert.equal(await keyState().textContent(), "Enabled");

    await page.getByRole("link", { name: "Keys", exact: true }).click();
    const row = page.getByRole("row").filter({ hasText: keyId });
    await row.waitFor();
    assert.match((await row.textContent()) ?? "", /console-e2e.*ENCRYPT_DECRYPT.*SM4.*Enabled.*SOFTWARE/);
    await shot("keys");

    await page.locator("#search").fill("no-such-alias");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.getByText("Nothing to show.").waitFor();
    await page.locator("#search").fill("console");
    await page.locator("#state").selectOption("1");
    await page.getByRole("button", { name: "Apply" }).click();
    await row.waitFor();
  });

  it("disables the key: the state changes, and Encrypt is refused in the console and through the SDK", async () => {
    await page.getByRole("link", { name: "console-e2e" }).click();
    await keyState().waitFor();
    await shot("key");
    await page.locator("#try-plaintext").fill("hello from the console");
    await page.getByRole("button", { name: "Encrypt", exact: true }).click();
    await page.waitForFunction(() => ((document.querySelector("#try-ciphertext") as HTMLTextAreaElement | null)?.value ?? "").length > 0);
    await page.getByRole("button", { name: "Decrypt", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "Decrypted: hello from the console" }).waitFor();

    await keyAction("Disable");
    await page.waitForFunction(() => document.querySelector("[data-testid=key-state]")?.textContent === "Disabled");
    await page.getByRole("button", { name: "Encrypt", exact: true }).click();
    await page.getByRole("alert").filter({ hasText: "ResourceUnavailable.CmkDisabled" }).waitFor();

    const sdk = new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: server.secretKey, region: server.region });
    await assert.rejects(sdk.encrypt({ KeyId: keyId, Plaintext: Buffer.from("x").toString("base64") }), (e: KmsClientError) => e.code === "ResourceUnavailable.CmkDisabled");
  });

  it("signs and verifies with a signing key in the try panel", async () => {
    const sdk = new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: server.secretKey, region: server.region });
    const created = await sdk.callProduct("kms", "CreateKey", { Alias: "console-signer", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_ECC" });
    const back = page.url();
    // Only the hash changes: the same document, still signed in.
    await page.goto(`${server.url}/console/#/keys/${String(created.KeyId)}`);
    await page.locator("#try-message").fill("sign me");
    await page.getByRole("button", { name: "Sign", exact: true }).click();
    await page.waitForFunction(() => ((document.querySelector("#try-signature") as HTMLTextAreaElement | null)?.value ?? "").length > 0);
    await page.getByRole("button", { name: "Verify", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "The signature is valid." }).waitFor();
    await page.locator("#try-message").fill("not what was signed");
    await page.getByRole("button", { name: "Verify", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "The signature is not valid." }).waitFor();
    await page.goto(back);
    await keyState().waitFor();
  });

  it("schedules the key's deletion and cancels it; Escape dismisses the confirmation", async () => {
    await page.getByRole("button", { name: "Schedule deletion", exact: true }).click();
    await page.getByRole("dialog").waitFor();
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "detached" });
    assert.equal(await keyState().textContent(), "Disabled");
    await keyAction("Schedule deletion", "7", "confirm");
    await page.waitForFunction(() => document.querySelector("[data-testid=key-state]")?.textContent === "PendingDelete");
    await page.getByRole("button", { name: "Cancel deletion" }).waitFor();
    await keyAction("Cancel deletion");
    await page.waitForFunction(() => document.querySelector("[data-testid=key-state]")?.textContent === "Disabled");
  });

  let user = { secretId: "", secretKey: "" };

  it("makes a user with an encrypt-only policy and an access key (its secret shown once)", async () => {
    await page.getByRole("link", { name: "Access" }).click();
    await page.locator("#user-name").fill("encrypt-only");
    await page.getByRole("button", { name: "Add user" }).click();
    await page.getByRole("cell", { name: "encrypt-only", exact: true }).waitFor();

    await page.getByRole("link", { name: "Policies" }).click();
    await page.locator("#policy-document").fill("{ not json");
    await page.getByRole("alert").filter({ hasText: "Not valid JSON" }).waitFor();
    await page.locator("#policy-template").selectOption("encrypt");
    await page.locator("#policy-name").fill("encrypt-only-policy");
    await page.getByRole("button", { name: "Create policy" }).click();
    await page.getByRole("cell", { name: "encrypt-only-policy", exact: true }).waitFor();
    await shot("policies");

    await page.getByRole("link", { name: "Users" }).click();
    await page.locator("#attach-user").selectOption({ label: "encrypt-only" });
    await page.locator("#attach-policy").selectOption({ label: "encrypt-only-policy" });
    await page.getByRole("button", { name: "Attach", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "Done." }).waitFor();
    await shot("users");

    await page.getByRole("link", { name: "Access keys" }).click();
    await page.locator("#keys-user").selectOption({ label: "encrypt-only" });
    await page.getByRole("button", { name: "Create access key" }).click();
    await page.getByTestId("new-secret-key").waitFor();
    user = { secretId: ((await page.getByTestId("new-secret-id").textContent()) ?? "").trim(), secretKey: ((await page.getByTestId("new-secret-key").textContent()) ?? "").trim() };
    // No secret in a saved screenshot: the new SecretKey is masked.
    await shot("access-keys", [page.getByTestId("new-secret-key")]);
    assert.match(user.secretId, /^AKID/);
    assert.ok(user.secretKey.length >= 20);

    await page.getByRole("link", { name: "Policy simulator" }).click();
    await page.locator("#sim-user").selectOption({ label: "encrypt-only" });
    await page.locator("#sim-action").fill("kms:Decrypt");
    await page.getByRole("button", { name: "Simulate" }).click();
    await page.getByRole("status").filter({ hasText: "Denied" }).waitFor();
    await shot("simulator");
  });

  it("signs in as that user, who is refused what the policy does not allow; a reload forgets the credential", async () => {
    await signOut();
    await signIn(user.secretId, user.secretKey);
    await page.getByRole("link", { name: "Keys", exact: true }).click();
    await page.getByRole("alert").filter({ hasText: "UnauthorizedOperation" }).waitFor();
    await shot("refused");
    await reloadAt(`#/keys/${keyId}`);
    await signIn(user.secretId, user.secretKey);
    await page.getByRole("link", { name: "Keys", exact: true }).click();
    await page.getByRole("alert").filter({ hasText: "UnauthorizedOperation" }).waitFor();
    await shot("refused");
    await reloadAt("#/access/users");
    await signIn(user.secretId, user.secretKey);
    await page.getByRole("alert").filter({ hasText: "UnauthorizedOperation" }).first().waitFor();
    await signOut();
  });

  it("creates a role in the console, and signs in with a session of it (temporary credentials and token)", async () => {
    await signIn(server.secretId, server.secretKey);
    const sdk = new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: server.secretKey, region: server.region });
    const account = String(((await sdk.callProduct("kms", "DescribeKey", { KeyId: keyId })).KeyMetadata as { CreatorUinString: string }).CreatorUinString);
    await page.getByRole("link", { name: "Access", exact: true }).click();
    await page.getByRole("link", { name: "Roles" }).click();
    await page.locator("#role-name").fill("console-reader");
    const trust = await page.locator("#role-trust").inputValue();
    await page.locator("#role-trust").fill(trust.replace("ACCOUNT", account));
    await page.getByRole("button", { name: "Create role" }).click();
    await page.getByRole("status").filter({ hasText: "Done." }).waitFor();
    await shot("roles");
    await sdk.callProduct("cam", "AttachRolePolicy", { PolicyName: "QcloudKMSReadOnlyAccess", AttachRoleName: "console-reader" });
    const assumed = await sdk.callProduct("sts", "AssumeRole", { RoleArn: `qcs::cam::uin/${account}:roleName/console-reader`, RoleSessionName: "browser" });
    const credentials = assumed.Credentials as { TmpSecretId: string; TmpSecretKey: string; Token: string };
    await signOut();

    await page.locator("#token").fill(credentials.Token);
    await signIn(credentials.TmpSecretId, credentials.TmpSecretKey);
    await page.getByRole("link", { name: "Keys", exact: true }).click();
    await page.getByRole("row").filter({ hasText: keyId }).waitFor();
    await signOut();
  });

  it("finds those events in the audit view by user and by key, with the chain verified", async () => {
    await signIn(server.secretId, server.secretKey);
    await page.getByRole("link", { name: "Audit" }).click();
    await page.getByRole("button", { name: "Check the chain" }).click();
    await page.getByTestId("chain-status").filter({ hasText: "Verified" }).waitFor();

    await page.locator("#audit-user").fill("encrypt-only");
    await page.getByRole("button", { name: "Apply" }).click();
    const refused = page.getByRole("row").filter({ hasText: "kms:ListKeyDetail" }).filter({ hasText: "UnauthorizedOperation" });
    await refused.first().waitFor();

    await page.locator("#audit-user").fill("");
    await page.locator("#audit-key").fill(keyId);
    await page.getByRole("button", { name: "Apply" }).click();
    for (const action of ["kms:CreateKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"]) {
      await page.getByRole("row").filter({ hasText: action }).first().waitFor();
    }
    await shot("audit");
    await page.getByRole("button", { name: /^Details #/ }).first().click();
    await page.waitForFunction(() => document.activeElement?.id === "event-title");
    assert.match((await page.locator("#event-title").textContent()) ?? "", /^Event #\d+$/);
  });

  it("switches to Chinese, and fits a phone-width screen", async () => {
    await page.locator("#language").selectOption("zh-CN");
    await page.getByRole("link", { name: "密钥" }).click();
    await page.getByRole("heading", { name: "密钥" }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), "zh-CN");
    await shot("keys-zh-CN");
    await page.locator("#language").selectOption("en");

    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than a phone's screen`);
    await shot("keys-phone");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("moves focus by keyboard, visibly", async () => {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return el ? { tag: el.tagName, outline: getComputedStyle(el).outlineStyle } : undefined;
    });
    assert.ok(focused && focused.tag !== "BODY", "Tab moves focus");
    assert.notEqual(focused?.outline, "none", "the focused control shows an outline");
  });

  it("made every request to the server only, with no console error and no serious accessibility violation", () => {
    const origin = new URL(server.url).origin;
    const elsewhere = requests.filter((u) => !u.startsWith("data:") && new URL(u).origin !== origin);
    assert.deepEqual(elsewhere, [], "requests to other hosts");
    assert.ok(requests.some((u) => u === `${origin}/`), "the API was called");
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(
      Object.entries(axeFindings).filter(([, v]) => v.length > 0),
      [],
    );
    assert.ok(Object.keys(axeFindings).length >= 8, "axe ran on each main page");
  });
});
