// In-memory stand-ins for OpenClaw's plugin API, bitrouter-mcp (behind the McpClient interface) and
// child_process.spawn, so register/service/hook logic runs without processes or sockets.

import { EventEmitter } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { ToolError } from "../../src/mcp-client.js";
import { SAMPLE_ROUTES, fakeJwt } from "./fake-mcp-server.js";

const tempDirs = [];
process.on("exit", () => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A temporary directory, removed when the test process exits. */
export function tempDir(prefix = "bitrouter-openclaw-test-") {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

/** A fake OpenClaw plugin API that records what the plugin registers. */
export function fakeApi({ pluginConfig = {}, stateDir = tempDir() } = {}) {
  const reg = {
    providers: [],
    services: [],
    hooks: new Map(),
    hookOptions: new Map(),
    gatewayMethods: new Map(),
    tools: [],
    logs: [],
  };
  const log = (level) => (m) => reg.logs.push({ level, m });
  const api = {
    id: "bitrouter",
    name: "BitRouter",
    source: "test",
    registrationMode: "full",
    config: { plugins: { entries: { bitrouter: { config: pluginConfig } } } },
    pluginConfig,
    logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
    runtime: { state: { resolveStateDir: () => stateDir } },
    registerProvider: (p) => reg.providers.push(p),
    registerService: (s) => reg.services.push(s),
    registerTool: (t) => reg.tools.push(t),
    registerGatewayMethod: (name, handler, opts) => reg.gatewayMethods.set(name, { handler, opts }),
    on: (name, handler, opts) => {
      reg.hooks.set(name, handler);
      reg.hookOptions.set(name, opts);
    },
  };
  const logText = (level) => reg.logs.filter((l) => !level || l.level === level).map((l) => l.m).join("\n");
  return { api, reg, stateDir, logText };
}

/** Calls a registered gateway method the way the gateway does and returns what it responded. */
export async function callGateway(reg, method, params = {}) {
  const entry = reg.gatewayMethods.get(method);
  if (!entry) throw new Error(`gateway method ${method} not registered`);
  let answer;
  await entry.handler({ params, respond: (ok, payload, error) => (answer = { ok, payload, error }) });
  return answer;
}

/**
 * A failed tool call as bitrouter-mcp returns it (a CallToolResult with isError, the message as text and
 * the code in `_meta["bitrouter/error"]`), thrown the way the MCP client throws it. `code: undefined`
 * gives the shape of a server that predates error codes.
 */
export function toolError(name, text, code, field) {
  const meta = code === undefined ? undefined : { "bitrouter/error": field === undefined ? { code } : { code, field } };
  return new ToolError(name, { content: [{ type: "text", text }], isError: true, ...(meta ? { _meta: meta } : {}) });
}

function refused() {
  const e = new Error("fetch failed");
  e.cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8788"), { code: "ECONNREFUSED" });
  return e;
}

/**
 * bitrouter-mcp as seen through the McpClient interface. `up` says whether it answers; a fake spawn
 * can bring it up.
 */
export class FakeBitrouter {
  /**
   * @param {object} [o]
   * @param {number} [o.accounts]      signing accounts BitRouter has (0 = a fresh data directory)
   * @param {boolean} [o.activeAccount] whether one of them is active
   * @param {string[]} [o.savedTokens] names of tokens already saved (as an earlier start leaves them)
   * @param {boolean} [o.legacyErrors] refusals without error codes (a server from before them)
   */
  constructor({ routes = SAMPLE_ROUTES, up = false, accounts = 1, activeAccount = true, savedTokens = [], legacyErrors = false } = {}) {
    this.routes = structuredClone(routes);
    this.up = up;
    this.calls = [];
    this.clients = [];
    this.keygenCount = 0;
    this.statusHealthy = true;
    /** @type {object} more fields of bitrouter_status (paths, ownership) */
    this.statusExtra = {};
    this.accounts = accounts;
    this.activeAccount = accounts > 0 && activeAccount;
    this.savedTokens = new Set(savedTokens);
    this.legacyErrors = legacyErrors;
  }

  /** A refusal with its code, or without one when this server predates codes. */
  refuse(name, text, code, field) {
    return toolError(name, text, this.legacyErrors ? undefined : code, field);
  }

  /** Factory matching BitrouterRuntime's deps.createClient. */
  createClient = (url, opts) => {
    const client = new FakeMcpClient(this, url, opts);
    this.clients.push(client);
    return client;
  };

  setRoutes(doc) {
    this.routes = structuredClone(doc);
    for (const c of this.clients) if (c.subscriptions.size > 0 && !c.closed) c.emit("bitrouter://routes");
  }
}

export class FakeMcpClient {
  constructor(server, url, opts) {
    this.server = server;
    this.url = url;
    this.opts = opts;
    this.connected = false;
    this.closed = false;
    this.listeners = new Set();
    this.subscriptions = new Set();
    this.serverInfo = undefined;
  }

  async connect() {
    if (!this.server.up) {
      this.connected = false;
      throw refused();
    }
    this.connected = true;
    this.serverInfo = { name: "bitrouter-mcp", version: "0.1.0" };
  }

  async call(method, params) {
    await this.connect();
    this.server.calls.push({ method, params, url: this.url });
  }

  async callTool(name, args = {}) {
    await this.call("tools/call", { name, arguments: args });
    const s = this.server;
    // The real server's refusals: its wording and its error codes.
    if (name === "bitrouter_keygen") {
      if (!s.activeAccount) {
        throw s.refuse(name, `no active account: generate one with bitrouter_account action "generate"`, "no_active_account");
      }
      if (args.name !== undefined && s.savedTokens.has(args.name)) {
        throw s.refuse(name, `name: a token named "${args.name}" already exists; pick another name or remove it with bitrouter_keys`, "already_exists", "name");
      }
      s.keygenCount += 1;
      const iat = Math.floor(Date.now() / 1000);
      const claims = { iat, exp: iat + 30 * 24 * 3600, scope: args.scope, n: s.keygenCount };
      if (args.name !== undefined) s.savedTokens.add(args.name);
      return { token: fakeJwt(claims), claims, saved_to: args.name === undefined ? null : `/fake/${args.name}.jwt` };
    }
    if (name === "bitrouter_account") {
      if (args.action === "generate") {
        s.accounts += 1;
        s.activeAccount = true;
        return { accounts: [], active: "Acct", changed: { prefix: "Acct", active: true }, message: "generated account Acct (now active)" };
      }
      return { accounts: Array.from({ length: s.accounts }, (_, i) => ({ index: i, prefix: `A${i}`, active: false })), active: null };
    }
    if (name === "bitrouter_keys" && args.action === "remove") {
      if (!s.savedTokens.delete(args.name)) throw s.refuse(name, `name: no saved token "${args.name}"`, "not_found", "name");
      return { account: "Acct", removed: { name: args.name } };
    }
    if (name === "bitrouter_usage") {
      if (s.usage instanceof Error) throw s.usage;
      return structuredClone(s.usage ?? { totals: { requests: 0 }, by_model: [], by_provider: [], by_endpoint: [], recent: [], note: "no request was logged in this window" });
    }
    if (name === "bitrouter_status") {
      return {
        listen: "127.0.0.1:8787",
        daemon: { state: this.server.statusHealthy ? "healthy" : "unhealthy", healthy: this.server.statusHealthy },
        ...this.server.statusExtra,
      };
    }
    throw new Error(`unknown tool ${name}`);
  }

  async readResourceJson(uri) {
    await this.call("resources/read", { uri });
    return structuredClone(this.server.routes);
  }

  async subscribe(uri) {
    await this.call("resources/subscribe", { uri });
    this.subscriptions.add(uri);
  }

  onResourceUpdated(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(uri) {
    for (const fn of this.listeners) fn(uri);
  }

  isConnected() {
    return this.connected;
  }

  async close() {
    this.closed = true;
    this.connected = false;
  }
}

/** A fake child_process.spawn. `onSpawn(child)` runs when a process is started. */
export function fakeSpawn({ onSpawn = () => {}, exitOnSigterm = true } = {}) {
  const spawned = [];
  let nextPid = 4200;
  const spawn = (command, args, options) => {
    const child = new EventEmitter();
    child.pid = nextPid++;
    child.exitCode = null;
    child.signalCode = null;
    child.stdout = new EventEmitter();
    child.stderr = new EventEmitter();
    child.signals = [];
    child.command = command;
    child.args = args;
    child.options = options;
    child.exit = (code, signal = null) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.exitCode = code;
      child.signalCode = signal;
      child.emit("exit", code, signal);
      child.emit("close", code, signal);
    };
    child.kill = (sig = "SIGTERM") => {
      child.signals.push(sig);
      if (sig === "SIGKILL" || exitOnSigterm) setImmediate(() => child.exit(null, sig));
      return true;
    };
    spawned.push(child);
    onSpawn(child);
    return child;
  };
  return { spawn, spawned };
}

/** Waits until `cond()` is true (polling), or fails after `ms`. */
export async function waitFor(cond, ms = 2000, what = "condition") {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
