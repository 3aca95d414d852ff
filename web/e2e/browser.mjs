// The browser of the console tests: Debian's chromium, headless, driven by playwright-core; a
// context per person; an axe-core scan and screenshots at two widths for every page kept.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const artifacts = new URL("./artifacts/", import.meta.url).pathname;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

export async function launch() {
  mkdirSync(artifacts, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox"],
  });
}

/** A browser of its own (cookies and all); the dev CA is not in chromium's trust store. */
export async function person(browser) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: DESKTOP, acceptDownloads: true });
  context.setDefaultTimeout(30_000);
  return { context, page: await context.newPage() };
}

async function settled(page) {
  await page.waitForLoadState("networkidle");
  // Nothing still loading: a page stuck on "Loading…" fails here rather than being scanned.
  await page.getByRole("status").filter({ hasText: /^Loading/ }).first().waitFor({ state: "detached", timeout: 30_000 });
}

/** Scan `page` with axe-core (WCAG 2.1 A and AA: nothing serious or critical) and keep
 * screenshots at both widths as e2e/artifacts/NAME-{desktop,phone}.png. */
export async function capture(page, name) {
  await settled(page);
  for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(viewport);
    await page.addScriptTag({ content: axeSource });
    const result = await page.evaluate(() =>
      globalThis.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
    );
    const serious = result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    assert.deepEqual(serious, [], `accessibility of ${name} (${size})`);
    // Nothing wider than the screen: no sideways scrolling, at either width.
    const [wide, screen] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(wide <= screen, `${name} (${size}) is ${wide} px wide on a ${screen} px screen`);
    await page.screenshot({ path: `${artifacts}${name}-${size}.png`, fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}

/** Sign `user` in through the console's sign-in page and dex's form. */
export async function signIn(page, dev, user) {
  await page.goto(`${dev.server}/console/`);
  await page.getByRole("heading", { name: "Sign in to Hexabase" }).waitFor();
  await page.getByRole("link", { name: "Sign in with local" }).click();
  // dex's own sign-in form.
  await page.locator('input[name="login"]').fill(`${user}@hexabase.local`);
  await page.locator('input[name="password"]').fill(dev.password(user));
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(`${dev.server}/console/`);
  await page.getByRole("heading", { name: "Organizations", level: 1 }).waitFor();
}
