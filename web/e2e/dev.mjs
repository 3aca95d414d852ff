// `scripts/dev` for the browser tests: its own directory, ports, database and streams (so it
// runs beside a developer's and the other tests), the demo user and two more: `other` and `guest`.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "playwright-core";

const repository = new URL("../..", import.meta.url).pathname;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** `scripts/dev`, with `env` added to its environment (e.g. `HEXABASE_BILLING__…`). */
export async function startDev(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), "hxb-console-"));
  const port = await freePort();
  const id = `${process.pid}_${Date.now()}`;
  const child = spawn(join(repository, "scripts/dev"), [], {
    cwd: repository,
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      ...process.env,
      HEXABASE_DEV_DIR: dir,
      HEXABASE_DEV_PORT: String(port),
      HEXABASE_DEV_DEX_PORT: String(await freePort()),
      HEXABASE_DEV_DATABASE: `hxb_test_console_${id}`,
      HEXABASE_DEV_STREAM: `HXBT_CONSOLE_${id}`,
      HEXABASE_DEV_USERS: "demo other guest",
      ...env,
    },
  });
  let log = "";
  child.stderr.on("data", (chunk) => {
    log = (log + chunk).slice(-20000);
  });
  const server = `https://127.0.0.1:${port}`;
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
  };
  // Up once the API answers /readyz (the first start may build the console and the binary).
  const http = await request.newContext({ ignoreHTTPSErrors: true });
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`scripts/dev exited ${child.exitCode}:\n${log}`);
    if (Date.now() > deadline) {
      stop();
      throw new Error(`scripts/dev did not come up:\n${log}`);
    }
    try {
      const response = await http.get(`${server}/readyz`, { timeout: 2000 });
      if (response.ok()) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  await http.dispose();
  const password = (user) => readFileSync(join(dir, `${user}-password`), "utf8").trim();
  return { server, dir, password, stop, log: () => log };
}

/** A test peer `scripts/peers` built: its path, from the peers' manifest. */
export function peer(name) {
  const dir = process.env.HEXABASE_PEERS_DIR ?? "/var/cache/hexabase/peers";
  const line = readFileSync(join(dir, "manifest.txt"), "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .find(([n]) => n === name);
  if (!line) throw new Error(`${name} is not in ${dir}/manifest.txt: run scripts/peers`);
  return line[2];
}

/** stripe-mock (Stripe's API from its OpenAPI document) on a free port. */
export async function startStripeMock() {
  const port = await freePort();
  const child = spawn(peer("stripe-mock"), ["-http-addr", `127.0.0.1:${port}`, "-https-addr", `127.0.0.1:${await freePort()}`], {
    stdio: "ignore",
  });
  const url = `http://127.0.0.1:${port}`;
  const http = await request.newContext();
  for (let i = 0; ; i++) {
    try {
      await http.get(`${url}/v1/customers`, { timeout: 1000 });
      break;
    } catch (error) {
      if (i > 100 || child.exitCode !== null) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await http.dispose();
  return { url, stop: () => child.kill() };
}
