// The console in a real browser (Debian's chromium, headless, driven by playwright-core) against
// `scripts/dev` and its identity provider: the demo user signs in, creates an organization and a
// workspace, watches it reach Ready, creates a project, a group and role assignments, downloads
// the kubeconfig, reads the audit history and signs out; a user of another organization sees
// none of it. Every page is scanned with axe-core (no serious or critical violations) and kept
// as a screenshot at 1280 px and at a phone's width in e2e/artifacts/.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { capture, launch, person, signIn } from "./browser.mjs";
import { startDev } from "./dev.mjs";

const suffix = Date.now().toString(36);

let dev;
let browser;

before(async () => {
  dev = await startDev();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  dev?.stop();
});

const shared = {};

test("the demo user runs an organization from the console", { timeout: 25 * 60_000 }, async () => {
  const { context, page } = await person(browser);
  await page.goto(`${dev.server}/console/`);
  await capture(page, "signin");
  await signIn(page, dev, "demo");
  await page.getByText("You belong to no organization yet").waitFor();
  await capture(page, "organizations");

  // The API's words next to the field it names, and nothing created.
  const orgName = page.getByLabel("Organization name");
  await orgName.fill("");
  await page.getByRole("button", { name: "Create organization" }).click();
  await page.locator('[aria-invalid="true"]').waitFor();
  assert.equal(await orgName.getAttribute("aria-invalid"), "true");
  const said = await page.locator(`#${await orgName.getAttribute("aria-describedby")}`).innerText();
  assert.ok(said.length > 0, "the error is shown under the field");
  // Nothing was created: a fresh load still lists no organization.
  await page.reload();
  await page.getByText("You belong to no organization yet").waitFor();

  // Keyboard only: Tab to the field, type, Enter.
  for (let i = 0; i < 30 && !(await orgName.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press("Tab");
  }
  assert.ok(await orgName.evaluate((el) => el === document.activeElement), "the form is reachable by Tab");
  const org = `acme-${suffix}`;
  await page.keyboard.type(org);
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/console\/org\/\?org=/);
  await page.getByRole("heading", { name: org, level: 1 }).waitFor();
  shared.orgUrl = page.url();
  await page.getByText("No workspaces yet").waitFor();

  await page.getByLabel("Workspace name").fill("dev");
  await page.getByLabel("Plan", { exact: true }).selectOption("starter");
  await capture(page, "organization");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await page.waitForURL(/\/console\/workspace\/\?org=.*&ws=/);
  shared.wsUrl = page.url();
  // Live status: it goes through its provisioning steps to Ready by itself.
  await page.locator(".facts .status", { hasText: "Ready" }).waitFor({ timeout: 10 * 60_000 });
  await page.getByRole("heading", { name: "provision: done" }).waitFor();
  await page.getByRole("button", { name: "Download kubeconfig" }).waitFor();
  await capture(page, "workspace");

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Download kubeconfig" }).click(),
  ]);
  const kubeconfig = JSON.parse(readFileSync(await download.path(), "utf8"));
  assert.equal(kubeconfig.kind, "Config");
  assert.match(kubeconfig.clusters[0].cluster.server, /^https:\/\//);
  assert.ok(JSON.stringify(kubeconfig.users[0].user.exec).includes("kubectl-credential"), "kubectl signs in with the credential plugin");
  assert.match(await page.getByLabel("Commands").innerText(), new RegExp(`hexabase workspace kubeconfig ${org} dev > kubeconfig`));

  // A project and a sub-project: a tree.
  await page.getByRole("link", { name: "Projects" }).click();
  await page.getByText("No projects yet").waitFor();
  await page.getByLabel("Project name").fill("web");
  await page.getByRole("button", { name: "Create project" }).click();
  await page.getByRole("group", { name: "Projects" }).getByRole("link", { name: "web", exact: true }).waitFor();
  await page.getByLabel("Project name").fill("web-api");
  await page.getByLabel("Parent project").selectOption({ label: "web" });
  await page.getByRole("button", { name: "Create project" }).click();
  await page.locator(".tree .tree").getByRole("link", { name: "web-api" }).waitFor();
  await capture(page, "projects");

  // A group with the demo user in it.
  await page.getByRole("link", { name: "Groups" }).click();
  await page.getByLabel("Group name").fill("developers");
  await page.getByRole("button", { name: "Create group" }).click();
  const developers = page.getByRole("group", { name: "Groups" }).getByRole("button", { name: "developers", exact: true });
  await developers.click();
  await page.getByRole("button", { name: "Add member" }).click();
  await page.getByRole("button", { name: "Remove demo@hexabase.local from developers" }).waitFor();
  await capture(page, "groups");

  // The group gets `edit` in project web, and `view` across the workspace.
  await page.getByRole("link", { name: "Projects" }).click();
  await page.getByRole("group", { name: "Projects" }).getByRole("link", { name: "web", exact: true }).click();
  await page.getByRole("heading", { name: "Project web" }).waitFor();
  await page.getByText("No group has a role in this project yet").waitFor();
  await page.getByLabel("Group", { exact: true }).selectOption({ label: "developers" });
  await page.getByLabel("Role", { exact: true }).selectOption("edit");
  await page.getByRole("button", { name: "Assign role" }).click();
  await page.getByRole("button", { name: "Remove edit from developers" }).waitFor();
  const createRole = page.getByRole("form", { name: "Create a custom role" });
  await createRole.getByLabel("Role name").fill("log-reader");
  await createRole.getByLabel("Verbs").fill("get, list");
  await createRole.getByLabel("Resources").fill("pods, pods/log");
  await createRole.getByRole("button", { name: "Create role" }).click();
  await page.getByRole("button", { name: "Delete role log-reader" }).waitFor();
  const addRule = page.getByRole("form", { name: "Add a rule to log-reader" });
  await addRule.getByLabel("Verbs").fill("get");
  await addRule.getByLabel("Resources").fill("deployments");
  await addRule.getByLabel("API groups").fill("apps");
  await addRule.getByRole("button", { name: "Add rule to log-reader" }).click();
  await page.getByRole("button", { name: "Remove rule get on deployments in apps from log-reader" }).waitFor();
  assert.ok(await page.getByText("get,list on pods,pods/log in core", { exact: true }).isVisible());
  await capture(page, "project");

  await page.goto(`${shared.wsUrl}&tab=access`);
  await page.getByLabel("Group", { exact: true }).selectOption({ label: "developers" });
  await page.getByLabel("Cluster role", { exact: true }).selectOption("view");
  await page.getByRole("button", { name: "Assign cluster role" }).click();
  await page.getByRole("button", { name: "Remove view from developers" }).waitFor();
  await capture(page, "cluster-roles");

  // Members and an invitation; billing (not configured here).
  await page.goto(`${shared.orgUrl}&tab=members`);
  await page.getByRole("cell", { name: /demo@hexabase.local/ }).first().waitFor();
  await page.getByLabel("Email", { exact: true }).fill("guest@hexabase.local");
  await page.getByRole("button", { name: "Send invitation" }).click();
  await page.getByText("guest@hexabase.local as member").waitFor();
  // The only admin cannot step down: the API's refusal is shown by the button.
  await page.getByRole("button", { name: "Make demo@hexabase.local a member" }).click();
  await page.getByRole("alert").filter({ hasText: "the last admin" }).waitFor();
  await capture(page, "members");
  await page.goto(`${shared.orgUrl}&tab=billing`);
  await page.getByText("Billing is not configured").waitFor();
  await capture(page, "billing-off");

  // The audit history lists what was done, filtered by resource type.
  await page.goto(`${shared.orgUrl}&tab=audit`);
  const history = page.locator("table.audit");
  for (const event of ["OrganizationCreated", "WorkspaceRequested", "WorkspaceProvisioned", "ProjectCreated", "GroupCreated", "GroupMemberAdded", "RoleAssigned", "ClusterRoleAssigned"]) {
    await history.getByRole("cell", { name: event, exact: true }).first().waitFor();
  }
  // Newest first by default: the invitation comes before the organization's creation.
  const newestFirst = await history.locator("tbody tr td:nth-child(2)").allInnerTexts();
  assert.ok(newestFirst.indexOf("UserInvited") < newestFirst.indexOf("OrganizationCreated"), newestFirst.join(" "));
  await capture(page, "audit");
  await page.getByLabel("Resource type", { exact: true }).selectOption("Organization");
  await page.getByRole("button", { name: "Apply filter" }).click();
  await history.getByRole("cell", { name: "ProjectCreated", exact: true }).waitFor({ state: "detached" });
  await history.getByRole("cell", { name: "OrganizationCreated", exact: true }).waitFor();
  assert.equal(await page.getByLabel("Resource type", { exact: true }).inputValue(), "Organization", "the filter stays shown");
  const resources = await history.locator("tbody tr td:nth-child(3)").allInnerTexts();
  assert.ok(resources.length > 0 && resources.every((r) => r.startsWith("Organization")), resources.join(" | "));
  assert.equal(await history.getByRole("cell", { name: "ProjectCreated", exact: true }).count(), 0);
  await page.getByLabel("Order", { exact: true }).selectOption("oldest");
  await page.getByRole("button", { name: "Apply filter" }).click();
  await history.locator("tbody tr").first().locator("td", { hasText: "OrganizationCreated" }).waitFor();
  // A time range in the future has nothing.
  await page.getByLabel("From", { exact: true }).fill("2099-01-01T00:00");
  await page.getByRole("button", { name: "Apply filter" }).click();
  await page.getByText("No events match").waitFor();

  // Rename the organization (Settings).
  await page.goto(`${shared.orgUrl}&tab=settings`);
  shared.orgName = `${org}-renamed`;
  await page.getByLabel("New name").fill(shared.orgName);
  await page.getByRole("button", { name: "Rename organization" }).click();
  await page.getByRole("heading", { name: shared.orgName, level: 1 }).waitFor();

  // Rename, change the plan, then delete the workspace.
  page.on("dialog", (dialog) => void dialog.accept());
  await page.goto(shared.wsUrl);
  await page.getByLabel("New name").fill("dev-renamed");
  await page.getByRole("button", { name: "Rename workspace" }).click();
  await page.getByRole("heading", { name: "dev-renamed", level: 1 }).waitFor();
  await page.getByLabel("Plan", { exact: true }).selectOption("team");
  await page.getByRole("button", { name: "Change plan" }).click();
  await page.locator(".facts dd", { hasText: /^team$/ }).waitFor();
  assert.equal(await page.getByLabel("Plan", { exact: true }).inputValue(), "team", "the form shows the new plan");
  await page.getByRole("button", { name: "Delete workspace" }).click();
  await page.locator(".facts .status", { hasText: /Deleting|Deleted/ }).waitFor();
  await page.locator(".facts .status", { hasText: "Deleted" }).waitFor({ timeout: 5 * 60_000 });
  await page.getByRole("heading", { name: "delete: done" }).waitFor();

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Hexabase" }).waitFor();
  await page.goto(shared.wsUrl);
  await page.getByRole("heading", { name: "Sign in to Hexabase" }).waitFor();
  await context.close();
});

