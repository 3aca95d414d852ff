// Billing in the console, against `scripts/dev` with billing on and Stripe's API played by
// stripe-mock: a paid plan's workspace is refused with the API's 402 under the plan field, the
// billing page shows the organization's state, and its checkout and portal buttons send the
// browser to the URLs Stripe answered (Stripe's own pages are not reachable here: the browser's
// requests to other sites are answered by a stand-in page, and the URL it went to is checked).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { capture, launch, person, signIn } from "./browser.mjs";
import { startDev, startStripeMock } from "./dev.mjs";

let stripe;
let dev;
let browser;

before(async () => {
  stripe = await startStripeMock();
  dev = await startDev({
    HEXABASE_BILLING__SECRET_KEY: "sk_test_123",
    HEXABASE_BILLING__API_URL: stripe.url,
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  dev?.stop();
  stripe?.stop();
});

test("an organization admin is sent to Stripe's checkout and portal", { timeout: 10 * 60_000 }, async () => {
  const { context, page } = await person(browser);
  // Anything not on this machine (Stripe's hosted pages) gets a stand-in page.
  await context.route(
    (url) => url.hostname !== "127.0.0.1" && url.hostname !== "localhost",
    (route) => route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>Stripe</title><h1>Stripe</h1>" }),
  );
  await signIn(page, dev, "demo");
  const org = `paying-${Date.now().toString(36)}`;
  await page.getByLabel("Organization name").fill(org);
  await page.getByRole("button", { name: "Create organization" }).click();
  await page.waitForURL(/\/console\/org\/\?org=/);
  const orgUrl = page.url();

  // Starter has a price: without a subscription the API answers 402, shown under the plan.
  await page.getByLabel("Workspace name").fill("dev");
  const plan = page.getByLabel("Plan", { exact: true });
  await plan.selectOption("starter");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await page.locator('select[aria-invalid="true"]').waitFor();
  const said = await page.locator(`#${await plan.getAttribute("aria-describedby")}`).innerText();
  assert.match(said, /checkout/i, said);
  await capture(page, "payment-required");
  // Nothing was created.
  await page.reload();
  await page.getByText("No workspaces yet").waitFor();

  await page.goto(`${orgUrl}&tab=billing`);
  await page.getByText("Subscription", { exact: true }).waitFor();
  await capture(page, "billing-subscription");
  // The Stripe customer is made by a saga just after the organization: until then the API
  // answers 503 `billing_pending`, shown above the button; a later click goes through.
  for (let i = 0; !page.url().startsWith("https://checkout.stripe.com/"); i++) {
    assert.ok(i < 30, `checkout kept failing: ${await page.getByRole("alert").allInnerTexts()}`);
    if (i > 0) await page.waitForTimeout(1000);
    await page.getByLabel("Plan", { exact: true }).selectOption("starter");
    await page.getByRole("button", { name: "Go to checkout" }).click();
    await page.waitForURL(/^https:\/\/checkout\.stripe\.com\//, { timeout: 5000 }).catch(() => {});
  }
  assert.match(page.url(), /^https:\/\/checkout\.stripe\.com\/.*cs_test_/);

  await page.goto(`${orgUrl}&tab=billing`);
  await page.getByRole("button", { name: "Open the billing portal" }).click();
  await page.waitForURL((url) => url.hostname !== "127.0.0.1");
  assert.ok(!page.url().startsWith(dev.server), page.url());
  // Where checkout sends the buyer back (scripts/dev's billing.success_url).
  await page.goto(`${dev.server}/console/?billing=success&session_id=cs_test_1`);
  await page.getByText("Payment received").waitFor();
  await context.close();
});