test("a user of another organization sees none of it", { timeout: 5 * 60_000 }, async () => {
  assert.ok(shared.orgUrl && shared.wsUrl, "the first test made an organization and a workspace");
  const { context, page } = await person(browser);
  await signIn(page, dev, "other");
  await page.getByText("You belong to no organization yet").waitFor();
  await page.getByLabel("Organization name").fill(`other-${suffix}`);
  await page.getByRole("button", { name: "Create organization" }).click();
  await page.waitForURL(/\/console\/org\/\?org=/);
  await page.goto(`${dev.server}/console/`);
  await page.getByRole("link", { name: `other-${suffix}` }).waitFor();
  assert.equal(await page.getByRole("link", { name: `acme-${suffix}` }).count(), 0);

  for (const url of [shared.orgUrl, `${shared.orgUrl}&tab=audit`, shared.wsUrl, `${shared.wsUrl}&tab=projects`]) {
    await page.goto(url);
    await page.getByRole("heading", { name: "Not found" }).waitFor();
    assert.equal(await page.getByText(`acme-${suffix}`).count(), 0, url);
  }
  // What those pages would call, with this browser's session: nothing of it answers.
  const { org, ws } = Object.fromEntries(new URL(shared.wsUrl).searchParams);
  for (const path of [
    `/api/v1/organizations/${org}`,
    `/api/v1/organizations/${org}/events`,
    `/api/v1/organizations/${org}/workspaces/${ws}`,
    `/api/v1/workspaces/${ws}/projects`,
    `/api/v1/workspaces/${ws}/groups`,
  ]) {
    const response = await page.request.get(`${dev.server}${path}`);
    assert.equal(response.status(), 404, `${path}: ${await response.text()}`);
  }
  await capture(page, "not-found");
  await context.close();
});

test("an invited user accepts the invitation and sees the organization", { timeout: 5 * 60_000 }, async () => {
  assert.ok(shared.orgUrl, "the first test made an organization and invited guest@hexabase.local");
  const { context, page } = await person(browser);
  await signIn(page, dev, "guest");
  await page.getByRole("heading", { name: "Invitations for you" }).waitFor();
  await capture(page, "invitation");
  await page.getByRole("button", { name: `Accept invitation to ${shared.orgName}`, exact: true }).click();
  await page.waitForURL(/\/console\/org\/\?org=/);
  assert.equal(page.url(), shared.orgUrl);
  await page.getByRole("heading", { name: shared.orgName, level: 1, exact: true }).waitFor();
  // A member, not an admin: the workspace list without the create form.
  await page.getByRole("heading", { name: "Workspaces" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Create workspace" }).count(), 0);
  await page.goto(`${shared.orgUrl}&tab=members`);
  await page.getByRole("cell", { name: /guest@hexabase.local/ }).waitFor();
  await context.close();
});
